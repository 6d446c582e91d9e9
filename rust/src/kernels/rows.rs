//! The passes over one row that every softmax-family function is built from, generic over the
//! SIMD implementation and the element type.
//!
//! Algorithm (Blanchard, Higham & Higham 2021, with the rounding of `x − max` carried):
//! 1. `m = max x` (NaN noted separately, `+inf` entries counted only when `m = +inf`);
//! 2. `S = Σ e^{(x_i − m)/T}` with `x_i − m` as an exact double-double (TwoSum) for f64, the exp
//!    kept as `2^k(1+t)` and summed with per-lane compensation. Rows without a temperature or
//!    weights reach this path only when their maximum is beyond the shifted passes' range
//!    (float32 ±65536, see [`super::rows32`]; float64 ±2³⁰, see [`super::rows64`]), which take
//!    the others; float32 data is computed here in f64 lanes, where `x − m` is exact and a
//!    plain f64 sum is ample;
//! 3. logsumexp `= m + log S` with `log S = log1p(S − 1)` near 1 (the max contributes exactly 1);
//!    softmax `= 2^k (1 + t) / S` rounded once; log_softmax `= (x − m)/T − log S`.
//!
//! Elements are assigned to [`VLANES`] virtual lanes (`i % 16`) and the lanes are combined by a
//! fixed tree, so results are bit-identical on every [`Simd`] implementation.

// Kernels index several per-lane arrays with one virtual-lane index; iterators would hide that.
#![allow(clippy::needless_range_loop)]

use std::marker::PhantomData;

use crate::math::exp::{exp_parts, Degree, ExpParts};
use crate::simd::{prefetch, Element, Simd, VLANES};

/// `(x − m)/T` as an unevaluated sum `hi + lo`.
#[derive(Clone, Copy)]
pub(crate) struct Scaling {
    /// `1/T` (1 when no temperature).
    pub inv_t: f64,
    /// `T`.
    pub t: f64,
    /// Whether `T != 1`.
    pub active: bool,
}

impl Scaling {
    /// No temperature.
    pub const NONE: Scaling = Scaling {
        inv_t: 1.0,
        t: 1.0,
        active: false,
    };

    /// Temperature `t > 0`.
    pub fn temperature(t: f64) -> Scaling {
        Scaling {
            inv_t: 1.0 / t,
            t,
            active: t != 1.0,
        }
    }
}

#[inline(always)]
fn degree<E: Element>() -> Degree {
    if E::IS_F64 {
        Degree::Full
    } else {
        Degree::Short
    }
}

#[inline(always)]
fn nv<S: Simd>() -> usize {
    VLANES / S::LANES
}

/// Load one chunk of `VLANES` elements as `VLANES / LANES` vectors.
///
/// # Safety
/// `p` must be valid for reading `VLANES` elements.
#[inline(always)]
pub(crate) unsafe fn load_chunk<S: Simd, E: Element>(s: S, p: *const E) -> [S::V; VLANES] {
    let mut v = [s.splat(0.0); VLANES];
    for (j, vj) in v.iter_mut().enumerate().take(nv::<S>()) {
        // SAFETY: j * LANES + LANES <= VLANES elements are readable.
        *vj = unsafe { E::load(s, p.add(j * S::LANES)) };
    }
    v
}

/// Copy the last `len < VLANES` elements into a padded chunk.
///
/// # Safety
/// `p` must be valid for reading `len` elements.
#[inline(always)]
unsafe fn tail_chunk<E: Element>(p: *const E, len: usize, pad: f64) -> [E; VLANES] {
    let mut buf = [E::from_f64(pad); VLANES];
    // SAFETY: `len` elements readable; `buf` holds VLANES >= len.
    unsafe { std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), len) };
    buf
}

/// A row after this one (the next, or for short contiguous rows the one about 8 KB on: see
/// [`fetch_rows_ahead`]), whose cache lines a pass over this row asks for as it goes (two
/// lines, 128 bytes, per step: one float32 block or float64 chunk), so that that row's max
/// pass reads from the cache instead of waiting on memory.
///
/// The hardware prefetchers follow a stream of loads (within a 4 KB page), and a pass that reads
/// from L1 and computes gives them nothing to follow: the max pass that starts the next row
/// then waits on memory with nothing to overlap. The shifted row kernels
/// ([`super::rows32`], [`super::rows64`]) ask for the next row inside their exponential pass,
/// which is bound by its arithmetic, so the loads cost it little (and float32 one-pass
/// softmax in its scale pass, for rows up to 64 KB); the generic passes (a temperature, or a
/// maximum beyond the shifted range) do not. A/B on an AVX-512 machine, one thread: float32
/// log_softmax ×1.18–1.46 and float64 softmax / logsumexp ×1.16–1.64 on rows of 1000–32000.
/// log_softmax's sum pass also asks for its own row's output this way (see `rows32::lse_sum`,
/// `rows64::lse_sum`), and float32 one-pass softmax for its output ahead of its stores (see
/// `rows32::one_pass_sum`). Never read: only prefetched, so it may point anywhere (the results do
/// not depend on it).
#[derive(Clone, Copy)]
pub(crate) struct NextRow {
    at: *const u8,
    /// Cache lines per step: 2 for a contiguous row, `2·stride` for a strided one.
    lines: usize,
}

