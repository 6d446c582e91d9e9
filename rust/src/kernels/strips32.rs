//! float32 reductions along a non-last axis whose lines are adjacent in memory (axis 0 of a C
//! array): up to [`STRIP`] adjacent lines ("columns") at once, walked row by row, so every pass
//! streams contiguous runs of memory and nothing is gathered.
//!
//! The column tiles of [`super::cols32`] gather 16 columns into a buffer first; with a row
//! stride of a power of two that gather touches one cache line per row, a pattern the hardware
//! prefetchers do not follow, and it cost more than the arithmetic. Here each pass reads (and
//! writes) whole runs of `w` columns per row, and the per-column state (maximum, shift, sums:
//! about 40 bytes a column) stays in the L1/L2 caches.
//!
//! The numerics are those of the column tiles, one shift per column (see [`super::rows32`]):
//! the same `pass_terms`, the same exact `y + y_lo` split for logsumexp / log_softmax with the
//! max entries counted apart, and each column's sum taken over `i` in order, two rows at a
//! time, in f64. Strips with a NaN, an infinite maximum or a maximum beyond the f32-lane range
//! are left to the column tiles (nothing is written).
//!
//! softmax's narrow strips on AVX-512 leave their writes to one pass over whole rows once the
//! strips of those rows are done ([`write_rows`], see [`defers_writes`]).

// Kernels index several per-column arrays with one index; iterators would hide that.
#![allow(clippy::needless_range_loop)]

use super::cols32::{line_results, ColOp, LineResults};
use super::rows::{load_chunk, tree};
use super::rows32::{
    exp_terms, lse_term, minus_pair, nf, paired_log_softmax, pass_terms, ratio, run_lse, run_terms,
    tie_value, times_pair, widened_sums, LaneShift, LineSums, Shift, BLOCK, RUN_MIN_LEN,
};
use crate::simd::{prefetch, Simd, VLANES};

/// Columns per strip (a multiple of 16): rows this wide are one contiguous run per row for the
/// prefetchers, and the per-column state (~48 bytes a column) stays in L2.
pub(crate) const STRIP: usize = 4096;

/// Columns per strip of a large array (see [`strip_width`]): a strip of up to 4096 rows this
/// wide (4 MB at most) stays in the L2 / L3 caches from one pass to the next, so only the first
/// pass reads memory, and its rows are asked for [`AHEAD_ROWS`] ahead (the hardware
/// prefetchers do not follow runs of 1 KB a row stride apart).
pub(crate) const NARROW_STRIP: usize = 256;

/// Rows ahead that the passes of a narrow strip ask for (4–16 measured alike).
const AHEAD_ROWS: usize = 8;

/// The strip width for float32 lines of `n` entries, `inner` of them adjacent (per `outer`
/// index): [`NARROW_STRIP`] when those lines take too much memory to stay in the cache between
/// full-width passes (12 MB or more), span 2048 columns or more, and a narrow strip is at most
/// 4096 rows; [`STRIP`] otherwise.
///
/// Measured with prefetching, one thread, against full width (softmax / log_softmax /
/// logsumexp, `out=`): ×1.23–1.37 / ×1.14–1.31 / ×1.26–1.40 on (1000, 4096) and (500, 8192),
/// ×1.30 / ×1.20 / ×1.18 on (2000, 2048), ×1.36 / ×1.28 / ×1.36 on (1500, 3072), ×1.26 /
/// ×1.11 / ×1.18 on (200, 16384), ×0.95–1.01 / ×1.19 / ×1.05 on (4000, 4096). Outside the
/// rule it lost: arrays that stay in the cache ((1000, 1024), (300, 4096), (1000, 2048):
/// ×0.82–0.98), rows of 4 KB ((3000, 1024), (10000, 1024): ×0.80–1.26), and taller arrays
/// ((10000, 2048), (8000, 4096): ×0.90–1.14).
pub(crate) fn strip_width(n: usize, inner: usize) -> usize {
    const MIN_BYTES: usize = 12 << 20;
    let large = n.saturating_mul(inner).saturating_mul(4) >= MIN_BYTES;
    if large && inner >= 2048 && n <= 4096 {
        NARROW_STRIP
    } else {
        STRIP
    }
}

