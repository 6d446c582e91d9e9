//! logsumexp, softmax and log_softmax over rows of strided arrays.
//!
//! Every function reduces (or normalises) along axis 1 of a 3-D view `(outer, n, inner)`: any
//! NumPy reduction over one axis is such a view without a copy, and the Python layer brings
//! tuple axes to this form. Rows with a unit stride are processed in place; other rows are
//! gathered first: float32 softmax into its output row when that is contiguous, the others into
//! a row buffer (a tile buffer when the output row is not contiguous either).
//! Work is split over rows (see [`crate::threads`]).
//!
//! Contract (float32 and float64; errors against the correctly rounded exact result):
//!
//! | function | f32 | f64 | notes |
//! |---|---|---|---|
//! | [`logsumexp`] | ≤ 1 ULP | ≤ 2 ULP | f64: ≤ κ ULP when `κ = \|max\| / \|result\| > 2` (cancellation) |
//! | [`softmax`] | ≤ 4 ULP | ≤ 4 ULP | subnormal outputs included |
//! | [`softmax`] (`log`) | ≤ 4 ULP | ≤ 4 ULP | relative, including outputs near 0 (f32 ≤ 2 ULP where the sums are exact) |
//!
//! Passes: rows without a temperature whose maximum is in range take the shifted passes
//! (`rows32` for float32, `rows64` for float64; `cols32` / `cols64` across 16 rows);
//! the rest (a temperature, a huge maximum, weights) the generic passes of `rows`.
//!
//! Valid range: any finite input (the max shift prevents overflow); special values follow the
//! row passes' module docs: NaN → the row is NaN; `+inf` entries share the mass;
//! rows without finite mass give `−inf` / zeros / `−inf`.

pub(crate) mod cols32;
pub(crate) mod cols64;
pub(crate) mod rows;
pub(crate) mod rows32;
pub(crate) mod rows64;
pub(crate) mod strips32;
pub(crate) mod strips64;

use std::ops::Range;

use ndarray::{ArrayView3, ArrayViewMut2, ArrayViewMut3};

use crate::error::KernelError;
use crate::simd::{active_isa, dispatch, prefetch, Element, Isa, Simd, WithSimd, VLANES};
use crate::threads::for_row_ranges;
use cols32::ColOp;
use rows::NextRow;
pub(crate) use rows::Scaling;

/// A raw 3-D strided view `(outer, n, inner)` (strides in elements, any sign).
#[derive(Clone, Copy)]
struct Raw3<E> {
    ptr: *mut E,
    n: usize,
    inner: usize,
    /// The number of rows, `outer · inner`.
    rows: usize,
    s_outer: isize,
    s_n: isize,
    s_inner: isize,
}

// SAFETY: a Raw3 is only built from a view that outlives the call, and tasks touch disjoint rows.
unsafe impl<E: Send> Send for Raw3<E> {}
// SAFETY: as above.
unsafe impl<E: Sync> Sync for Raw3<E> {}

impl<E> Raw3<E> {
    fn strides_of(s: &[isize]) -> [isize; 3] {
        [s[0], s[1], s[2]]
    }

    fn new(ptr: *mut E, shape: &[usize], strides: &[isize]) -> Self {
        Raw3 {
            ptr,
            n: shape[1],
            inner: shape[2],
            rows: shape[0] * shape[2],
            s_outer: strides[0],
            s_n: strides[1],
            s_inner: strides[2],
        }
    }

    /// Whether, with one `inner` index, the rows lie closer together in memory than a row's
    /// elements (the last axis of a Fortran-ordered or transposed array): the layout of a
    /// reduction along a non-last axis, seen from the other side.
    fn rows_closer_than_elements(&self) -> bool {
        self.inner == 1 && self.rows > 1 && self.s_outer.unsigned_abs() < self.s_n.unsigned_abs()
    }

    /// The same view with its `outer` indices taken as `inner` ones (one `inner` index): row
    /// `r` is the same memory, and the kernels see rows adjacent in memory (`s_inner == 1`)
    /// where the column kernels can take them.
    fn outer_as_inner(self) -> Self {
        debug_assert_eq!(self.inner, 1);
        Raw3 {
            inner: self.rows,
            s_outer: self.s_inner,
            s_inner: self.s_outer,
            ..self
        }
    }

    /// First element of row `r` (row-major over `(outer, inner)`).
    fn row(&self, r: usize) -> *mut E {
        let (o, j) = (r / self.inner, r % self.inner);
        self.ptr
            .wrapping_offset(o as isize * self.s_outer + j as isize * self.s_inner)
    }

    /// First elements of rows `r .. r + K`, stepping from one to the next without the
    /// division [`Raw3::row`] pays per row.
    #[inline(always)]
    fn rows<const K: usize>(&self, r: usize) -> [*mut E; K] {
        let mut j = r % self.inner;
        let mut p = self.row(r);
        // A loop rather than `array::from_fn`, which was left as an out-of-line call.
        let mut rows = [p; K];
        for row in &mut rows {
            *row = p;
            j += 1;
            p = if j == self.inner {
                j = 0;
                // The first row of the next outer index.
                p.wrapping_offset(self.s_outer - (self.inner - 1) as isize * self.s_inner)
            } else {
                p.wrapping_offset(self.s_inner)
            };
        }
        rows
    }
}

/// A raw 2-D strided view `(outer, inner)`: one element per row.
#[derive(Clone, Copy)]
struct Raw2<E> {
    ptr: *mut E,
    inner: usize,
    s_outer: isize,
    s_inner: isize,
}

// SAFETY: as for Raw3.
unsafe impl<E: Send> Send for Raw2<E> {}
// SAFETY: as for Raw3.
unsafe impl<E: Sync> Sync for Raw2<E> {}

impl<E> Raw2<E> {
    fn from_view(v: &mut ArrayViewMut2<E>) -> Self {
        let (s_outer, s_inner) = (v.strides()[0], v.strides()[1]);
        Raw2 {
            ptr: v.as_mut_ptr(),
            inner: v.shape()[1],
            s_outer,
            s_inner,
        }
    }