impl NextRow {
    /// No next row (the last of a thread's rows, or rows already in the cache).
    pub const NONE: NextRow = NextRow {
        at: std::ptr::null(),
        lines: 0,
    };

    /// The row that starts at `p` with its elements `stride` apart (1: contiguous); none for a
    /// stride that is not positive or exceeds [`FETCH_STRIDE_MAX`] (a wider one would ask for
    /// more lines than the row uses).
    pub fn strided<E>(p: *const E, stride: isize) -> NextRow {
        if (1..=FETCH_STRIDE_MAX).contains(&stride) {
            NextRow {
                at: p.cast(),
                lines: 2 * stride as usize,
            }
        } else {
            NextRow::NONE
        }
    }

    /// A log_softmax row's own contiguous output `out`, for its sum pass to ask for; none in
    /// place (`out` is `x`), where the output is the row the pass reads.
    pub fn own_output<E>(x: *const E, out: *mut E) -> NextRow {
        if std::ptr::eq(x, out) {
            NextRow::NONE
        } else {
            NextRow::strided(out.cast_const(), 1)
        }
    }

    /// Ask for the lines of the row's next 32 float32 or 16 float64 elements.
    #[inline(always)]
    pub fn fetch_step(&mut self) {
        for k in 0..self.lines {
            prefetch(self.at.wrapping_add(64 * k));
        }
        self.at = self.at.wrapping_add(64 * self.lines);
    }
}

/// A pass's `op`, asking for a row's lines step by step as it goes (the next row's, or the
/// row's own output in log_softmax; nested for both): each row module
/// ([`super::rows32`]'s blocks, [`super::rows64`]'s chunks, 128 bytes either way) runs it as
/// its own pass trait.
pub(crate) struct Fetching<'a, Op> {
    pub op: &'a mut Op,
    pub next: NextRow,
}

/// The widest stride whose rows are fetched ahead (see [`NextRow::strided`]).
const FETCH_STRIDE_MAX: isize = 4;

/// How far ahead, in bytes, contiguous rows ask for their lines (see [`fetch_rows_ahead`]).
const FETCH_LEAD: usize = 8192;

/// The most rows ahead a contiguous row asks for (rows of 2 KB or less).
const FETCH_ROWS_MAX: usize = 4;

/// Which row on from this one a contiguous row of `row_bytes` asks for as its [`NextRow`]:
/// the one about [`FETCH_LEAD`] bytes on, at least the next and at most [`FETCH_ROWS_MAX`]
/// on. The passes over a short row take less time than its lines take to arrive from memory,
/// so asked for one row ahead they come late for that row's max pass. `benches/ab_builds.py
/// --out`, both orders, one thread: float32 logsumexp (8192, 500) ×1.20–1.30 and (4096, 1000)
/// ×1.18–1.28, softmax ×1.03–1.24 and ×1.00–1.07, log_softmax ×1.02–1.08 on both; float64
/// logsumexp (8192, 500) ×1.09–1.10, softmax and log_softmax ×0.95–1.03. Rows of 250 (eight
/// rows on measured ×0.96–0.98 for softmax and log_softmax; four, ×0.99–1.01) and rows of
/// 8 KB or more (the next row, as before) unchanged.
pub(crate) fn fetch_rows_ahead(row_bytes: usize) -> usize {
    (FETCH_LEAD / row_bytes.max(1)).clamp(1, FETCH_ROWS_MAX)
}

/// Spill the accumulators to the 16 virtual lanes.
#[inline(always)]
pub(crate) fn spill<S: Simd>(s: S, acc: &[S::V; VLANES]) -> [f64; VLANES] {
    let mut out = [0.0f64; VLANES];
    for j in 0..nv::<S>() {
        // SAFETY: out has room for VLANES doubles; j * LANES + LANES <= VLANES.
        unsafe { s.store_f64(out.as_mut_ptr().add(j * S::LANES), acc[j]) };
    }
    out
}

/// Combine the 16 virtual lanes with a fixed tree: lane j with lane j + w for w = 8, 4, 2, 1.
#[inline(always)]
pub(crate) fn tree<T: Copy>(mut a: [T; VLANES], op: impl Fn(T, T) -> T) -> T {
    let mut w = VLANES / 2;
    while w > 0 {
        for j in 0..w {
            a[j] = op(a[j], a[j + w]);
        }
        w /= 2;
    }
    a[0]
}