/// Ask for the lines of row `i` of a narrow strip `w` columns wide, when the row exists (a
/// hint: nothing is read).
#[inline(always)]
fn fetch_row<E>(v: StripView<E>, i: usize, n: usize, w: usize) {
    if i < n {
        let row = v.row(i).cast::<u8>().cast_const();
        for at in (0..w * std::mem::size_of::<E>()).step_by(64) {
            prefetch(row.wrapping_add(at));
        }
    }
}

/// A strip of `w` columns: element `(i, c)` at `ptr + i·stride + c` (both element types).
pub(crate) struct StripView<E> {
    pub ptr: *mut E,
    pub stride: isize,
}

impl<E> Clone for StripView<E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for StripView<E> {}

impl<E> StripView<E> {
    /// The first element of row `i`.
    #[inline(always)]
    pub(crate) fn row(self, i: usize) -> *mut E {
        self.ptr.wrapping_offset(i as isize * self.stride)
    }

    /// The same strip read as elements of type `T` (the caller knows they are).
    #[inline(always)]
    pub(crate) fn cast<T>(self) -> StripView<T> {
        StripView {
            ptr: self.ptr.cast(),
            stride: self.stride,
        }
    }
}

/// Floats of [`ColumnConstants`] per 16 columns: `low`, `k_mm`, `bias`, `hi`, `lo`.
const GROUP_CONSTANTS: usize = 5 * VLANES;

/// What softmax's write pass needs of each column, kept by the strips that leave their
/// writes to [`write_rows`]: per 16 columns, the lane constants of the column's shift (`low`,
/// `k_mm`, `bias`, see [`LaneShift`]) and its scale `hi + lo`, 16 floats each.
pub(crate) type ColumnConstants = Vec<f32>;

/// Whether the strips of `op` leave their writes to one pass over whole rows ([`write_rows`]):
/// softmax's narrow strips (see [`strip_width`]) where a vector holds 16 floats (AVX-512).
///
/// Pass 3 of a narrow strip reads and writes runs of 1 KB a row stride apart, which take the
/// memory system 1.3–2.2× as long to write as whole rows (`benches/probes/strip_memory.c`),
/// and softmax's pass 2 has written them once already (its terms, to scale in place). The
/// write pass over whole rows writes each line once, but takes each `exp` again: two builds,
/// A/B `--axis 0 --out`, both orders, bit-identical, one thread: (1000, 4096) ×1.04–1.27,
/// (500, 8192) ×1.06–1.30, (2000, 2048) ×1.15–1.32, (4000, 4096) ×1.01–1.02; two threads
/// ×1.34–1.35 on (1000, 4096) and (2000, 2048). With AVX2 on the same machine (one build,
/// calls interleaved), twice as many vector operations per `exp` made it ×0.84–0.92, so
/// softmax keeps its pass 3 there; log_softmax, which writes `(x − hi) − lo` from `x` in
/// either pass, keeps it everywhere (AVX-512, two builds: ×0.92–1.04).
pub(crate) fn defers_writes<S: Simd>(op: ColOp, narrow: bool) -> bool {
    narrow && op == ColOp::Softmax && S::LANES32 >= VLANES
}