    fn at(&self, r: usize) -> *mut E {
        let (o, j) = (r / self.inner.max(1), r % self.inner.max(1));
        self.ptr
            .wrapping_offset(o as isize * self.s_outer + j as isize * self.s_inner)
    }
}

#[derive(Clone, Copy)]
enum Task<E> {
    Lse {
        x: Raw3<E>,
        out: Raw2<E>,
    },
    LseWeighted {
        x: Raw3<E>,
        w: Raw3<E>,
        out: Raw2<E>,
        sign: Raw2<E>,
    },
    Softmax {
        x: Raw3<E>,
        out: Raw3<E>,
        sc: Scaling,
        log: bool,
    },
}

impl<E> Task<E> {
    /// The task with every view's `outer` indices taken as `inner` ones when `x`'s rows lie
    /// closer together than its elements ([`Raw3::outer_as_inner`]; all views alike, since
    /// the tiles of rows come from `x`). (4096, 1000) float32 in Fortran order along axis 1:
    /// logsumexp 27 → 1.1 ms, softmax 28 → 2.4 ms (one thread), through the strips.
    fn oriented(self) -> Self {
        match self {
            Task::Lse { x, out } if x.rows_closer_than_elements() => Task::Lse {
                x: x.outer_as_inner(),
                out,
            },
            Task::LseWeighted { x, w, out, sign } if x.rows_closer_than_elements() => {
                Task::LseWeighted {
                    x: x.outer_as_inner(),
                    w: w.outer_as_inner(),
                    out,
                    sign,
                }
            }
            Task::Softmax { x, out, sc, log } if x.rows_closer_than_elements() => Task::Softmax {
                x: x.outer_as_inner(),
                out: out.outer_as_inner(),
                sc,
                log,
            },
            task => task,
        }
    }
}

struct RowsJob<E> {
    task: Task<E>,
    rows: Range<usize>,
}

/// Rows are handled in tiles of up to this many: with a contiguous inner axis (a reduction
/// along axis 0, say) a tile's elements at one reduction index are adjacent in memory, so the
/// tile is transposed into a row buffer with 256-byte (float32) runs instead of one strided
/// element at a time.
const TILE: usize = 64;

/// Copy rows `r0 .. r0 + count` of `v` (which share one `outer` index) into `buf`, row-major.
///
/// # Safety
/// The rows must be readable.
unsafe fn gather_tile<E: Element>(v: &Raw3<E>, r0: usize, count: usize, buf: &mut Vec<E>) {
    let n = v.n;
    buf.clear();
    buf.reserve(count * n);
    let dst = buf.as_mut_ptr();
    let base = v.row(r0);
    // SAFETY (both loops): element i of row r0 + b is base + i·s_n + b·s_inner, inside the
    // view; `buf` has capacity count·n.
    unsafe {
        if count > 1 && v.s_inner == 1 {
            for i in 0..n {
                let src = base.offset(i as isize * v.s_n);
                for b in 0..count {
                    *dst.add(b * n + i) = *src.add(b);
                }
            }
        } else {
            for b in 0..count {
                let src = base.offset(b as isize * v.s_inner);
                copy_from_strided(src, v.s_n, dst.add(b * n), n);
            }
        }
        buf.set_len(count * n);
    }
}

/// `dst[i] = src[i·stride]` for `i < n`. Common strides get a loop of their own, which the
/// compiler turns into vector loads and shuffles (`x[:, ::2]` gathers 3× faster than with a
/// run-time stride).
///
/// # Safety
/// `src` readable at every `i·stride`, `dst` writable for `n` elements.
#[inline(always)]
unsafe fn copy_from_strided<E: Element>(src: *const E, stride: isize, dst: *mut E, n: usize) {
    #[inline(always)]
    unsafe fn with<E: Element, const K: usize>(src: *const E, dst: *mut E, n: usize) {
        for i in 0..n {
            // SAFETY: the caller's contract with stride K.
            unsafe { *dst.add(i) = *src.add(i * K) };
        }
    }
    // SAFETY (all arms): forwarded contract.
    unsafe {
        match stride {
            1 => std::ptr::copy_nonoverlapping(src, dst, n),
            2 => with::<E, 2>(src, dst, n),
            3 => with::<E, 3>(src, dst, n),
            4 => with::<E, 4>(src, dst, n),
            _ => {
                let mut p = src;
                for i in 0..n {
                    *dst.add(i) = *p;
                    p = p.wrapping_offset(stride);
                }
            }
        }
    }
}

/// `dst[i·stride] = src[i]` for `i < n` (the inverse of [`copy_from_strided`]).
///
/// # Safety
/// `src` readable for `n` elements, `dst` writable at every `i·stride`.
#[inline(always)]
unsafe fn copy_to_strided<E: Element>(src: *const E, dst: *mut E, stride: isize, n: usize) {
    #[inline(always)]
    unsafe fn with<E: Element, const K: usize>(src: *const E, dst: *mut E, n: usize) {
        for i in 0..n {
            // SAFETY: the caller's contract with stride K.
            unsafe { *dst.add(i * K) = *src.add(i) };
        }
    }
    // SAFETY (all arms): forwarded contract.
    unsafe {
        match stride {
            1 => std::ptr::copy_nonoverlapping(src, dst, n),
            2 => with::<E, 2>(src, dst, n),
            3 => with::<E, 3>(src, dst, n),
            4 => with::<E, 4>(src, dst, n),
            _ => {
                let mut p = dst;
                for i in 0..n {
                    *p = *src.add(i);
                    p = p.wrapping_offset(stride);
                }
            }
        }
    }
}

/// The inverse of [`gather_tile`].
///
/// # Safety
/// The rows must be writable and `buf` must hold `count · n` elements.
unsafe fn scatter_tile<E: Element>(v: &Raw3<E>, r0: usize, count: usize, buf: &[E]) {
    let n = v.n;
    let base = v.row(r0);
    assert!(buf.len() >= count * n);
    let src = buf.as_ptr();
    // SAFETY: as in gather_tile, for writing; `buf` holds count·n elements (checked above).
    unsafe {
        if count > 1 && v.s_inner == 1 {
            for i in 0..n {
                let dst = base.offset(i as isize * v.s_n);
                for b in 0..count {
                    *dst.add(b) = *src.add(b * n + i);
                }
            }
        } else {
            for b in 0..count {
                let dst = base.offset(b as isize * v.s_inner);
                copy_to_strided(src.add(b * n), dst, v.s_n, n);
            }
        }
    }
}