/// Error-free `a + b = s + e`.
#[inline(always)]
pub(crate) fn two_sum_v<S: Simd>(s: S, a: S::V, b: S::V) -> (S::V, S::V) {
    let sum = s.add(a, b);
    let bb = s.sub(sum, a);
    let e = s.add(s.sub(a, s.sub(sum, bb)), s.sub(b, bb));
    (sum, e)
}

#[inline(always)]
pub(crate) fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let sum = a + b;
    let bb = sum - a;
    (sum, (a - (sum - bb)) + (b - bb))
}

/// `(x − m)/T` as `(hi, lo)`; `lo` is zero for f32 data and never NaN.
#[inline(always)]
pub(crate) fn shifted<S: Simd, E: Element>(s: S, x: S::V, m: S::V, sc: Scaling) -> (S::V, S::V) {
    if !E::IS_F64 {
        // f32 data in f64 lanes: x − m is exact and the scaling error is far below f32's.
        let d = s.sub(x, m);
        let d = if sc.active {
            s.mul(d, s.splat(sc.inv_t))
        } else {
            d
        };
        return (d, s.splat(0.0));
    }
    let (mut hi, mut lo) = two_sum_v(s, x, s.sub(s.splat(0.0), m));
    if sc.active {
        // Division by T to double-double accuracy: the FMA remainder of q·T is exact.
        let q = s.mul(hi, s.splat(sc.inv_t));
        let rem = s.fma(s.sub(s.splat(0.0), q), s.splat(sc.t), hi);
        lo = s.mul(s.add(rem, lo), s.splat(sc.inv_t));
        hi = q;
    }
    // -inf entries (masked or underflowing) make the low part NaN (inf − inf); it must vanish.
    let lo = s.select(s.eq(lo, lo), lo, s.splat(0.0));
    (hi, lo)
}

/// One chunk of pass 1: the running maxima, and a plain sum per lane that any NaN entry turns
/// NaN (and +inf with −inf, which [`row_max`] then rules out): vector operations only. Testing
/// each vector for NaN (a mask compare, moved to a general register and or-ed) took three more
/// instructions per vector, a third of the pass on rows in L2.
#[inline(always)]
fn max_step<S: Simd>(
    s: S,
    v: &[S::V; VLANES],
    acc: &mut [S::V; VLANES],
    probe: &mut [S::V; VLANES],
) {
    for j in 0..nv::<S>() {
        // max(v, acc) returns acc when v is NaN: the NaN shows in `probe` instead.
        acc[j] = s.max(v[j], acc[j]);
        probe[j] = s.add(probe[j], v[j]);
    }
}

/// Whether any of the `n` entries at `x` is NaN, tested vector by vector: [`row_max`]'s
/// answer when its sums are NaN (a NaN entry, or +inf and −inf in one lane).
///
/// # Safety
/// `x` must be valid for reading `n` elements.
#[inline(always)]
unsafe fn has_nan<S: Simd, E: Element>(s: S, x: *const E, n: usize) -> bool {
    let mut nan = s.none();
    let body = n - n % VLANES;
    let mut i = 0;
    while i < body {
        // SAFETY: i + VLANES <= n.
        let v = unsafe { load_chunk::<S, E>(s, x.add(i)) };
        for j in 0..nv::<S>() {
            nan = s.or(nan, s.is_nan(v[j]));
        }
        i += VLANES;
    }
    // SAFETY: k < n.
    s.any(nan) || (i..n).any(|k| unsafe { (*x.add(k)).to_f64() }.is_nan())
}

/// Pass 1: the row maximum (NaN ignored) and whether a NaN is present.
///
/// # Safety
/// `x` must be valid for reading `n` elements.
#[inline(always)]
pub(crate) unsafe fn row_max<S: Simd, E: Element>(s: S, x: *const E, n: usize) -> (f64, bool) {
    let mut acc = [s.splat(f64::NEG_INFINITY); VLANES];
    let mut probe = [s.splat(0.0); VLANES];
    let body = n - n % VLANES;
    let mut i = 0;
    while i < body {
        // SAFETY: i + VLANES <= n.
        let v = unsafe { load_chunk::<S, E>(s, x.add(i)) };
        max_step(s, &v, &mut acc, &mut probe);
        i += VLANES;
    }
    if i < n {
        // SAFETY: n - i elements remain.
        let buf = unsafe { tail_chunk(x.add(i), n - i, f64::NEG_INFINITY) };
        // SAFETY: buf holds VLANES elements.
        let v = unsafe { load_chunk::<S, E>(s, buf.as_ptr()) };
        max_step(s, &v, &mut acc, &mut probe);
    }
    let m = tree(spill(s, &acc), |a, b| if a > b { a } else { b });
    let probed = probe[..nv::<S>()].iter().any(|&p| s.any(s.is_nan(p)));
    // SAFETY: forwarded contract.
    (m, probed && unsafe { has_nan(s, x, n) })
}