/// Process `w` columns of `n ≥ 1` rows: softmax / log_softmax from `x` into `out` (which may
/// be `x`), or logsumexp of each column into `lse[c]`. Returns `false`, with nothing written,
/// when a column has a NaN, no finite maximum, or `|max| > M_LIMIT`. `fetch`: the strip is a
/// narrow one (see [`strip_width`]), whose passes ask for their rows ahead. `deferred`
/// (softmax, see [`defers_writes`]): instead of writing `out`, the strip appends its columns'
/// [`ColumnConstants`] there, for [`write_rows`].
///
/// # Safety
/// `w` is a multiple of 16 and at most [`STRIP`]; `x` is readable and (unless `op` is
/// [`ColOp::Lse`] or `deferred` is given) `out` writable at `(i, c)` for `i < n`, `c < w`;
/// `lse` holds `w` values.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn strip<S: Simd>(
    s: S,
    x: StripView<f32>,
    out: StripView<f32>,
    n: usize,
    w: usize,
    op: ColOp,
    lse: &mut [f64],
    fetch: bool,
    deferred: Option<&mut ColumnConstants>,
) -> bool {
    debug_assert!(w.is_multiple_of(VLANES) && w <= STRIP && n >= 1);
    let l32 = S::LANES32;

    // Pass 1: per-column max (NaN ignored by fmax), two rows at a time; any NaN in the strip
    // sends it to the column tiles.
    let mut m = vec![f32::NEG_INFINITY; w];
    let mut nan = s.fmnone();
    let mut i = 0;
    while i < n {
        let (a, b) = (x.row(i), x.row((i + 1).min(n - 1)));
        if fetch {
            fetch_row(x, i + AHEAD_ROWS, n, w);
            fetch_row(x, i + 1 + AHEAD_ROWS, n, w);
        }
        for c in (0..w).step_by(l32) {
            // SAFETY: (i, c .. c + LANES32) and the same of row min(i + 1, n − 1) are inside
            // the strip; m holds w floats.
            unsafe {
                let (va, vb) = (s.fload(a.add(c)), s.fload(b.add(c)));
                let pm = m.as_mut_ptr().add(c);
                s.fstore(pm, s.fmax(va, s.fmax(vb, s.fload(pm))));
                nan = s.fmor(nan, s.fmor(s.fis_nan(va), s.fis_nan(vb)));
            }
        }
        i += 2;
    }
    if s.fmany(nan) {
        return false;
    }
    let mut shifts = Vec::with_capacity(w);
    for c in 0..w {
        match Shift::of(m[c]) {
            Some(shift) => shifts.push(shift),
            None => return false,
        }
    }
    // The lane constants per column; each step loads those of its 16 columns.
    let (mut low, mut k_mm, mut bias) = (vec![0.0f32; w], vec![0.0f32; w], vec![0.0f32; w]);
    for c in 0..w {
        [low[c], k_mm[c], bias[c]] = shifts[c].lane_values();
    }

    // logsumexp columns that take the row kernel's f32 runs (`run_lse`) and log_softmax
    // columns that take its pairs (`paired_log_softmax`) get their sums from `run_sums`; the
    // others (all of them when none does) from pass 2 below.
    let ln_n = (n as f64).ln();
    let log = op == ColOp::LogSoftmax;
    let runs: Vec<bool> = m
        .iter()
        .map(|&m| match op {
            ColOp::Lse => run_lse(m, n, ln_n),
            ColOp::LogSoftmax => paired_log_softmax(m, n, ln_n),
            ColOp::Softmax => false,
        })
        .collect();
    let (run_totals, run_ties) = if !runs.contains(&true) {
        (Vec::new(), Vec::new())
    } else if log {
        // SAFETY: forwarded contract.
        unsafe { run_sums::<S, true>(s, x, n, w, [&low, &k_mm, &bias, &m], fetch) }
    } else {
        unsafe { run_sums::<S, false>(s, x, n, w, [&low, &k_mm, &bias, &m], fetch) }
    };

    // Pass 2: two rows at a time, 16 columns per step; the sums live in per-column arrays.
    // softmax leaves its terms in `out` for pass 3 to scale, unless its writes are deferred.
    let softmax = op == ColOp::Softmax;
    let store = softmax && deferred.is_none();
    let mut acc = vec![0.0f64; w];
    let mut lo = vec![0.0f32; w];
    let mut ties = vec![0.0f32; w];
    // The maxima the entries are compared with to count ties apart: NaN (no entry matches)
    // in the columns whose logsumexp sums rounded terms, as the row kernel does (`fast_lse`).
    let m_ties: Vec<f32> = m
        .iter()
        .map(|&m| tie_value(m, ln_n, op == ColOp::Lse))
        .collect();
    let mut i = if runs.contains(&false) { 0 } else { n };
    while i < n {
        let rows = (n - i).min(2);
        if fetch {
            for r in i + AHEAD_ROWS..i + AHEAD_ROWS + rows {
                fetch_row(x, r, n, w);
                if store {
                    fetch_row(out, r, n, w);
                }
            }
        }
        for c in (0..w).step_by(VLANES) {
            // SAFETY: rows i .. i + rows and columns c .. c + 16 are inside the strip; the
            // state arrays hold w ≥ c + 16 values.
            unsafe {
                let lanes = column_lanes(s, [&low, &k_mm, &bias], c);
                let state = StepState {
                    m: m_ties.as_ptr().add(c),
                    acc: acc.as_mut_ptr().add(c),
                    lo: lo.as_mut_ptr().add(c),
                    ties: ties.as_mut_ptr().add(c),
                };
                // A literal row count at each call, so that the step's arrays stay in
                // registers once inlined.
                if rows == 2 {
                    step(s, x, out, i, 2, c, (softmax, store), &lanes, state);
                } else {
                    step(s, x, out, i, 1, c, (softmax, store), &lanes, state);
                }
            }
        }
        i += rows;
    }

    // Pass 3.
    let mut pair_hi = vec![0.0f32; w];
    let mut pair_lo = vec![0.0f32; w];
    for c0 in (0..w).step_by(VLANES) {
        let columns = c0..c0 + VLANES;
        // The sums were kept as `widen_scaled` left them (scaled, lanes in its order).
        // SAFETY: acc holds w ≥ c0 + 16 doubles.
        let scaled = unsafe { load_chunk::<S, f64>(s, acc.as_ptr().add(c0)) };
        let mut sums = LineSums {
            acc: widened_sums(s, &scaled),
            lo: lo[columns.clone()].try_into().expect("16 columns"),
            ties: ties[columns.clone()].try_into().expect("16 columns"),
            tie: m_ties[columns.clone()].try_into().expect("16 columns"),
            m: m[columns.clone()].try_into().expect("16 columns"),
            k_m: std::array::from_fn(|b| shifts[c0 + b].k_m as f32),
        };
        for b in 0..VLANES {
            if runs[c0 + b] {
                // No low parts; logsumexp's runs count no max entries apart (its tie value
                // is NaN), log_softmax's pairs do.
                let ties = if log { run_ties[c0 + b] } else { 0.0 };
                (sums.acc[b], sums.lo[b], sums.ties[b]) = (run_totals[c0 + b], 0.0, ties);
            }
        }
        match line_results(s, &sums, op) {
            LineResults::Lse(values) => lse[columns].copy_from_slice(&values),
            LineResults::Pair(hi, lo) => {
                pair_hi[columns.clone()].copy_from_slice(&hi);
                pair_lo[columns].copy_from_slice(&lo);
            }
        }
    }
    if op == ColOp::Lse {
        return true;
    }
    if let Some(constants) = deferred {
        debug_assert!(softmax);
        for c0 in (0..w).step_by(VLANES) {
            for array in [&low, &k_mm, &bias, &pair_hi, &pair_lo] {
                constants.extend_from_slice(&array[c0..c0 + VLANES]);
            }
        }
        return true;
    }
    // softmax rescales the y it left in `out`; log_softmax writes (x − hi) − lo.
    let src = if softmax { out } else { x };
    for i in 0..n {
        let (from, to) = (src.row(i), out.row(i));
        if fetch {
            fetch_row(src, i + AHEAD_ROWS, n, w);
            if !softmax {
                fetch_row(out, i + AHEAD_ROWS, n, w);
            }
        }
        for c in (0..w).step_by(l32) {
            // SAFETY: as in pass 1, for reading `src` and writing `out`.
            unsafe {
                let v = s.fload(from.add(c));
                let (hi, lo) = (
                    s.fload(pair_hi.as_ptr().add(c)),
                    s.fload(pair_lo.as_ptr().add(c)),
                );
                let y = if softmax {
                    times_pair(s, v, hi, lo)
                } else {
                    minus_pair(s, v, hi, lo)
                };
                s.fstore(to.add(c), y);
            }
        }
    }
    true
}