/// How many rows ahead [`gather_cols`] asks for: its rows are a whole row stride apart, a
/// pattern the hardware prefetchers do not follow.
const PREFETCH_ROWS: usize = 16;

/// Contiguous rows up to this length go to the column kernel, 16 rows at a time.
const SHORT_ROW: usize = 32;

/// Contiguous rows up to this length go to the column kernel too when the call has at least
/// a tile's worth (16) of them. A row this long costs the row kernel ~40 ns of fixed work
/// (horizontal sums, per-row constants) that a tile shares among its 16 rows; measured
/// against the row kernel (one process, 2000 rows): float32 and float64 1.1–3.3× faster up to
/// 100 elements, mixed at 128 (0.88–1.22×). Fewer rows stay on the row kernel: a lone row in a
/// tile would pay for 16.
const MEDIUM_ROW: usize = 100;

/// [`MEDIUM_ROW`] for float32 log_softmax, whose row kernel has the largest fixed work (the
/// per-row `exp` and `log1p` of the sum): the tiles measured 1.56× / 1.22× / 1.09× / 1.01×
/// faster at 101 / 128 / 200 / 256 elements, 0.85× at 384.
const MEDIUM_ROW_LOG32: usize = 200;

/// Column tiles gathered together: for a reduction along axis 0 their rows are adjacent, and
/// reading `GROUP` cache lines per `i` in one run keeps several misses in flight (one line per
/// `i` left the copy waiting on each).
const GROUP: usize = 4;

/// Copy rows `r0 .. r0 + count` (≤ `GROUP · 16`) of `v` into `buf` as consecutive tiles of
/// `n × 16` (element `i` of row `r0 + 16g + b` at `g·16n + i·16 + b`), padding missing rows
/// with `−inf`. Returns the number of tiles.
///
/// # Safety
/// The rows must be readable.
#[inline(always)]
unsafe fn gather_cols<S: Simd, E: Element>(
    s: S,
    v: &Raw3<E>,
    r0: usize,
    count: usize,
    buf: &mut Vec<E>,
) -> usize {
    let n = v.n;
    let tiles = count.div_ceil(VLANES);
    buf.clear();
    buf.resize(tiles * n * VLANES, E::from_f64(f64::NEG_INFINITY));
    let dst = buf.as_mut_ptr();
    // SAFETY: element i of row r is row(r) + i·s_n, inside the view; dst holds tiles·n·16.
    unsafe {
        if adjacent_rows(v, r0, count) {
            // Whole tiles of adjacent rows (a reduction along axis 0): 16 elements per tile
            // and `i`, which the compiler copies with vector moves.
            let base = v.row(r0);
            for i in 0..n {
                let src = base.offset(i as isize * v.s_n);
                prefetch(
                    base.wrapping_offset((i + PREFETCH_ROWS) as isize * v.s_n)
                        .cast(),
                );
                for g in 0..tiles {
                    let (from, to) = (src.add(g * VLANES), dst.add((g * n + i) * VLANES));
                    std::ptr::copy_nonoverlapping(from, to, VLANES);
                }
            }
            return tiles;
        }
        move_rows(s, v, r0, count, dst, true);
    }
    tiles
}

/// Move rows `r0 .. r0 + count` of `v` into the tiles at `tiles` (`to_tiles`) or back: in
/// register blocks where [`transposed_rows`] can, element by element for the rest.
///
/// # Safety
/// As for [`transposed_rows`].
#[inline(always)]
unsafe fn move_rows<S: Simd, E: Element>(
    s: S,
    v: &Raw3<E>,
    r0: usize,
    count: usize,
    tiles: *mut E,
    to_tiles: bool,
) {
    // SAFETY: forwarded contract; element i of row r is row(r) + i·s_n, inside the view.
    unsafe {
        let blocked = transposed_rows(s, v, r0, count, tiles, to_tiles);
        for r in blocked..count {
            let row = v.row(r0 + r);
            let lane = tiles.add((r / VLANES) * v.n * VLANES + r % VLANES);
            for i in 0..v.n {
                let (at_row, at_tile) = (row.offset(i as isize * v.s_n), lane.add(i * VLANES));
                if to_tiles {
                    *at_tile = *at_row;
                } else {
                    *at_row = *at_tile;
                }
            }
        }
    }
}

/// Rows of at least [`block_side`] unit-stride elements move between the view and the tiles
/// in square blocks transposed in registers, [`block_side`] rows at a time (a scalar loop
/// cost a third of a float32 log_softmax of (1000, 10)). Moves rows `r0 ..` of `v` into the
/// tiles at `tiles` (`to_tiles`) or back, and returns how many rows it moved: the rest, fewer
/// than a block (or all of them where the rows do not qualify), are the caller's.
///
/// # Safety
/// The rows must be readable (`to_tiles`) or writable; `tiles` holds the tiles of `count`
/// rows, `n × 16` each.
#[inline(always)]
unsafe fn transposed_rows<S: Simd, E: Element>(
    s: S,
    v: &Raw3<E>,
    r0: usize,
    count: usize,
    tiles: *mut E,
    to_tiles: bool,
) -> usize {
    let (n, w) = (v.n, block_side::<E>());
    if v.s_n != 1 || n < w {
        return 0;
    }
    let whole = count - count % w;
    for g0 in (0..whole).step_by(w) {
        // The block's rows share one tile (w divides 16): lanes g0 % 16 .. + w.
        // SAFETY: g0 < count, so the tile offset is inside `tiles`.
        let lanes = unsafe { tiles.add((g0 / VLANES) * n * VLANES + g0 % VLANES) };
        // Rows past the block (w < 8) are never dereferenced.
        let rows = v.rows::<8>(r0 + g0);
        // Blocks at i = 0, w, 2w, …, the last one ending at n (overlapping its predecessor
        // when w does not divide n: the overlap is written twice with the same values).
        let mut i = 0;
        loop {
            let (mut row_side, mut tile_side) = (rows, rows);
            for j in 0..8 {
                row_side[j] = rows[j].wrapping_add(i);
                tile_side[j] = lanes.wrapping_add((i + j) * VLANES);
            }
            let (src, dst) = if to_tiles {
                (row_side, tile_side)
            } else {
                (tile_side, row_side)
            };
            // SAFETY: rows j < w hold elements i .. i + w (i + w <= n), and the tiles hold
            // elements i .. i + w of lanes g0 % 16 .. + w; the view and the tiles are apart.
            unsafe { transpose_block(s, &src, &dst) };
            if i + w == n {
                break;
            }
            i = (i + w).min(n - w);
        }
    }
    whole
}