/// One chunk of pass 2: accumulate `w · e^{(x − m)/T}` into the per-lane sums.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // the per-lane state of one pass, kept in registers
fn sum_step<S: Simd, E: Element>(
    s: S,
    v: &[S::V; VLANES],
    wv: &[S::V; VLANES],
    mv: S::V,
    sc: Scaling,
    weighted: bool,
    hi: &mut [S::V; VLANES],
    lo: &mut [S::V; VLANES],
    stash: *mut f64,
) {
    // Weighted sums may cancel; f64 results need the extra bits. Plain f32 sums do not.
    let compensated = E::IS_F64 || weighted;
    let one = s.splat(1.0);
    for j in 0..nv::<S>() {
        let (d_hi, d_lo) = shifted::<S, E>(s, v[j], mv, sc);
        let p: ExpParts<S::V> = exp_parts(s, d_hi, d_lo, degree::<E>());
        if compensated {
            if !stash.is_null() {
                // float64 softmax keeps t and 2^k (one double: exact down to 2⁻¹⁰⁷⁴) for the
                // write pass, chunk-wise as [t × 16, 2^k × 16].
                // SAFETY: the caller sized the stash for two whole chunks at this offset.
                unsafe {
                    s.store_f64(stash.add(j * S::LANES), p.t);
                    s.store_f64(stash.add(VLANES + j * S::LANES), s.mul(p.pow_a, p.pow_b));
                }
            }
            // e = 2^k (h + l) exactly, h = 1 + t rounded (Fast2Sum: |t| < 1).
            let h = s.add(one, p.t);
            let l = s.sub(p.t, s.sub(h, one));
            let (mut eh, mut el) = (p.scale(s, h), p.scale(s, l));
            if weighted {
                let prod = s.mul(eh, wv[j]);
                let err = s.fma(eh, wv[j], s.sub(s.splat(0.0), prod));
                el = s.fma(el, wv[j], err);
                eh = prod;
            }
            let (sum, e) = two_sum_v(s, hi[j], eh);
            hi[j] = sum;
            lo[j] = s.add(lo[j], s.add(e, el));
        } else {
            let e = p.scale(s, s.add(one, p.t));
            if !stash.is_null() {
                // SAFETY: the caller sized the stash for a whole chunk at this offset.
                unsafe { s.store_f64(stash.add(j * S::LANES), e) };
            }
            // BHH: the max entries contribute exactly 1 each; count them apart so the sum of
            // the others keeps its relative accuracy for log1p (f64 has 2⁻⁵³ next to 1 only).
            let at_max = s.eq(d_hi, s.splat(0.0));
            hi[j] = s.add(hi[j], s.select(at_max, s.splat(0.0), e));
            lo[j] = s.add(lo[j], s.select(at_max, one, s.splat(0.0)));
        }
    }
}

/// Pass 2: `Σ w_i e^{(x_i − m)/T}` as `(hi, lo)` (w = 1 when `w` is null).
///
/// With a non-null `stash` (unweighted only), softmax's exponentials are kept so it need not
/// evaluate `exp` twice: for float32 data `e^{(x_i − m)/T}` at `stash[i]`; for float64 data
/// `t` and `2^k` per chunk at `stash[2·i ..]` (see `sum_step`).
///
/// # Safety
/// `x` (and `w` unless null) must be valid for reading `n` elements; `m` must be finite;
/// a non-null `stash` must be writable for `n + VLANES` doubles (twice that for float64).
#[inline(always)]
pub(crate) unsafe fn row_sum<S: Simd, E: Element>(
    s: S,
    x: *const E,
    w: *const E,
    n: usize,
    m: f64,
    sc: Scaling,
    stash: *mut f64,
) -> ExpSum {
    let weighted = !w.is_null();
    let mv = s.splat(m);
    let mut hi = [s.splat(0.0); VLANES];
    let mut lo = [s.splat(0.0); VLANES];
    let empty = [s.splat(0.0); VLANES];
    let body = n - n % VLANES;
    let mut i = 0;
    while i < body {
        // SAFETY: i + VLANES <= n for x and w.
        unsafe {
            let v = load_chunk::<S, E>(s, x.add(i));
            let wv = if weighted {
                load_chunk::<S, E>(s, w.add(i))
            } else {
                empty
            };
            let per = if E::IS_F64 { 2 } else { 1 };
            let st = if stash.is_null() {
                stash
            } else {
                stash.add(per * i)
            };
            sum_step::<S, E>(s, &v, &wv, mv, sc, weighted, &mut hi, &mut lo, st);
        }
        i += VLANES;
    }
    if i < n {
        // SAFETY: n - i elements remain; padding contributes e^-inf = 0 (times weight 0).
        unsafe {
            let buf = tail_chunk(x.add(i), n - i, f64::NEG_INFINITY);
            let v = load_chunk::<S, E>(s, buf.as_ptr());
            let wv = if weighted {
                let wb = tail_chunk(w.add(i), n - i, 0.0);
                load_chunk::<S, E>(s, wb.as_ptr())
            } else {
                empty
            };
            let per = if E::IS_F64 { 2 } else { 1 };
            let st = if stash.is_null() {
                stash
            } else {
                stash.add(per * i)
            };
            sum_step::<S, E>(s, &v, &wv, mv, sc, weighted, &mut hi, &mut lo, st);
        }
    }
    let his = spill(s, &hi);
    let los = spill(s, &lo);
    if !(E::IS_F64 || weighted) {
        // Plain sums: `hi` holds the terms below the max, `lo` counts the max entries.
        let others = tree(his, |a, b| a + b);
        let ties = tree(los, |a, b| a + b);
        let (h, l) = two_sum(ties, others);
        return ExpSum {
            hi: h,
            lo: l,
            below_single_max: (ties == 1.0).then_some((others, 0.0)),
        };
    }
    let mut pairs = [(0.0f64, 0.0f64); VLANES];
    for j in 0..VLANES {
        pairs[j] = (his[j], los[j]);
    }
    let (h, l) = tree(pairs, |(h1, l1), (h2, l2)| {
        let (sum, e) = two_sum(h1, h2);
        (sum, l1 + l2 + e)
    });
    let (hi, lo) = two_sum(h, l);
    ExpSum {
        hi,
        lo,
        below_single_max: None,
    }
}