/// For logsumexp columns that take the f32 runs of the row kernel (see `rows32::run_lse`),
/// or with `LOG` log_softmax columns that take its pairs (`rows32::paired_log_softmax`):
/// each column's `Σ y` (scaled by 2⁶⁴) by the row kernel's operations, in its order, and with
/// `LOG` its number of max entries (counted apart, their `y` zero). Element `i` of a column is
/// the row kernel's element `i`: virtual lane `i % 16` of block `i / 32`, so the rows are
/// taken as the pairs of each block, rows `i` and `i + 16` in one step ([`pair_step`]); the
/// pairs of a lane are summed in f32 over each run of 128 rows (`run`) and each run's sum is
/// widened into the lane's f64 sum (`acc`), or with `LOG`, whose run is one block, each pair
/// is widened into `acc` at once; at the end the 16 lanes are added as a tree. Every column
/// gets a value; the caller keeps those of its run columns.
///
/// # Safety
/// As for [`strip`]; `consts` are the `low`, `k_mm` and `bias` lane values and the maxima of
/// the `w` columns; `fetch` as for [`strip`].
#[inline(always)]
unsafe fn run_sums<S: Simd, const LOG: bool>(
    s: S,
    x: StripView<f32>,
    n: usize,
    w: usize,
    consts: [&[f32]; 4],
    fetch: bool,
) -> (Vec<f64>, Vec<f32>) {
    let mut state = RunState {
        consts,
        // Lane l of column c at l · w + c: per row one lane's w columns, a contiguous run (the
        // whole strip at once; pieces of 512 or 1024 columns of a full-width strip measured
        // 6–17% slower on (1000, 4096) without fetching ahead, which narrow strips now do).
        run: vec![0.0f32; if LOG { 0 } else { VLANES * w }],
        acc: vec![0.0f64; VLANES * w],
        ties: vec![0.0f32; if LOG { w } else { 0 }],
    };
    // Pair p: rows `first(p)` and `first(p) + 16`.
    let first = |p: usize| p / VLANES * BLOCK + p % VLANES;
    let mut p = 0;
    while first(p) < n {
        let i = first(p);
        if fetch {
            // Two rows a step, as pass 2 asks for them.
            let ahead = first(p + AHEAD_ROWS / 2);
            fetch_row(x, ahead, n, w);
            fetch_row(x, ahead + VLANES, n, w);
        }
        // SAFETY (both calls): rows i and (when < n) i + 16 are inside the strip; forwarded
        // contract.
        unsafe {
            if i + VLANES < n {
                pair_step::<S, LOG, 2>(s, x, i, w, &mut state);
            } else {
                // The last block's first-half rows without a partner: `y + 0 = y`.
                pair_step::<S, LOG, 1>(s, x, i, w, &mut state);
            }
        }
        p += 1;
        if !LOG && first(p).is_multiple_of(RUN_MIN_LEN) {
            flush_runs(s, &mut state.run, &mut state.acc);
        }
    }
    if !LOG {
        flush_runs(s, &mut state.run, &mut state.acc);
    }
    let mut totals = vec![0.0f64; w];
    for c in (0..w).step_by(VLANES) {
        // Each lane's 16 columns in column order, unscaled, then the row kernel's tree.
        let mut by_column = [[0.0f64; VLANES]; VLANES];
        for l in 0..VLANES {
            // SAFETY: acc holds VLANES · w ≥ l · w + c + 16 doubles.
            let scaled = unsafe { load_chunk::<S, f64>(s, state.acc.as_ptr().add(l * w + c)) };
            let sums = widened_sums(s, &scaled);
            for b in 0..VLANES {
                by_column[b][l] = sums[b];
            }
        }
        for b in 0..VLANES {
            totals[c + b] = tree(by_column[b], |a, b| a + b);
        }
    }
    (totals, state.ties)
}