/// The side of the square blocks [`transpose_block`] moves: one AVX register of elements.
#[inline(always)]
fn block_side<E: Element>() -> usize {
    if E::IS_F64 {
        4
    } else {
        8
    }
}

/// `dst[k][j] = src[j][k]` for `j, k <` [`block_side`] (the first pointers of each side).
///
/// # Safety
/// As for [`Simd::transpose8_f32`], over the block side.
#[inline(always)]
unsafe fn transpose_block<S: Simd, E: Element>(s: S, src: &[*mut E; 8], dst: &[*mut E; 8]) {
    // SAFETY (both arms): forwarded contract; E is the arm's element type, and arrays of
    // pointers to it have the layout of the arrays the transposes take.
    unsafe {
        let (src, dst) = (src.as_ptr(), dst.as_ptr());
        if E::IS_F64 {
            s.transpose4_f64(&*src.cast(), &*dst.cast());
        } else {
            s.transpose8_f32(&*src.cast(), &*dst.cast());
        }
    }
}

/// Whether rows `r0 .. r0 + count` are whole tiles of rows one element apart.
fn adjacent_rows<E: Element>(v: &Raw3<E>, r0: usize, count: usize) -> bool {
    v.s_inner == 1 && count.is_multiple_of(VLANES) && (r0 % v.inner) + count <= v.inner
}

/// The inverse of [`gather_cols`] (padding rows are dropped).
///
/// # Safety
/// The rows must be writable.
#[inline(always)]
unsafe fn scatter_cols<S: Simd, E: Element>(
    s: S,
    v: &Raw3<E>,
    r0: usize,
    count: usize,
    buf: &mut [E],
) {
    let n = v.n;
    let tiles = count.div_ceil(VLANES);
    assert!(buf.len() >= tiles * n * VLANES);
    let src = buf.as_mut_ptr();
    // SAFETY: as in gather_cols, for writing; `buf` holds the tiles (checked above).
    unsafe {
        if adjacent_rows(v, r0, count) {
            let base = v.row(r0);
            for i in 0..n {
                let dst = base.offset(i as isize * v.s_n);
                for g in 0..tiles {
                    let (from, to) = (src.add((g * n + i) * VLANES), dst.add(g * VLANES));
                    std::ptr::copy_nonoverlapping(from, to, VLANES);
                }
            }
            return;
        }
        move_rows(s, v, r0, count, src, false);
    }
}

/// `rows` in consecutive tiles of at most `max` rows (any `outer` indices).
fn chunks_of(rows: Range<usize>, max: usize) -> impl Iterator<Item = (usize, usize)> {
    rows.clone()
        .step_by(max)
        .map(move |r| (r, max.min(rows.end - r)))
}

/// The longest contiguous rows a softmax sends to the tiles by the tile (see [`MEDIUM_ROW`]).
/// With a temperature only the short ones: the tiles' generic passes sum in another order than
/// the row kernel's and measured a last-bit difference in 1 of 66000 float64 results, where
/// the shifted passes measured 1 in 2.7·10⁷ (float32 softmax).
fn medium_row<E: Element>(sc: Scaling, log: bool) -> usize {
    if sc.active {
        SHORT_ROW
    } else if log && !E::IS_F64 {
        MEDIUM_ROW_LOG32
    } else {
        MEDIUM_ROW
    }
}

/// Whether rows of this layout go to a column kernel: short rows, medium rows by the tile
/// (up to `medium`, see [`MEDIUM_ROW`]), or rows whose neighbours are adjacent in memory (a
/// reduction along a non-last axis). Long rows with a stride of their own (`x[:, ::2]`) do
/// better gathered one by one into the row kernel.
fn use_columns<E: Element>(x: &Raw3<E>, medium: usize) -> bool {
    x.n <= SHORT_ROW
        || (x.n <= medium && x.rows >= VLANES)
        || (x.s_n != 1 && x.s_inner == 1 && x.inner >= VLANES)
}

/// Split `rows` into tiles of at most `max` rows that share one `outer` index.
fn tiles(rows: Range<usize>, inner: usize, max: usize) -> impl Iterator<Item = (usize, usize)> {
    let mut r = rows.start;
    std::iter::from_fn(move || {
        if r >= rows.end {
            return None;
        }
        let next_outer = (r / inner + 1) * inner;
        let count = max.min(rows.end - r).min(next_outer - r);
        let tile = (r, count);
        r += count;
        Some(tile)
    })
}

/// The rows of a column task as `(first row, count, strip)` pieces: where the rows are
/// adjacent in memory (`s_inner == 1`, in `out` too when given) and long enough to stream,
/// strips of up to [`strips32::strip_width`] rows (a multiple of 16) sharing one `outer`
/// index, for the strip kernels, and the odd rows; otherwise the whole range, for the column
/// tiles.
fn column_strips<E: Element>(
    x: &Raw3<E>,
    out: Option<&Raw3<E>>,
    rows: Range<usize>,
) -> Vec<(usize, usize, bool)> {
    let adjacent = |v: &Raw3<E>| v.s_inner == 1 && v.s_n != 1;
    // float64 softmax and log_softmax measured faster through the gathered tiles (15 against
    // 22 ms on (1000, 4096)); float64 logsumexp and everything float32 through the strips.
    let measured_faster = !E::IS_F64 || out.is_none();
    let streams = adjacent(x) && out.is_none_or(adjacent) && x.n > SHORT_ROW;
    if !streams || !measured_faster {
        return vec![(rows.start, rows.len(), false)];
    }
    let mut pieces = Vec::new();
    // float64 (logsumexp) measured no faster in narrow strips: its exponentials bound it.
    let width = if E::IS_F64 {
        strips32::STRIP
    } else {
        strips32::strip_width(x.n, x.inner)
    };
    for (r0, count) in tiles(rows, x.inner, width) {
        let whole = count - count % VLANES;
        if whole > 0 {
            pieces.push((r0, whole, true));
        }
        if whole < count {
            pieces.push((r0 + whole, count - whole, false));
        }
    }
    pieces
}