/// A row's `S = Σ w_i e^{(x_i − m)/T}`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExpSum {
    /// `S ≈ hi + lo`, `|lo| ≤ ulp(hi)/2`.
    pub hi: f64,
    /// See `hi`.
    pub lo: f64,
    /// `S − 1` to full relative accuracy (as a pair `a + b`), when the row has exactly one
    /// maximum and that was tracked apart (the shifted passes; the generic float64 sums carry
    /// `S − 1` in `lo` instead).
    pub below_single_max: Option<(f64, f64)>,
}

impl ExpSum {
    /// `log S`, with `log1p` where `S` is near 1.
    #[inline]
    pub fn ln(&self) -> f64 {
        match self.below_single_max {
            Some((a, b)) => a.ln_1p() + b / (1.0 + a),
            None => log_of_sum(self.hi, self.lo),
        }
    }
}

/// `log(hi + lo)` for a positive double-double; `log1p` near 1, where it matters.
#[inline]
pub(crate) fn log_of_sum(hi: f64, lo: f64) -> f64 {
    if (0.5..=2.0).contains(&hi) {
        // hi − 1 is exact here (Sterbenz).
        ((hi - 1.0) + lo).ln_1p()
    } else {
        hi.ln() + lo / hi
    }
}

/// Rows up to this length keep their float32 softmax exponentials (8 bytes each) in a stash.
const STASH_MAX: usize = 1 << 15;

/// `out_i = stash_i · inv`, rounded once to `E`.
///
/// # Safety
/// `stash` readable for `n + VLANES` doubles, `out` writable for `n` elements.
#[inline(always)]
pub(crate) unsafe fn write_scaled<S: Simd, E: Element>(
    s: S,
    stash: *const f64,
    out: *mut E,
    n: usize,
    inv: f64,
) {
    let iv = s.splat(inv);
    let body = n - n % S::LANES;
    let mut i = 0;
    while i < body {
        // SAFETY: i + LANES <= n.
        unsafe { E::store(s, out.add(i), s.mul(s.load_f64(stash.add(i)), iv)) };
        i += S::LANES;
    }
    if i < n {
        let mut res = [E::from_f64(0.0); VLANES];
        // SAFETY: the stash is padded to n + VLANES; res holds VLANES >= LANES elements.
        unsafe {
            E::store(s, res.as_mut_ptr(), s.mul(s.load_f64(stash.add(i)), iv));
            std::ptr::copy_nonoverlapping(res.as_ptr(), out.add(i), n - i);
        }
    }
}

/// Pass 3 for float64 softmax from the stash of `row_sum`: `out_i = 2^k · inv · (1 + t)`.
///
/// # Safety
/// `stash` readable for `2·(n + VLANES)` doubles as written by `row_sum`; `out` writable for
/// `n` doubles.
#[inline(always)]
unsafe fn write_softmax_stashed<S: Simd>(
    s: S,
    stash: *const f64,
    out: *mut f64,
    n: usize,
    (inv_hi, inv_lo): (f64, f64),
) {
    let (ih, il) = (s.splat(inv_hi), s.splat(inv_lo));
    let mut i = 0;
    while i < n {
        let full = i + VLANES <= n;
        let mut res = [0.0f64; VLANES];
        for j in 0..nv::<S>() {
            // SAFETY: chunk i of the stash holds [t × 16, 2^k × 16]; a full chunk has room at
            // out + i, a partial one goes through `res` (VLANES doubles).
            unsafe {
                let t = s.load_f64(stash.add(2 * i + j * S::LANES));
                let p = s.load_f64(stash.add(2 * i + VLANES + j * S::LANES));
                let y = s.mul(s.add(ih, s.fma(ih, t, s.fma(il, t, il))), p);
                let dst = if full { out.add(i) } else { res.as_mut_ptr() };
                s.store_f64(dst.add(j * S::LANES), y);
            }
        }
        if !full {
            // SAFETY: n − i doubles writable at out + i.
            unsafe { std::ptr::copy_nonoverlapping(res.as_ptr(), out.add(i), n - i) };
        }
        i += VLANES;
    }
}