/// The sums of [`run_sums`] and the per-column values it reads.
struct RunState<'a> {
    consts: [&'a [f32]; 4],
    run: Vec<f32>,
    acc: Vec<f64>,
    ties: Vec<f32>,
}

/// [`run_sums`] on the pair of rows `i` and `i + 16` (`ROWS` = 2), or row `i` alone (`ROWS` =
/// 1), of every column: the pair's sum is added to lane `i % 16`'s run, or with `LOG` widened
/// into its f64 sum, and (with `LOG`) its max entries counted.
///
/// # Safety
/// As for [`strip`], for these rows; `state` as [`run_sums`] made it for `w` columns.
#[inline(always)]
unsafe fn pair_step<S: Simd, const LOG: bool, const ROWS: usize>(
    s: S,
    x: StripView<f32>,
    i: usize,
    w: usize,
    state: &mut RunState,
) {
    let (l32, per) = (S::LANES32, nf::<S>());
    let [low, k_mm, bias, maxima] = state.consts;
    let lane = i % VLANES * w;
    let one = s.fsplat(1.0);
    for c in (0..w).step_by(VLANES) {
        // SAFETY: rows i, i + 16 · (ROWS − 1) and columns c .. c + 16 are inside the strip;
        // the constant arrays hold w ≥ c + 16 values and the state arrays VLANES · w (ties w).
        unsafe {
            let lanes = column_lanes(s, [low, k_mm, bias], c);
            let mut v = [s.fsplat(0.0); 2 * VLANES];
            for r in 0..ROWS {
                for j in 0..per {
                    v[r * per + j] = s.fload(x.row(i + r * VLANES).add(c + j * l32));
                }
            }
            let count = ROWS * per;
            let (t, p2) = if LOG {
                exp_terms::<S, { 2 * VLANES }>(s, &v, count, &lanes)
            } else {
                run_terms::<S, { 2 * VLANES }>(s, &v, count, &lanes)
            };
            for j in 0..per {
                let at = c + j * l32;
                let mut pair = s.fsplat(0.0);
                if LOG {
                    let m = s.fload(maxima.as_ptr().add(at));
                    let mut ties = s.fload(state.ties.as_ptr().add(at));
                    for r in 0..ROWS {
                        let k = r * per + j;
                        let (y, _, at_max) = lse_term(s, t[k], p2[k], v[k], m);
                        ties = s.fadd_keep(at_max, ties, one);
                        pair = if r == 0 { y } else { s.fadd(pair, y) };
                    }
                    s.fstore(state.ties.as_mut_ptr().add(at), ties);
                    for r in 0..ratio::<S>() {
                        let p = state.acc.as_mut_ptr().add(lane + at + r * S::LANES);
                        s.store_f64(p, s.add(s.load_f64(p), s.widen_scaled(pair, r)));
                    }
                } else {
                    for r in 0..ROWS {
                        let k = r * per + j;
                        let y = s.ffma(t[k], p2[k], p2[k]);
                        pair = if r == 0 { y } else { s.fadd(pair, y) };
                    }
                    let p = state.run.as_mut_ptr().add(lane + at);
                    s.fstore(p, s.fadd(s.fload(p), pair));
                }
            }
        }
    }
}