/// Rows `r0 ..` of `x` (and `out`) as strips: element `(i, c)` is element `i` of row
/// `r0 + c`; then the strip kernel of the element type. `false` (nothing written) sends the
/// rows to the column tiles. `deferred`: see [`strips32::strip`] (float32 only).
///
/// # Safety
/// Rows `r0 .. r0 + count` of `x` readable and of `out` (unless `op` is logsumexp) writable,
/// adjacent in memory; `count` a multiple of 16 up to the strip width; `lse` holds `count`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn run_strip<S: Simd, E: Element>(
    s: S,
    x: &Raw3<E>,
    out: &Raw3<E>,
    r0: usize,
    count: usize,
    op: ColOp,
    lse: &mut [f64],
    deferred: Option<&mut strips32::ColumnConstants>,
) -> bool {
    let xs = strips32::StripView {
        ptr: x.row(r0),
        stride: x.s_n,
    };
    let os = strips32::StripView {
        ptr: out.row(r0),
        stride: out.s_n,
    };
    // SAFETY (both arms): forwarded contract; E is the arm's element type.
    unsafe {
        if E::IS_F64 {
            debug_assert!(op == ColOp::Lse, "float64 strips are for logsumexp");
            strips64::lse_strip::<S>(s, xs.cast(), x.n, count, lse)
        } else {
            let fetch = narrow_strips(x);
            strips32::strip::<S>(
                s,
                xs.cast(),
                os.cast(),
                x.n,
                count,
                op,
                lse,
                fetch,
                deferred,
            )
        }
    }
}

/// Whether the column tasks of `x` take float32's narrow strips (see
/// [`strips32::strip_width`]), whose passes ask for their rows ahead.
fn narrow_strips<E: Element>(x: &Raw3<E>) -> bool {
    !E::IS_F64 && strips32::strip_width(x.n, x.inner) == strips32::NARROW_STRIP
}

/// Adjacent float32 rows of a column task whose softmax strips left their writes to
/// [`strips32::write_rows`] (see [`strips32::defers_writes`]): rows `start .. start + count`,
/// one `outer` index, and their columns' constants.
struct DeferredWrites {
    start: usize,
    count: usize,
    constants: strips32::ColumnConstants,
}

impl DeferredWrites {
    fn new() -> Self {
        DeferredWrites {
            start: 0,
            count: 0,
            constants: Vec::new(),
        }
    }

    /// Whether a strip of rows from `r0` continues these rows (adjacent, same `outer`).
    fn continues(&self, r0: usize, inner: usize) -> bool {
        self.count == 0 || (r0 == self.start + self.count && r0 / inner == self.start / inner)
    }

    /// Add the rows of a strip that [`DeferredWrites::continues`] them.
    fn extend(&mut self, r0: usize, count: usize) {
        if self.count == 0 {
            self.start = r0;
        }
        self.count += count;
    }

    /// Run the write pass over the rows so far (element type f32), and start again empty.
    ///
    /// # Safety
    /// The rows of `x` readable and of `out` writable; `E` is f32.
    #[inline(always)]
    unsafe fn flush<S: Simd, E: Element>(&mut self, s: S, x: &Raw3<E>, out: &Raw3<E>) {
        if self.count > 0 {
            let view = |v: &Raw3<E>| strips32::StripView {
                ptr: v.row(self.start).cast::<f32>(),
                stride: v.s_n,
            };
            // SAFETY: forwarded contract; the constants are those of these rows.
            unsafe {
                strips32::write_rows::<S>(s, view(x), view(out), x.n, self.count, &self.constants)
            };
        }
        self.count = 0;
        self.constants.clear();
    }
}

/// logsumexp of `rows` through the column tiles, [`GROUP`] tiles per gather.
///
/// # Safety
/// The rows of `x` readable and those of `out` writable.
#[inline(always)]
unsafe fn lse_tiles<S: Simd, E: Element>(
    s: S,
    x: &Raw3<E>,
    out: &Raw2<E>,
    rows: Range<usize>,
    xbuf: &mut Vec<E>,
) {
    let mut lse = [0.0f64; VLANES];
    for (r0, count) in chunks_of(rows, GROUP * VLANES) {
        // SAFETY: forwarded contract.
        unsafe {
            let tiles = gather_cols(s, x, r0, count, xbuf);
            for g in 0..tiles {
                let tile = xbuf.as_mut_ptr().add(g * x.n * VLANES);
                if E::IS_F64 {
                    // SAFETY: E is f64.
                    let tile = tile.cast::<f64>();
                    cols64::tile_shifted::<S>(s, tile, x.n, ColOp::Lse, &mut lse);
                } else {
                    // SAFETY: E is f32, the only element type that is not f64.
                    let tile = tile.cast::<f32>();
                    cols32::tile::<S>(s, tile, x.n, ColOp::Lse, &mut lse);
                }
                let rows = (count - g * VLANES).min(VLANES);
                for (b, v) in lse.iter().enumerate().take(rows) {
                    *out.at(r0 + g * VLANES + b) = E::from_f64(*v);
                }
            }
        }
    }
}