/// A per-element map applied by [`write_pass`].
trait ElementMap<S: Simd>: Copy {
    fn apply(self, s: S, v: S::V) -> S::V;
}

/// `e^{(x − m)/T} · inv`, `inv = inv_hi + inv_lo ≈ 1/S`.
struct SoftmaxMap<V, E> {
    m: V,
    inv_hi: V,
    inv_lo: V,
    sc: Scaling,
    elem: PhantomData<E>,
}

impl<V: Copy, E> Clone for SoftmaxMap<V, E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<V: Copy, E> Copy for SoftmaxMap<V, E> {}

impl<S: Simd, E: Element> ElementMap<S> for SoftmaxMap<S::V, E> {
    #[inline(always)]
    fn apply(self, s: S, v: S::V) -> S::V {
        let (d_hi, d_lo) = shifted::<S, E>(s, v, self.m, self.sc);
        let p = exp_parts(s, d_hi, d_lo, degree::<E>());
        // inv · (1 + t) with one rounding of the leading part (f32 results need no inv_lo).
        let y = if E::IS_F64 {
            let low = s.fma(self.inv_lo, p.t, self.inv_lo);
            s.add(self.inv_hi, s.fma(self.inv_hi, p.t, low))
        } else {
            s.fma(self.inv_hi, p.t, self.inv_hi)
        };
        p.scale(s, y)
    }
}

/// `(x − m)/T − log S`.
struct LogSoftmaxMap<V, E> {
    m: V,
    log_s: V,
    sc: Scaling,
    elem: PhantomData<E>,
}

impl<V: Copy, E> Clone for LogSoftmaxMap<V, E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<V: Copy, E> Copy for LogSoftmaxMap<V, E> {}

impl<S: Simd, E: Element> ElementMap<S> for LogSoftmaxMap<S::V, E> {
    #[inline(always)]
    fn apply(self, s: S, v: S::V) -> S::V {
        let (d_hi, d_lo) = shifted::<S, E>(s, v, self.m, self.sc);
        // d_hi ≤ 0 ≤ log S: no cancellation; the low part joins after the leading difference.
        s.add(s.sub(d_hi, self.log_s), d_lo)
    }
}

/// Pass 3 for softmax: `out_i = e^{(x_i − m)/T} / S`, with `inv = inv_hi + inv_lo ≈ 1/S`.
///
/// # Safety
/// `x` readable and `out` writable for `n` elements; they may be the same pointer.
#[inline(always)]
pub(crate) unsafe fn write_softmax<S: Simd, E: Element>(
    s: S,
    x: *const E,
    out: *mut E,
    n: usize,
    m: f64,
    sc: Scaling,
    (inv_hi, inv_lo): (f64, f64),
) {
    let map = SoftmaxMap {
        m: s.splat(m),
        inv_hi: s.splat(inv_hi),
        inv_lo: s.splat(inv_lo),
        sc,
        elem: PhantomData::<E>,
    };
    // SAFETY: forwarded contract.
    unsafe { write_pass::<S, E, _>(s, x, out, n, map) }
}

/// Pass 3 for log_softmax: `out_i = (x_i − m)/T − log S`.
///
/// # Safety
/// As [`write_softmax`].
#[inline(always)]
pub(crate) unsafe fn write_log_softmax<S: Simd, E: Element>(
    s: S,
    x: *const E,
    out: *mut E,
    n: usize,
    m: f64,
    sc: Scaling,
    log_s: f64,
) {
    let map = LogSoftmaxMap {
        m: s.splat(m),
        log_s: s.splat(log_s),
        sc,
        elem: PhantomData::<E>,
    };
    // SAFETY: forwarded contract.
    unsafe { write_pass::<S, E, _>(s, x, out, n, map) }
}