/// [`run_sums`]: add the runs (of 16 lanes of `w` columns, a multiple of 16) into the f64
/// sums, in `widen_scaled`'s lane order (as the strips keep theirs), and start new runs.
#[inline(always)]
fn flush_runs<S: Simd>(s: S, run: &mut [f32], acc: &mut [f64]) {
    debug_assert!(acc.len() == run.len() && run.len().is_multiple_of(VLANES));
    for at in (0..run.len()).step_by(S::LANES32) {
        // SAFETY: at + LANES32 <= run.len() = acc.len() (a multiple of 16).
        unsafe {
            let v = s.fload(run.as_ptr().add(at));
            for r in 0..ratio::<S>() {
                let p = acc.as_mut_ptr().add(at + r * S::LANES);
                s.store_f64(p, s.add(s.load_f64(p), s.widen_scaled(v, r)));
            }
            s.fstore(run.as_mut_ptr().add(at), s.fsplat(0.0));
        }
    }
}

/// The lane constants of the 16 columns at `c` from the per-column `low`, `k_mm` and `bias`
/// arrays (see [`Shift::lane_values`]). Unchecked: bounds checks here, in the passes' column
/// loops, measured ×0.90–0.97 on axis-0 logsumexp and log_softmax (A/B, both orders).
///
/// # Safety
/// Each array holds at least `c + 16` floats.
#[inline(always)]
unsafe fn column_lanes<S: Simd>(s: S, consts: [&[f32]; 3], c: usize) -> LaneShift<S::F> {
    // SAFETY: forwarded contract.
    let [low, k_mm, bias] = consts.map(|a| unsafe { a.as_ptr().add(c) });
    // SAFETY: each pointer starts 16 floats of its array.
    unsafe { LaneShift::load(s, low, k_mm, bias) }
}