/// softmax / log_softmax of `rows` through the column tiles, [`GROUP`] tiles per gather.
///
/// # Safety
/// The rows of `x` readable and those of `out` writable.
#[inline(always)]
unsafe fn softmax_tiles<S: Simd, E: Element>(
    s: S,
    x: &Raw3<E>,
    out: &Raw3<E>,
    (sc, op): (Scaling, ColOp),
    rows: Range<usize>,
    xbuf: &mut Vec<E>,
    stash: &mut Vec<f64>,
) {
    let mut unused = [0.0f64; VLANES];
    for (r0, count) in chunks_of(rows, GROUP * VLANES) {
        // SAFETY: forwarded contract.
        unsafe {
            let tiles = gather_cols(s, x, r0, count, xbuf);
            for g in 0..tiles {
                let tile = xbuf.as_mut_ptr().add(g * x.n * VLANES);
                if E::IS_F64 && !sc.active {
                    // SAFETY: E is f64.
                    let tile = tile.cast::<f64>();
                    cols64::tile_shifted::<S>(s, tile, x.n, op, &mut unused);
                } else if E::IS_F64 || sc.active {
                    cols64::tile::<S, E>(s, tile, x.n, op, sc, &mut unused, stash);
                } else {
                    // SAFETY: E is f32, the only element type that is not f64.
                    let tile = tile.cast::<f32>();
                    cols32::tile::<S>(s, tile, x.n, op, &mut unused);
                }
            }
            scatter_cols(s, out, r0, count, xbuf);
        }
    }
}

impl<E: Element> WithSimd for RowsJob<E> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let mut xbuf = Vec::new();
        let mut wbuf = Vec::new();
        let mut stash = Vec::new();
        // The row of this task's rows read in place that the passes over row `r` fetch
        // ahead: the next, or for short contiguous rows the one about 8 KB on.
        let end = self.rows.end;
        let next_of = |x: &Raw3<E>, r: usize| {
            let ahead = if x.s_n == 1 {
                rows::fetch_rows_ahead(x.n * std::mem::size_of::<E>())
            } else {
                1
            };
            if r + ahead < end {
                NextRow::strided(x.row(r + ahead), x.s_n)
            } else {
                NextRow::NONE
            }
        };
        // SAFETY (whole body): the Raw views come from live views whose rows `self.rows` are
        // in bounds, and no other task touches these rows.
        match self.task {
            Task::Lse { x, out } if use_columns(&x, MEDIUM_ROW) => {
                let mut lse = vec![0.0f64; strips32::STRIP];
                for (r0, count, strip) in column_strips::<E>(&x, None, self.rows) {
                    if strip {
                        // SAFETY: the strip's rows are adjacent columns of x.
                        let done = unsafe {
                            run_strip::<S, E>(s, &x, &x, r0, count, ColOp::Lse, &mut lse, None)
                        };
                        if done {
                            for (b, v) in lse.iter().enumerate().take(count) {
                                // SAFETY: row r0 + b of the output is in this task's rows.
                                unsafe { *out.at(r0 + b) = E::from_f64(*v) };
                            }
                            continue;
                        }
                    }
                    // SAFETY: forwarded contract.
                    unsafe { lse_tiles::<S, E>(s, &x, &out, r0..r0 + count, &mut xbuf) };
                }
            }
            Task::Lse { x, out } => {
                for (r0, count) in tiles(self.rows, x.inner, TILE) {
                    unsafe {
                        let n = x.n;
                        if x.s_n == 1 {
                            for r in r0..r0 + count {
                                let (row, next) = (x.row(r) as *const E, next_of(&x, r));
                                *out.at(r) = E::from_f64(rows::lse_row::<S, E>(s, row, n, next));
                            }
                        } else if count > 1 && x.s_inner == 1 {
                            gather_tile(&x, r0, count, &mut xbuf);
                            for b in 0..count {
                                let row = xbuf.as_ptr().add(b * n);
                                let lse = rows::lse_row::<S, E>(s, row, n, NextRow::NONE);
                                *out.at(r0 + b) = E::from_f64(lse);
                            }
                        } else {
                            // Rows with a stride of their own, gathered one at a time into a
                            // buffer that stays in L1 while the next row is fetched (as
                            // softmax does), not 64 at a time into a tile of 256 KB or more:
                            // `benches/ab_builds.py --stride 2`, one thread, (4096, 1000)
                            // ×1.16, (1000, 4096) ×2.03; float64 ×1.11–1.51; stride 3 ×1.24–1.32.
                            xbuf.resize(n, E::from_f64(0.0));
                            for r in r0..r0 + count {
                                copy_from_strided(
                                    x.row(r) as *const E,
                                    x.s_n,
                                    xbuf.as_mut_ptr(),
                                    n,
                                );
                                let next = next_of(&x, r);
                                let lse = rows::lse_row::<S, E>(s, xbuf.as_ptr(), n, next);
                                *out.at(r) = E::from_f64(lse);
                            }
                        }
                    }
                }
            }
            Task::LseWeighted { x, w, out, sign } => {
                for (r0, count) in tiles(self.rows, x.inner, TILE) {
                    unsafe {
                        gather_tile(&x, r0, count, &mut xbuf);
                        gather_tile(&w, r0, count, &mut wbuf);
                        for b in 0..count {
                            let (xp, wp) = (xbuf.as_ptr().add(b * x.n), wbuf.as_ptr().add(b * x.n));
                            let (v, sg) = rows::lse_row_weighted::<S, E>(s, xp, wp, x.n);
                            *out.at(r0 + b) = E::from_f64(v);
                            *sign.at(r0 + b) = E::from_f64(sg);
                        }
                    }
                }
            }
            Task::Softmax { x, out, sc, log } if use_columns(&x, medium_row::<E>(sc, log)) => {
                let op = if log {
                    ColOp::LogSoftmax
                } else {
                    ColOp::Softmax
                };
                let defer = strips32::defers_writes::<S>(op, narrow_strips(&x));
                let mut deferred = DeferredWrites::new();
                for (r0, count, strip) in column_strips::<E>(&x, Some(&out), self.rows) {
                    if strip && !sc.active {
                        if defer && !deferred.continues(r0, x.inner) {
                            // SAFETY: the deferred rows are this task's; E is f32 (narrow).
                            unsafe { deferred.flush::<S, E>(s, &x, &out) };
                        }
                        let constants = defer.then_some(&mut deferred.constants);
                        // SAFETY: as for logsumexp; out's strip rows are adjacent too.
                        let done = unsafe {
                            run_strip::<S, E>(s, &x, &out, r0, count, op, &mut [], constants)
                        };
                        if done {
                            if defer {
                                deferred.extend(r0, count);
                            }
                            continue;
                        }
                    }
                    // SAFETY: forwarded contract.
                    unsafe {
                        softmax_tiles::<S, E>(
                            s,
                            &x,
                            &out,
                            (sc, op),
                            r0..r0 + count,
                            &mut xbuf,
                            &mut stash,
                        )
                    };
                }
                // SAFETY: as above.
                unsafe { deferred.flush::<S, E>(s, &x, &out) };
            }
            Task::Softmax { x, out, sc, log } => {
                // float32 softmax and log_softmax rows leave their last pass to the next row's
                // exponential pass (see rows32::softmax_row_deferring).
                let defer = !E::IS_F64 && !sc.active;
                let mut pending = rows32::PendingWrite::NONE;
                for (r0, count) in tiles(self.rows, x.inner, TILE) {
                    unsafe {
                        if x.s_n == 1 && out.s_n == 1 {
                            for r in r0..r0 + count {
                                let (xp, op, next) = (x.row(r), out.row(r), next_of(&x, r));
                                // E is f32 when `defer`, and rows do not overlap; rows
                                // beyond the f32 kernels' M_LIMIT take the f64 lanes.
                                if !defer {
                                    rows::softmax_row::<S, E>(
                                        s, xp, op, x.n, sc, log, &mut stash, next,
                                    );
                                } else if !rows32::softmax_row_deferring(
                                    s,
                                    xp.cast::<f32>(),
                                    op.cast::<f32>(),
                                    x.n,
                                    log,
                                    next,
                                    &mut pending,
                                ) {
                                    rows::softmax_row_lanes::<S, E>(
                                        s, xp, op, x.n, sc, log, &mut stash,
                                    );
                                }
                            }
                        } else if out.s_n == 1 {
                            // Gather each row, then normalise it into its contiguous output
                            // row: no buffer to scatter back (x[:, ::2] softmax 4.2–4.5 →
                            // 3.8 ms). float32 softmax gathers straight into the output row
                            // and works there in place. The others gather into a row buffer,
                            // so that the output's lines are first written by a pass that
                            // computes while they arrive (float32 log_softmax's sum pass
                            // also asks for them), not by the gather's tight run of stores:
                            // A/B, x[:, ::2] of (4096, 2000), float32 log_softmax ×1.07–1.26,
                            // float64 softmax ×1.09–1.10; float32 softmax, whose one-pass
                            // kernel then writes the output from its first pass, ×0.89–0.91
                            // (x[:, ::3]), and ×0.82–1.01 since that pass asks for its output
                            // ahead. Views cannot alias; the Python layer copies a partially
                            // overlapping input first.
                            let buffered = E::IS_F64 || log;
                            if buffered {
                                xbuf.resize(x.n, E::from_f64(0.0));
                            }
                            for r in r0..r0 + count {
                                let op = out.row(r);
                                let row = if buffered { xbuf.as_mut_ptr() } else { op };
                                copy_from_strided(x.row(r) as *const E, x.s_n, row, x.n);
                                let next = next_of(&x, r);
                                rows::softmax_row::<S, E>(
                                    s, row, op, x.n, sc, log, &mut stash, next,
                                );
                            }
                        } else {
                            // Gather, normalise the copy in place, scatter.
                            gather_tile(&x, r0, count, &mut xbuf);
                            for b in 0..count {
                                let bp = xbuf.as_mut_ptr().add(b * x.n);
                                let none = NextRow::NONE;
                                rows::softmax_row::<S, E>(
                                    s, bp, bp, x.n, sc, log, &mut stash, none,
                                );
                            }
                            scatter_tile(&out, r0, count, &xbuf);
                        }
                    }
                }
                // SAFETY: the pending row is this task's last deferred row.
                unsafe { pending.finish(s, 0, NextRow::NONE) };
            }
        }
    }
}