/// Apply `map` to every element, chunk by chunk (each chunk is loaded before it is stored,
/// which makes `x == out` safe).
///
/// # Safety
/// As [`write_softmax`].
#[inline(always)]
unsafe fn write_pass<S: Simd, E: Element, F: ElementMap<S>>(
    s: S,
    x: *const E,
    out: *mut E,
    n: usize,
    map: F,
) {
    let body = n - n % VLANES;
    let mut i = 0;
    while i < body {
        // SAFETY: i + VLANES <= n for x and out.
        unsafe {
            let v = load_chunk::<S, E>(s, x.add(i));
            for j in 0..nv::<S>() {
                E::store(s, out.add(i + j * S::LANES), map.apply(s, v[j]));
            }
        }
        i += VLANES;
    }
    if i < n {
        // SAFETY: n - i elements remain; the padded results are computed and dropped.
        unsafe {
            let buf = tail_chunk(x.add(i), n - i, f64::NEG_INFINITY);
            let v = load_chunk::<S, E>(s, buf.as_ptr());
            let mut res = [E::from_f64(0.0); VLANES];
            for j in 0..nv::<S>() {
                E::store(s, res.as_mut_ptr().add(j * S::LANES), map.apply(s, v[j]));
            }
            std::ptr::copy_nonoverlapping(res.as_ptr(), out.add(i), n - i);
        }
    }
}

/// Number of `+inf` entries (only called for rows whose maximum is `+inf`).
///
/// # Safety
/// `x` readable for `n` elements.
unsafe fn count_pos_inf<E: Element>(x: *const E, n: usize) -> usize {
    // SAFETY: forwarded contract.
    let row = unsafe { std::slice::from_raw_parts(x, n) };
    row.iter().filter(|v| v.to_f64() == f64::INFINITY).count()
}

/// Fill `out` with `value` where `x == +inf` and `other` elsewhere.
///
/// # Safety
/// As [`write_softmax`].
unsafe fn fill_inf_split<E: Element>(x: *const E, out: *mut E, n: usize, value: f64, other: f64) {
    for i in 0..n {
        // SAFETY: i < n; element i is read before it is written.
        unsafe {
            let is_inf = (*x.add(i)).to_f64() == f64::INFINITY;
            *out.add(i) = E::from_f64(if is_inf { value } else { other });
        }
    }
}

/// softmax / log_softmax of a row whose maximum `m` is not finite or that holds a NaN: NaN
/// everywhere; the mass shared among `+inf` entries; or no finite mass at all.
///
/// # Safety
/// `x` readable and `out` writable for `n` elements; they may be equal.
pub(crate) unsafe fn special_row<E: Element>(
    x: *const E,
    out: *mut E,
    n: usize,
    m: f64,
    nan: bool,
    log: bool,
) {
    // SAFETY (all blocks): forwarded contract.
    if nan {
        unsafe { fill_inf_split(x, out, n, f64::NAN, f64::NAN) };
    } else if m == f64::INFINITY {
        // The mass is shared equally among the +inf entries.
        let c = unsafe { count_pos_inf(x, n) } as f64;
        let (inf_val, other) = if log {
            (0.0 - c.ln(), f64::NEG_INFINITY) // +0.0, not -0.0, for a single +inf
        } else {
            (1.0 / c, 0.0)
        };
        unsafe { fill_inf_split(x, out, n, inf_val, other) };
    } else {
        let v = if log { f64::NEG_INFINITY } else { 0.0 };
        unsafe { fill_inf_split(x, out, n, v, v) };
    }
}

/// logsumexp of a row (`−inf` when empty), asking for the `next` row as it goes.
///
/// # Safety
/// `x` readable for `n` elements.
#[inline(always)]
pub(crate) unsafe fn lse_row<S: Simd, E: Element>(
    s: S,
    x: *const E,
    n: usize,
    next: NextRow,
) -> f64 {
    // SAFETY (both blocks): E is f64 or f32, as checked; forwarded contract.
    let shifted_path = if E::IS_F64 {
        unsafe { super::rows64::lse_row(s, x.cast::<f64>(), n, next) }
    } else {
        unsafe { super::rows32::lse_row(s, x.cast::<f32>(), n, next) }
    };
    if let Some(v) = shifted_path {
        return v;
    }
    // SAFETY: forwarded contract.
    let (m, nan) = unsafe { row_max::<S, E>(s, x, n) };
    if nan {
        return f64::NAN;
    }
    if !m.is_finite() {
        return m; // +inf, or -inf for empty / all -inf rows
    }
    // SAFETY: forwarded contract; m is finite.
    let sum = unsafe {
        row_sum::<S, E>(
            s,
            x,
            std::ptr::null(),
            n,
            m,
            Scaling::NONE,
            std::ptr::null_mut(),
        )
    };
    m + sum.ln()
}