/// Pointers to the per-column state of 16 columns.
struct StepState {
    m: *const f32,
    acc: *mut f64,
    lo: *mut f32,
    ties: *mut f32,
}

/// Pass 2 on rows `i .. i + rows` (`rows` is 1 or 2, a constant at each call site) of the 16
/// columns at `c`: their exponentials interleaved, each column's sum taken in row order.
/// `(softmax, store)`: softmax's terms (rather than log_softmax's exact pairs), and whether
/// they are stored into `out`.
///
/// # Safety
/// As for [`strip`], for these rows and columns; `state` points at 16 columns of each array.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn step<S: Simd>(
    s: S,
    x: StripView<f32>,
    out: StripView<f32>,
    i: usize,
    rows: usize,
    c: usize,
    (softmax, store): (bool, bool),
    lanes: &LaneShift<S::F>,
    state: StepState,
) {
    let per = nf::<S>();
    let (l32, l64) = (S::LANES32, S::LANES);
    let count = rows * per;
    let mut v = [s.fsplat(0.0); 2 * VLANES];
    for k in 0..count {
        // SAFETY: forwarded contract.
        v[k] = unsafe { s.fload(x.row(i + k / per).add(c + (k % per) * l32)) };
    }
    let (t, p2) = pass_terms::<S, { 2 * VLANES }>(s, &v, count, lanes, softmax);
    let mut acc = [s.splat(0.0); VLANES];
    let mut lo = [s.fsplat(0.0); VLANES];
    let mut ties = [s.fsplat(0.0); VLANES];
    let mut m = [s.fsplat(0.0); VLANES];
    // SAFETY (loads and stores of the state): 16 columns of each array.
    unsafe {
        for a in 0..VLANES / l64 {
            acc[a] = s.load_f64(state.acc.add(a * l64));
        }
        if !softmax {
            for j in 0..per {
                lo[j] = s.fload(state.lo.add(j * l32));
                ties[j] = s.fload(state.ties.add(j * l32));
                m[j] = s.fload(state.m.add(j * l32));
            }
        }
    }
    let one = s.fsplat(1.0);
    for k in 0..count {
        let j = k % per;
        let y = if softmax {
            let y = s.ffma(t[k], p2[k], p2[k]);
            if store {
                // SAFETY: forwarded contract (softmax writes `out`).
                unsafe { s.fstore(out.row(i + k / per).add(c + j * l32), y) };
            }
            y
        } else {
            let (y, y_lo, at_max) = lse_term(s, t[k], p2[k], v[k], m[j]);
            ties[j] = s.fadd_keep(at_max, ties[j], one);
            lo[j] = s.fadd(lo[j], y_lo);
            y
        };
        for r in 0..ratio::<S>() {
            let a = j * ratio::<S>() + r;
            acc[a] = s.add(acc[a], s.widen_scaled(y, r));
        }
    }
    // SAFETY: as above.
    unsafe {
        for a in 0..VLANES / l64 {
            s.store_f64(state.acc.add(a * l64), acc[a]);
        }
        if !softmax {
            for j in 0..per {
                s.fstore(state.lo.add(j * l32), lo[j]);
                s.fstore(state.ties.add(j * l32), ties[j]);
            }
        }
    }
}