fn run_rows<E: Element>(task: Task<E>, rows: usize, n: usize) -> Result<(), KernelError> {
    let isa = active_isa().map_err(KernelError::Simd)?;
    run_rows_on(isa, task, rows, n);
    Ok(())
}

fn run_rows_on<E: Element>(isa: Isa, task: Task<E>, rows: usize, n: usize) {
    let task = task.oriented();
    for_row_ranges(rows, n.saturating_mul(E::WORK), |range| {
        dispatch(isa, RowsJob { task, rows: range })
    });
}

fn check_shape(arg: &'static str, got: &[usize], expected: &[usize]) -> Result<(), KernelError> {
    if got == expected {
        Ok(())
    } else {
        Err(KernelError::ShapeMismatch {
            arg,
            got: got.to_vec(),
            expected: expected.to_vec(),
        })
    }
}

fn lse_task<E: Element>(
    x: &ArrayView3<E>,
    out: &mut ArrayViewMut2<E>,
) -> Result<(Task<E>, usize, usize), KernelError> {
    let sh = x.shape();
    check_shape("out", out.shape(), &[sh[0], sh[2]])?;
    let task = Task::Lse {
        x: Raw3::new(x.as_ptr() as *mut E, sh, x.strides()),
        out: Raw2::from_view(out),
    };
    Ok((task, sh[0] * sh[2], sh[1]))
}

/// `out[o, j] = log Σ_i exp(x[o, i, j])`.
///
/// Errors: `out` must have shape `(outer, inner)`.
pub fn logsumexp<E: Element>(
    x: ArrayView3<E>,
    mut out: ArrayViewMut2<E>,
) -> Result<(), KernelError> {
    let (task, rows, n) = lse_task(&x, &mut out)?;
    run_rows(task, rows, n)
}

/// [`logsumexp`] on a given ISA.
pub fn logsumexp_on<E: Element>(
    isa: Isa,
    x: ArrayView3<E>,
    mut out: ArrayViewMut2<E>,
) -> Result<(), KernelError> {
    let (task, rows, n) = lse_task(&x, &mut out)?;
    run_rows_on(isa, task, rows, n);
    Ok(())
}