/// Weighted logsumexp of a row: `(log|Σ w e^x|, sign)`.
///
/// Entries to leave out must already be `-inf` in `x` (the Python layer does this for `b == 0`
/// and `where=False`).
///
/// # Safety
/// `x` and `w` readable for `n` elements.
#[inline(always)]
pub(crate) unsafe fn lse_row_weighted<S: Simd, E: Element>(
    s: S,
    x: *const E,
    w: *const E,
    n: usize,
) -> (f64, f64) {
    // SAFETY: forwarded contract.
    let (m, nan) = unsafe { row_max::<S, E>(s, x, n) };
    if nan {
        return (f64::NAN, f64::NAN);
    }
    if m == f64::NEG_INFINITY {
        return (f64::NEG_INFINITY, 0.0);
    }
    let (hi, lo) = if m == f64::INFINITY {
        // Only the +inf entries count: Σ w over them decides the sign (0 → inf − inf = NaN).
        let mut total = 0.0;
        for i in 0..n {
            // SAFETY: i < n.
            unsafe {
                if (*x.add(i)).to_f64() == f64::INFINITY {
                    total += (*w.add(i)).to_f64();
                }
            }
        }
        return match total {
            t if t > 0.0 => (f64::INFINITY, 1.0),
            t if t < 0.0 => (f64::INFINITY, -1.0),
            _ => (f64::NAN, f64::NAN),
        };
    } else {
        // SAFETY: forwarded contract; m is finite.
        let sum = unsafe { row_sum::<S, E>(s, x, w, n, m, Scaling::NONE, std::ptr::null_mut()) };
        (sum.hi, sum.lo)
    };
    if hi.is_nan() {
        return (f64::NAN, f64::NAN);
    }
    if hi == 0.0 {
        return (f64::NEG_INFINITY, 0.0);
    }
    let sign = hi.signum();
    (m + log_of_sum(hi * sign, lo * sign), sign)
}

/// softmax (or log_softmax when `log`) of a row into `out` (which may equal `x`), asking for
/// the `next` row as it goes.
///
/// # Safety
/// `x` readable and `out` writable for `n` elements.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // the row, its mode, and the row loop's buffer and next row
pub(crate) unsafe fn softmax_row<S: Simd, E: Element>(
    s: S,
    x: *const E,
    out: *mut E,
    n: usize,
    sc: Scaling,
    log: bool,
    stash: &mut Vec<f64>,
    next: NextRow,
) {
    if n == 0 {
        return;
    }
    // SAFETY (both blocks): E is f64 or f32, as checked; forwarded contract.
    let done = !sc.active
        && if E::IS_F64 {
            unsafe {
                super::rows64::softmax_row(s, x.cast::<f64>(), out.cast::<f64>(), n, log, next)
            }
        } else {
            unsafe {
                super::rows32::softmax_row(s, x.cast::<f32>(), out.cast::<f32>(), n, log, next)
            }
        };
    if !done {
        // SAFETY: forwarded contract.
        unsafe { softmax_row_lanes::<S, E>(s, x, out, n, sc, log, stash) };
    }
}

/// [`softmax_row`] in f64 lanes: rows with a temperature, and those whose maximum lies beyond
/// the float32 or float64 row kernels' range.
///
/// # Safety
/// `x` readable and `out` writable for `n ≥ 1` elements.
#[inline(always)]
pub(crate) unsafe fn softmax_row_lanes<S: Simd, E: Element>(
    s: S,
    x: *const E,
    out: *mut E,
    n: usize,
    sc: Scaling,
    log: bool,
    stash: &mut Vec<f64>,
) {
    // SAFETY (all blocks): forwarded contract.
    let (m, nan) = unsafe { row_max::<S, E>(s, x, n) };
    if nan || !m.is_finite() {
        unsafe { special_row(x, out, n, m, nan, log) };
        return;
    }
    // float32 softmax keeps its exponentials (exact enough in f64) for the last pass, when
    // the row's stash fits in L2; otherwise recomputing them is cheaper than the traffic.
    let use_stash = !log && n <= STASH_MAX;
    let stash_ptr = if use_stash {
        let per = if E::IS_F64 { 2 } else { 1 };
        stash.resize(per * (n + VLANES), 0.0);
        stash.as_mut_ptr()
    } else {
        std::ptr::null_mut()
    };
    let sum = unsafe { row_sum::<S, E>(s, x, std::ptr::null(), n, m, sc, stash_ptr) };
    let (hi, lo) = (sum.hi, sum.lo);
    let inv_hi = 1.0 / hi;
    // 1/(hi + lo) − inv_hi, to first order; the FMA residual is exact.
    let inv_lo = inv_hi * (inv_hi.mul_add(-hi, 1.0) - lo * inv_hi);
    if use_stash && E::IS_F64 {
        // SAFETY: E is f64 here.
        unsafe { write_softmax_stashed::<S>(s, stash_ptr, out.cast::<f64>(), n, (inv_hi, inv_lo)) };
    } else if use_stash {
        unsafe { write_scaled::<S, E>(s, stash_ptr, out, n, inv_hi) };
    } else if log {
        unsafe { write_log_softmax::<S, E>(s, x, out, n, m, sc, sum.ln()) };
    } else {
        unsafe { write_softmax::<S, E>(s, x, out, n, m, sc, (inv_hi, inv_lo)) };
    }
}