/// softmax's write pass that the strips of `w` adjacent columns (a multiple of 16) left to it
/// (see [`defers_writes`]): rows `0 .. n` of `out` from those of `x` (which may be `out`), in
/// row order, `y · (hi + lo)` from each column's `constants`, its terms `y` taken again as
/// pass 2 took them: the values of the strips' pass 3, bit for bit.
///
/// # Safety
/// `x` readable and `out` writable at `(i, c)` for `i < n`, `c < w`; `constants` holds the
/// [`ColumnConstants`] of the `w` columns.
#[inline(always)]
pub(crate) unsafe fn write_rows<S: Simd>(
    s: S,
    x: StripView<f32>,
    out: StripView<f32>,
    n: usize,
    w: usize,
    constants: &[f32],
) {
    debug_assert!(w.is_multiple_of(VLANES) && constants.len() == w / VLANES * GROUP_CONSTANTS);
    // Rows per step: each group's constants are loaded once for all of them, and their
    // exponentials run side by side (eight vectors; four rows measured ×0.95–0.99 as fast).
    let mut i = 0;
    // SAFETY (all calls): rows i .. i + R < n, forwarded contract.
    unsafe {
        match nf::<S>() {
            1 => {
                while i + 8 <= n {
                    write_row_block::<S, 8>(s, x, out, i, w, constants);
                    i += 8;
                }
            }
            2 => {
                while i + 4 <= n {
                    write_row_block::<S, 4>(s, x, out, i, w, constants);
                    i += 4;
                }
            }
            _ => {}
        }
        for r in i..n {
            write_row_block::<S, 1>(s, x, out, r, w, constants);
        }
    }
}

/// [`write_rows`] on rows `i .. i + R`.
///
/// # Safety
/// As for [`write_rows`], for these rows; `R · nf ≤ 2 · VLANES`.
#[inline(always)]
unsafe fn write_row_block<S: Simd, const R: usize>(
    s: S,
    x: StripView<f32>,
    out: StripView<f32>,
    i: usize,
    w: usize,
    constants: &[f32],
) {
    let (l32, per) = (S::LANES32, nf::<S>());
    for c in (0..w).step_by(VLANES) {
        let group = &constants[c / VLANES * GROUP_CONSTANTS..][..GROUP_CONSTANTS];
        let [low, k_mm, bias, hi, lo] = [0, 1, 2, 3, 4].map(|a| group[a * VLANES..].as_ptr());
        // SAFETY: rows i .. i + R and columns c .. c + 16 are inside the views; each constant
        // array holds 16 floats.
        unsafe {
            let mut v = [s.fsplat(0.0); 2 * VLANES];
            for r in 0..R {
                for j in 0..per {
                    v[r * per + j] = s.fload(x.row(i + r).add(c + j * l32));
                }
            }
            let lanes = LaneShift::load(s, low, k_mm, bias);
            let (t, p2) = pass_terms::<S, { 2 * VLANES }>(s, &v, R * per, &lanes, true);
            for j in 0..per {
                let (h, l) = (s.fload(hi.add(j * l32)), s.fload(lo.add(j * l32)));
                for r in 0..R {
                    let k = r * per + j;
                    let y = s.ffma(t[k], p2[k], p2[k]);
                    s.fstore(out.row(i + r).add(c + j * l32), times_pair(s, y, h, l));
                }
            }
        }
    }
}