/// `out[o, j] = log |Σ_i w[o,i,j] exp(x[o,i,j])|` and `sign[o, j]` the sign of the sum
/// (0 when the sum is 0, NaN when it is NaN). Entries to leave out must be `-inf` in `x`.
///
/// Errors: `w` must have the shape of `x`; `out` and `sign` shape `(outer, inner)`.
pub fn logsumexp_weighted<E: Element>(
    x: ArrayView3<E>,
    w: ArrayView3<E>,
    mut out: ArrayViewMut2<E>,
    mut sign: ArrayViewMut2<E>,
) -> Result<(), KernelError> {
    let sh = x.shape();
    check_shape("b", w.shape(), sh)?;
    check_shape("out", out.shape(), &[sh[0], sh[2]])?;
    check_shape("sign", sign.shape(), &[sh[0], sh[2]])?;
    let task = Task::LseWeighted {
        x: Raw3::new(x.as_ptr() as *mut E, sh, x.strides()),
        w: Raw3::new(w.as_ptr() as *mut E, w.shape(), w.strides()),
        out: Raw2::from_view(&mut out),
        sign: Raw2::from_view(&mut sign),
    };
    run_rows(task, sh[0] * sh[2], sh[1])
}

fn check_temperature(temperature: f64) -> Result<Scaling, KernelError> {
    if temperature > 0.0 && temperature.is_finite() {
        Ok(Scaling::temperature(temperature))
    } else {
        Err(KernelError::InvalidValue {
            arg: "temperature",
            message: format!("must be a finite number > 0, got {temperature}"),
        })
    }
}

/// `out[o, :, j] = softmax(x[o, :, j] / temperature)` (or log_softmax when `log`).
///
/// Errors: `out` must have the shape of `x`; `temperature` must be finite and > 0.
pub fn softmax<E: Element>(
    x: ArrayView3<E>,
    mut out: ArrayViewMut3<E>,
    temperature: f64,
    log: bool,
) -> Result<(), KernelError> {
    let sc = check_temperature(temperature)?;
    let sh = x.shape().to_vec();
    check_shape("out", out.shape(), &sh)?;
    let task = Task::Softmax {
        x: Raw3::new(x.as_ptr() as *mut E, &sh, x.strides()),
        out: {
            let st = Raw3::<E>::strides_of(out.strides());
            Raw3::new(out.as_mut_ptr(), &sh, &st)
        },
        sc,
        log,
    };
    run_rows(task, sh[0] * sh[2], sh[1])
}

/// [`softmax`] overwriting its input.
pub fn softmax_inplace<E: Element>(
    mut x: ArrayViewMut3<E>,
    temperature: f64,
    log: bool,
) -> Result<(), KernelError> {
    softmax_inplace_on_opt(None, x.view_mut(), temperature, log)
}

/// [`softmax_inplace`] on a given ISA.
pub fn softmax_inplace_on<E: Element>(
    isa: Isa,
    x: ArrayViewMut3<E>,
    temperature: f64,
    log: bool,
) -> Result<(), KernelError> {
    softmax_inplace_on_opt(Some(isa), x, temperature, log)
}

fn softmax_inplace_on_opt<E: Element>(
    isa: Option<Isa>,
    mut x: ArrayViewMut3<E>,
    temperature: f64,
    log: bool,
) -> Result<(), KernelError> {
    let sc = check_temperature(temperature)?;
    let sh = x.shape().to_vec();
    let st = Raw3::<E>::strides_of(x.strides());
    let raw = Raw3::new(x.as_mut_ptr(), &sh, &st);
    let task = Task::Softmax {
        x: raw,
        out: raw,
        sc,
        log,
    };
    match isa {
        Some(isa) => {
            run_rows_on(isa, task, sh[0] * sh[2], sh[1]);
            Ok(())
        }
        None => run_rows(task, sh[0] * sh[2], sh[1]),
    }
}

/// logsumexp of one contiguous row, on the active SIMD path.
pub fn logsumexp_slice<E: Element>(x: &[E]) -> Result<E, KernelError> {
    let isa = active_isa().map_err(KernelError::Simd)?;
    Ok(logsumexp_slice_on(isa, x))
}

/// logsumexp of one contiguous row on a given ISA.
pub fn logsumexp_slice_on<E: Element>(isa: Isa, x: &[E]) -> E {
    struct Job<'a, E>(&'a [E]);
    impl<E: Element> WithSimd for Job<'_, E> {
        type Output = f64;
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) -> f64 {
            // SAFETY: the slice is readable for its length.
            unsafe { rows::lse_row::<S, E>(s, self.0.as_ptr(), self.0.len(), NextRow::NONE) }
        }
    }
    E::from_f64(dispatch(isa, Job(x)))
}

/// softmax (or log_softmax) of one contiguous row into `out`, on a given ISA.
///
/// # Panics
/// If the lengths differ or `temperature` is not finite and > 0.
pub fn softmax_slice_on<E: Element>(isa: Isa, x: &[E], out: &mut [E], temperature: f64, log: bool) {
    assert_eq!(
        x.len(),
        out.len(),
        "softmax: input and output lengths differ"
    );
    let sc = check_temperature(temperature).expect("invalid temperature");
    struct Job<'a, E> {
        x: &'a [E],
        out: &'a mut [E],
        sc: Scaling,
        log: bool,
    }
    impl<E: Element> WithSimd for Job<'_, E> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) {
            let n = self.x.len();
            // SAFETY: both slices hold n elements and do not overlap.
            unsafe {
                rows::softmax_row::<S, E>(
                    s,
                    self.x.as_ptr(),
                    self.out.as_mut_ptr(),
                    n,
                    self.sc,
                    self.log,
                    &mut Vec::new(),
                    NextRow::NONE,
                )
            }
        }
    }
    dispatch(isa, Job { x, out, sc, log });
}

/// softmax (or log_softmax) of one contiguous row into `out`, on the active SIMD path.
pub fn softmax_slice<E: Element>(
    x: &[E],
    out: &mut [E],
    temperature: f64,
    log: bool,
) -> Result<(), KernelError> {
    check_temperature(temperature)?;
    if x.len() != out.len() {
        return Err(KernelError::ShapeMismatch {
            arg: "out",
            got: vec![out.len()],
            expected: vec![x.len()],
        });
    }
    let isa = active_isa().map_err(KernelError::Simd)?;
    softmax_slice_on(isa, x, out, temperature, log);
    Ok(())
}

#[cfg(test)]
mod tests;
