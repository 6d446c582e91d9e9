//! The float64 row passes without a temperature or weights, for rows whose maximum has
//! `|m| ≤ M_LIMIT` (other rows take the generic path in [`super::rows`]).
//!
//! The shift is that of [`super::rows32`]: the row is shifted by `s = K_m·LN2_HI`,
//! `K_m = round(m / ln 2)`, so `e^{x − s} = 2^{K − K_m} e^{r}` with
//! `r = (x − K·LN2_HI) − (K − K_m)·LN2_LO` reduced from `x` itself with one rounding
//! ([`exp_shifted_n`]); no TwoSum of `x − m` is needed. Terms are kept as
//! `y = 2^{K−K_m+64}(1 + t)`, which is a normal double for every kept `K`.
//!
//! Accuracy (u = 2⁻⁵³; `1 + t` is within 0.67u relative: the roundings of `r` and of `t`,
//! ≤ 2⁻⁵⁵ each, and the degree-13 polynomial's 2⁻⁵⁷):
//! - softmax: `y` is rounded once and stored in `out` (≤ 1.67u relative); the `y` are summed
//!   as a double-double (Fast2Sum per lane), so `S` carries only their weighted mean error;
//!   `out_i = y_i · (1/S)` with `1/S` as a double pair is rounded once, into the subnormal
//!   range too. Bound 2 × 1.67 + ½ ≤ 3.84 ULP, measured 2.48 (the contract is 4); the stored
//!   `y` save a second `exp` per element (dropping the exact reduction's correction took
//!   0.1 ULP of the measured error and 6% of the time).
//! - logsumexp / log_softmax: each term is split exactly as `y + y_lo`; `y` is summed by TwoSum
//!   per lane, so `S` carries only the terms' own error (the mean of ≤ 0.67u) and ~n·2⁻¹⁰⁵;
//!   the max entries are counted apart, so `S − 1` keeps its relative accuracy for `log1p` (as
//!   in the generic path). log_softmax rounds `(x − c_hi) − c_lo` with `c = m + log S` as a
//!   double pair (outputs near 0 included; see [`super::rows32`] for the argument). Measured
//!   1.41 ULP for logsumexp (contract 2) and 1.87 for log_softmax (contract 4). logsumexp takes
//!   these sums only where its result may be below 4 in magnitude; elsewhere it sums the
//!   rounded `y` as softmax does, their exponentials in sixteenths of `ln 2` from a table
//!   ([`exp_terms`]; [`lse_row`], 0.15 ULP more than the shared roundings).
//!
//! Arguments are clamped at `(K_m − 1087)·ln 2`, where the exponent field of `2^{K−K_m+64}` is
//! 0: entries more than ~708 below the max contribute exactly 0 (their true share is below
//! 2⁻¹⁰⁸⁶, which rounds to 0 even as a subnormal softmax output). Elements map to the 16
//! virtual lanes (`i % 16`) of the other paths, so every ISA returns bit-identical results.

// Kernels index several per-lane arrays with one virtual-lane index; iterators would hide that.
#![allow(clippy::needless_range_loop)]

use super::rows::{
    load_chunk, row_max, special_row, spill, tree, two_sum, two_sum_v, ExpSum, Fetching, NextRow,
};
use crate::math::exp::{exp_reduced_n, exp_shifted_n, exp_shifted_table_n, Degree, LN2_LO, MAGIC};
use crate::simd::{Simd, VLANES};

/// `2⁶⁴`: terms are scaled by it so that `2^(k+64)` is a normal double for every kept `k`.
pub(crate) const SCALE: f64 = 18_446_744_073_709_551_616.0;

/// Rows whose maximum is at most this in magnitude take these passes (the reduction from `x`
/// is exact far beyond, see [`exp_reduced_n`]; the limit keeps `K_m` and the clamp small).
pub(crate) const M_LIMIT: f64 = 1_073_741_824.0;

/// Softmax sums start every lane here: above every term (`y < 2⁶⁵`), so Fast2Sum is exact.
pub(crate) const SOFTMAX_SEED: f64 = 2.0 * 2.0 * SCALE;

/// Doubles per vector chunk of [`VLANES`] elements.
#[inline(always)]
fn nv<S: Simd>() -> usize {
    VLANES / S::LANES
}

/// A row's shift `s = K_m·ln 2`, as the per-lane constants the passes use.
#[derive(Clone, Copy)]
pub(crate) struct Shift {
    /// `K_m` (an integer).
    pub k_m: f64,
    /// `(K_m − 1087)·ln 2`: the clamp, whose `2^{K − K_m + 64}` is exactly 0.
    pub low: f64,
}

impl Shift {
    /// `None` when `|m| > M_LIMIT` (or `m` is not finite).
    pub fn of(m: f64) -> Option<Shift> {
        if !m.is_finite() || m.abs() > M_LIMIT {
            return None;
        }
        let k_m = m.mul_add(std::f64::consts::LOG2_E, MAGIC) - MAGIC;
        // Rounding `low` moves it by < 2⁻²², far from the ±0.35 that would change its K.
        let low = (k_m - 1087.0) * std::f64::consts::LN_2;
        Some(Shift { k_m, low })
    }
}

/// `e^{s − m}` per lane as a pair `(hi, lo)` to ~2⁻⁵⁶: the factor from sums relative to the
/// shift `s = K_m·LN2_HI + s_lo` to sums relative to the max, where `s_lo` is 0 for the terms
/// of [`exp_shifted_n`] and `K_m·LN2_LO` for the fast ones of [`exp_terms`] (see
/// [`shift_lo`]). `s − m` (|·| ≤ 0.35) is formed as a double-double (`K_m·LN2_HI` by an exact
/// product; `s_lo`, below 2⁻²⁶, rounded within 2⁻⁷⁹) and its exponential kept as
/// `1 + t_hi + t_lo`.
#[inline(always)]
pub(crate) fn to_max<S: Simd>(s: S, m: S::V, k_m: S::V, s_lo: S::V) -> (S::V, S::V) {
    let ln2 = s.splat(std::f64::consts::LN_2);
    let p_hi = s.mul(k_m, ln2);
    let p_lo = s.fma(k_m, ln2, s.sub(s.splat(0.0), p_hi));
    let (d, d_err) = two_sum_v(s, p_hi, s.sub(s.splat(0.0), m));
    // The low part can reach ulp(K_m·LN2_HI)/2 (2⁻²³ near |m| = 2³⁰), far beyond what the
    // reduction's first-order correction takes (its square is lost): renormalise it first.
    let (d, d_lo) = two_sum_v(s, d, s.add(d_err, s.add(p_lo, s_lo)));
    let (t_hi, t_lo, k_magic) = exp_reduced_n::<S, 1>(s, &[d], Some(&[d_lo]), Degree::Full, 1);
    // 1 + t_hi exactly as hi + lo (Fast2Sum, |t_hi| < 1), then 2^k (k is 0 but at ties).
    let one = s.splat(1.0);
    let hi = s.add(one, t_hi[0]);
    let lo = s.add(s.sub(t_hi[0], s.sub(hi, one)), t_lo[0]);
    let p = s.pow2_from_magic(k_magic[0]);
    (s.mul(hi, p), s.mul(lo, p))
}

/// `S = count + others·e^{s − m}` for one row or lane, from the pass-2 sums relative to the
/// shift (`others_hi + others_lo`, scaled by 2⁶⁴) and the factor pair of [`to_max`].
pub(crate) fn sum_to_max(count: f64, others: (f64, f64), factor: (f64, f64)) -> ExpSum {
    let (o_hi, o_lo) = others;
    let (f_hi, f_lo) = factor;
    let p_hi = o_hi * f_hi;
    let p_lo = o_hi.mul_add(f_hi, -p_hi) + (o_hi * f_lo + o_lo * f_hi);
    // Scaling by 2⁻⁶⁴ is exact (but in the subnormal range, where nothing is left to lose).
    let (a, b) = two_sum(p_hi / SCALE, p_lo / SCALE);
    let (hi, err) = two_sum(count, a);
    ExpSum {
        hi,
        lo: err + b,
        below_single_max: (count == 1.0).then_some((a, b)),
    }
}

/// The most chunks an op takes at once ([`ChunkOp::GROUP`]).
const MAX_GROUP: usize = 4;

/// The work on one chunk of [`VLANES`] elements; a trait rather than a closure so that it
/// inlines into the ISA's target features.
trait ChunkOp<S: Simd> {
    /// Process `v`; `out` (if non-null) has room for a whole chunk of results.
    ///
    /// # Safety
    /// A non-null `out` must be writable for `VLANES` doubles.
    unsafe fn chunk(&mut self, s: S, v: &[S::V; VLANES], out: *mut f64);

    /// Chunks per [`ChunkOp::chunk_group`] where a chunk is two vectors (AVX-512): the
    /// exponential passes take a group's terms at once, so that enough independent work is in
    /// flight behind each term's chain of about 20 dependent operations. A/B, bit-identical,
    /// one thread, float64 softmax / log_softmax / logsumexp on (1, 100000) and (64, 32000):
    /// two chunks ×1.06–1.14 / ×1.05–1.14 / ×1.02–1.05 over one; four ×1.00 / ×0.94–0.96 /
    /// ×1.04–1.05 over two, so logsumexp's fast pass takes four and the others two. Eight
    /// (16 vectors) no longer fit the registers. AVX2's chunks are four vectors already; two
    /// at a time measured ×0.90–0.94 for softmax, so it takes one (see [`for_chunks`]).
    const GROUP: usize = 1;

    /// Process [`ChunkOp::GROUP`] consecutive chunks (`v`: the first's vectors, then the
    /// second's, ...) as that many calls of [`ChunkOp::chunk`] would, bit for bit.
    ///
    /// # Safety
    /// A non-null `out` must be writable for `GROUP · VLANES` doubles.
    #[inline(always)]
    unsafe fn chunk_group(&mut self, s: S, v: &[S::V; MAX_GROUP * VLANES], out: *mut f64) {
        let per = nv::<S>();
        for g in 0..Self::GROUP {
            let mut chunk = [s.splat(0.0); VLANES];
            chunk[..per].copy_from_slice(&v[g * per..(g + 1) * per]);
            // SAFETY: forwarded contract.
            unsafe {
                self.chunk(
                    s,
                    &chunk,
                    if out.is_null() {
                        out
                    } else {
                        out.add(g * VLANES)
                    },
                )
            };
        }
    }
}

impl<S: Simd, Op: ChunkOp<S>> ChunkOp<S> for Fetching<'_, Op> {
    #[inline(always)]
    unsafe fn chunk(&mut self, s: S, v: &[S::V; VLANES], out: *mut f64) {
        self.next.fetch_step();
        // SAFETY: forwarded contract.
        unsafe { self.op.chunk(s, v, out) };
    }

    const GROUP: usize = Op::GROUP;

    #[inline(always)]
    unsafe fn chunk_group(&mut self, s: S, v: &[S::V; MAX_GROUP * VLANES], out: *mut f64) {
        for _ in 0..Op::GROUP {
            self.next.fetch_step();
        }
        // SAFETY: forwarded contract.
        unsafe { self.op.chunk_group(s, v, out) };
    }
}

/// Visit the row chunk by chunk; the tail is padded with `−inf` and written back partially.
///
/// # Safety
/// `x` readable and `out` (if non-null) writable for `n` doubles; they may be equal.
#[inline(always)]
unsafe fn for_chunks<S: Simd, Op: ChunkOp<S>>(
    s: S,
    x: *const f64,
    out: *mut f64,
    n: usize,
    op: &mut Op,
) {
    let full = n - n % VLANES;
    let mut i = 0;
    // Where a chunk is two vectors (AVX-512), the op's group of chunks at a time.
    let group = Op::GROUP;
    while nv::<S>() <= 2 && group > 1 && i + group * VLANES <= full {
        // SAFETY: i + group·VLANES <= n for x and out.
        unsafe {
            let mut v = [s.splat(0.0); MAX_GROUP * VLANES];
            let per = nv::<S>();
            for k in 0..group * per {
                v[k] = s.load_f64(x.add(i + k * S::LANES));
            }
            let o = if out.is_null() { out } else { out.add(i) };
            op.chunk_group(s, &v, o);
        }
        i += group * VLANES;
    }
    while i < full {
        // SAFETY: i + VLANES <= n for x and out.
        unsafe {
            let o = if out.is_null() { out } else { out.add(i) };
            op.chunk(s, &load_chunk::<S, f64>(s, x.add(i)), o);
        }
        i += VLANES;
    }
    if i < n {
        // The tail is read in place, padded with −inf (see `Simd::load_f64_first`), and its
        // results go to a chunk-sized buffer first, then out whole vector by whole vector and
        // the last few one by one.
        let rest = n - i;
        let mut v = [s.splat(f64::NEG_INFINITY); VLANES];
        for j in 0..nv::<S>() {
            let at = j * S::LANES;
            // SAFETY (both loads): doubles i + at .. + min(rest − at, LANES) are in the row.
            if at + S::LANES <= rest {
                v[j] = unsafe { s.load_f64(x.add(i + at)) };
            } else if at < rest {
                v[j] = unsafe { s.load_f64_first(x.add(i + at), rest - at, f64::NEG_INFINITY) };
            }
        }
        let mut res = [0.0f64; VLANES];
        // SAFETY: `res` has room for a whole chunk.
        unsafe { op.chunk(s, &v, if out.is_null() { out } else { res.as_mut_ptr() }) };
        if !out.is_null() {
            for j in 0..nv::<S>() {
                let at = j * S::LANES;
                if at + S::LANES <= rest {
                    // SAFETY: as above, for `out`; `res` holds the chunk's results.
                    unsafe { s.store_f64(out.add(i + at), s.load_f64(res.as_ptr().add(at))) };
                } else {
                    for k in at..rest {
                        // SAFETY: i + k < n.
                        unsafe { *out.add(i + k) = res[k] };
                    }
                }
            }
        }
    }
}

/// The per-lane clamp, `MAGIC + K_m` and `K_m − 64` of [`exp_terms`]: splats for a row, 16
/// lanes for a tile.
pub(crate) struct LaneShift<V> {
    pub low: [V; VLANES],
    pub k_mm: [V; VLANES],
    pub k_shift: [V; VLANES],
    /// `MAGIC − 16·K_m + 1024`, for the sixteenths of [`exp_shifted_table_n`].
    pub magic16: [V; VLANES],
}

impl<V: Copy> LaneShift<V> {
    /// Every lane shifted like one row.
    #[inline(always)]
    fn splat<S: Simd<V = V>>(s: S, shift: Shift) -> Self {
        LaneShift {
            low: [s.splat(shift.low); VLANES],
            k_mm: [s.splat(MAGIC + shift.k_m); VLANES],
            k_shift: [s.splat(shift.k_m - 64.0); VLANES],
            magic16: [magic16(s, s.splat(shift.k_m - 64.0)); VLANES],
        }
    }
}

/// The shift's part beyond `K_m·LN2_HI` in the terms of [`exp_terms`]: `K_m·LN2_LO` for the
/// fast lines, whose `keep_lo` is 0 (their reduction takes all of `k·ln2/16` from `x`), else 0
/// (`keep_lo` 1: the row's `K_m·LN2_LO` is left out of the reduction, see
/// [`exp_shifted_n`]); lanes of `k_m` and `keep_lo` (see [`fast_lane`]).
#[inline(always)]
pub(crate) fn shift_lo<S: Simd>(s: S, k_m: S::V, keep_lo: S::V) -> S::V {
    s.mul(s.mul(k_m, s.splat(LN2_LO)), s.sub(s.splat(1.0), keep_lo))
}

/// `MAGIC − 16·K_m + 1024` from `k_shift = K_m − 64` (exact; see [`exp_shifted_table_n`]).
#[inline(always)]
pub(crate) fn magic16<S: Simd>(s: S, k_shift: S::V) -> S::V {
    s.fma(k_shift, s.splat(-16.0), s.splat(MAGIC))
}

/// `(t, 2^{K − K_m + 64})` with `e^{x − s} = 2^{K − K_m}(1 + t)`, `s = K_m·LN2_HI`, for the
/// first `count` of `N` vectors; vector `j` belongs to the lanes `j % (VLANES / LANES)` of
/// `lanes`. `FAST` for the lines whose terms are summed rounded ([`fast_lse`]): `(t, p2)` with
/// `e^{x − s} = p2·(1 + t)·2⁻⁶⁴`, `s = K_m·ln 2` (see [`shift_lo`]), from
/// [`exp_shifted_table_n`]: `p2 = 2^{k/16 − K_m + 64}` (`k = round(16x/ln 2)`, the table's
/// `T_j` times a power of two) and `T_j·(1 + t)` within 0.2u of `2^{j/16}·e^r`, which the
/// rounding of each term (1u) dwarfs. About 20 vector operations per vector of terms against
/// 26 for the degree-11 polynomial on `|r| ≤ ln2/2` they replaced: float64 logsumexp
/// `N(0,1)·10`, A/B, both orders: (4096, 1000) ×1.17–1.18, (64, 32000) ×1.29–1.31,
/// (1, 100000) ×1.28–1.29, (1000, 10) ×0.99–1.01.
#[inline(always)]
pub(crate) fn exp_terms<S: Simd, const N: usize, const FAST: bool>(
    s: S,
    v: &[S::V; N],
    count: usize,
    lanes: &LaneShift<S::V>,
) -> ([S::V; N], [S::V; N]) {
    let mut xc = *v;
    for j in 0..count {
        // max returns its second operand when either is NaN (NaN rows never get here);
        // −inf (padding, masked entries) is clamped like any far-away entry.
        xc[j] = s.max(lanes.low[j % nv::<S>()], v[j]);
    }
    if FAST {
        // p2 is exactly 0 at the clamp (k = 16·(K_m − 1087): exponent field 0, entry 0).
        return exp_shifted_table_n::<S, N>(s, &xc, count, &lanes.magic16[..nv::<S>()]);
    }
    let (t, k_magic) = exp_shifted_n::<S, N>(s, &xc, count, &lanes.k_mm[..nv::<S>()]);
    let mut p2 = k_magic;
    for j in 0..count {
        // MAGIC + K − K_m + 64 is exact; its exponent field K − K_m + 64 + 1023 is 0 at the
        // clamp.
        p2[j] = s.pow2_from_magic(s.sub(k_magic[j], lanes.k_shift[j % nv::<S>()]));
    }
    (t, p2)
}

/// [`exp_terms`] of tile or strip lines (vector `j` in the lanes `j % (VLANES / LANES)`), each
/// with its row's kind: the fast terms where `keep_lo` is 0 (the lines of [`fast_lane`] that
/// sum rounded terms), so that every layout computes a line's terms alike. Lines of both
/// kinds in one vector take both and pick `t` and `p2` per lane.
#[inline(always)]
pub(crate) fn exp_terms_of_lines<S: Simd, const N: usize>(
    s: S,
    v: &[S::V; N],
    count: usize,
    lanes: &LaneShift<S::V>,
    keep_lo: &[S::V],
) -> ([S::V; N], [S::V; N]) {
    let (zero, one) = (s.splat(0.0), s.splat(1.0));
    let any_fast = keep_lo.iter().any(|&k| s.any(s.eq(k, zero)));
    let any_full = keep_lo.iter().any(|&k| s.any(s.eq(k, one)));
    if !any_fast {
        return exp_terms::<S, N, false>(s, v, count, lanes);
    }
    let (mut t, mut p2) = exp_terms::<S, N, true>(s, v, count, lanes);
    if any_full {
        let (t_full, p2_full) = exp_terms::<S, N, false>(s, v, count, lanes);
        for j in 0..count {
            let fast = s.eq(keep_lo[j % keep_lo.len()], zero);
            t[j] = s.select(fast, t[j], t_full[j]);
            p2[j] = s.select(fast, p2[j], p2_full[j]);
        }
    }
    (t, p2)
}

/// One logsumexp term: `(y, y_lo)` with `y + y_lo = p2·(1 + t)` exactly, both zero at the max
/// entries (`at_max`), which are counted apart.
#[inline(always)]
pub(crate) fn lse_term<S: Simd>(s: S, t: S::V, p2: S::V, at_max: S::M) -> (S::V, S::V) {
    let p2 = s.select(at_max, s.splat(0.0), p2);
    let y = s.fma(t, p2, p2);
    // p2 − y is exact (Sterbenz) and the rounding error of y, a power of two times that of
    // fl(1 + t), is a double the FMA returns exactly.
    (y, s.fma(t, p2, s.sub(p2, y)))
}

/// `(hi, lo) += y` by TwoSum, with `y_lo` joining the low part.
#[inline(always)]
pub(crate) fn accumulate<S: Simd>(s: S, hi: &mut S::V, lo: &mut S::V, y: S::V, y_lo: S::V) {
    let (sum, err) = two_sum_v(s, *hi, y);
    *hi = sum;
    *lo = s.add(*lo, s.add(err, y_lo));
}

/// Combine per-lane double-doubles `(hi_j − seed) + lo_j` with a fixed tree.
pub(crate) fn lanes_total(his: [f64; VLANES], los: [f64; VLANES], seed: f64) -> (f64, f64) {
    let mut pairs = [(0.0f64, 0.0f64); VLANES];
    for j in 0..VLANES {
        let (h, e) = two_sum(his[j], -seed);
        pairs[j] = (h, e + los[j]);
    }
    let (h, l) = tree(pairs, |(h1, l1), (h2, l2)| {
        let (sum, e) = two_sum(h1, h2);
        (sum, l1 + l2 + e)
    });
    two_sum(h, l)
}

/// softmax pass 2: `y = 2^{K−K_m+64}(1 + t)` rounded once (into `out` when `STORE`), summed
/// per lane by Fast2Sum (every lane starts at [`SOFTMAX_SEED`], above any term). Without the
/// store it is the fast logsumexp pass (see [`lse_row`]).
struct RoundedSumOp<S: Simd, const STORE: bool> {
    lanes: LaneShift<S::V>,
    hi: [S::V; VLANES],
    lo: [S::V; VLANES],
}

impl<S: Simd, const STORE: bool> RoundedSumOp<S, STORE> {
    #[inline(always)]
    fn new(s: S, shift: Shift) -> Self {
        RoundedSumOp {
            lanes: LaneShift::splat(s, shift),
            hi: [s.splat(SOFTMAX_SEED); VLANES],
            lo: [s.splat(0.0); VLANES],
        }
    }

    /// `Σ y` (scaled by 2⁶⁴) as a double pair.
    #[inline(always)]
    fn total(&self, s: S) -> (f64, f64) {
        lanes_total(spill(s, &self.hi), spill(s, &self.lo), SOFTMAX_SEED)
    }
}

impl<S: Simd, const STORE: bool> RoundedSumOp<S, STORE> {
    /// The first `count` vectors of `v` (chunk `k / nv`'s vector `k % nv` at `k`): their
    /// terms (stored at `out`, chunk after chunk, with `STORE`) added in order. Without the
    /// store this is the fast logsumexp pass: the fast terms.
    ///
    /// # Safety
    /// With `STORE`, `out` must be writable for `count / nv` chunks.
    #[inline(always)]
    unsafe fn add_terms<const N: usize>(
        &mut self,
        s: S,
        v: &[S::V; N],
        count: usize,
        out: *mut f64,
    ) {
        let per = nv::<S>();
        let (t, p2) = if STORE {
            exp_terms::<S, N, false>(s, v, count, &self.lanes)
        } else {
            exp_terms::<S, N, true>(s, v, count, &self.lanes)
        };
        for k in 0..count {
            let j = k % per;
            let y = s.fma(t[k], p2[k], p2[k]);
            if STORE {
                // SAFETY: forwarded contract.
                unsafe { s.store_f64(out.add(k / per * VLANES + j * S::LANES), y) };
            }
            let sum = s.add(self.hi[j], y);
            let err = s.sub(y, s.sub(sum, self.hi[j]));
            self.hi[j] = sum;
            self.lo[j] = s.add(self.lo[j], err);
        }
    }
}

impl<S: Simd, const STORE: bool> ChunkOp<S> for RoundedSumOp<S, STORE> {
    const GROUP: usize = if STORE { 2 } else { 4 };

    #[inline(always)]
    unsafe fn chunk_group(&mut self, s: S, v: &[S::V; MAX_GROUP * VLANES], out: *mut f64) {
        // SAFETY: `out` has room for GROUP chunks (the trait's contract).
        unsafe { self.add_terms(s, v, Self::GROUP * nv::<S>(), out) };
    }

    #[inline(always)]
    unsafe fn chunk(&mut self, s: S, v: &[S::V; VLANES], out: *mut f64) {
        // SAFETY: `out` has room for a whole chunk (the trait's contract).
        unsafe { self.add_terms(s, v, nv::<S>(), out) };
    }
}

/// logsumexp / log_softmax pass 2: `Σ 2^{K−K_m+64}(1 + t)` over the entries below the max
/// (each term split exactly as `y + y_lo`, `y` added by TwoSum), and the number of max entries
/// (an integer count: exact in any order, so one vector suffices).
struct LseSumOp<S: Simd> {
    lanes: LaneShift<S::V>,
    m: S::V,
    hi: [S::V; VLANES],
    lo: [S::V; VLANES],
    ties: S::V,
}

impl<S: Simd> LseSumOp<S> {
    /// The first `count` vectors of `v` (vector `k % nv` of a chunk at `k`): their terms and
    /// max entries, added in order.
    #[inline(always)]
    fn add_terms<const N: usize>(&mut self, s: S, v: &[S::V; N], count: usize) {
        let (t, p2) = exp_terms::<S, N, false>(s, v, count, &self.lanes);
        let (zero, one) = (s.splat(0.0), s.splat(1.0));
        for k in 0..count {
            let j = k % nv::<S>();
            let at_max = s.eq(v[k], self.m);
            self.ties = s.add(self.ties, s.select(at_max, one, zero));
            let (y, y_lo) = lse_term(s, t[k], p2[k], at_max);
            accumulate(s, &mut self.hi[j], &mut self.lo[j], y, y_lo);
        }
    }
}

impl<S: Simd> ChunkOp<S> for LseSumOp<S> {
    const GROUP: usize = 2;

    #[inline(always)]
    unsafe fn chunk_group(&mut self, s: S, v: &[S::V; MAX_GROUP * VLANES], _out: *mut f64) {
        self.add_terms(s, v, Self::GROUP * nv::<S>());
    }

    #[inline(always)]
    unsafe fn chunk(&mut self, s: S, v: &[S::V; VLANES], _out: *mut f64) {
        self.add_terms(s, v, nv::<S>());
    }
}

/// `out_i = y_i · (inv_hi + inv_lo)`, rounded once.
struct ScaleOp<S: Simd> {
    inv_hi: S::V,
    inv_lo: S::V,
}

impl<S: Simd> ChunkOp<S> for ScaleOp<S> {
    #[inline(always)]
    unsafe fn chunk(&mut self, s: S, v: &[S::V; VLANES], out: *mut f64) {
        for j in 0..nv::<S>() {
            let y = s.fma(v[j], self.inv_hi, s.mul(v[j], self.inv_lo));
            // SAFETY: `out` has room for a whole chunk (the trait's contract).
            unsafe { s.store_f64(out.add(j * S::LANES), y) };
        }
    }
}

/// `out_i = (x_i − c_hi) − c_lo` with `c_hi + c_lo = m + log S`.
struct LogSoftmaxOp<S: Simd> {
    c_hi: S::V,
    c_lo: S::V,
}

impl<S: Simd> ChunkOp<S> for LogSoftmaxOp<S> {
    #[inline(always)]
    unsafe fn chunk(&mut self, s: S, v: &[S::V; VLANES], out: *mut f64) {
        for j in 0..nv::<S>() {
            let y = s.sub(s.sub(v[j], self.c_hi), self.c_lo);
            // SAFETY: `out` has room for a whole chunk (the trait's contract).
            unsafe { s.store_f64(out.add(j * S::LANES), y) };
        }
    }
}

/// Pass 2 for logsumexp / log_softmax: `S = Σ e^{x_i − m}` with the max entries counted apart
/// (`below_single_max` set when there is exactly one), asking for `next` and `out_lines` as it
/// goes. log_softmax passes its own row's output as `out_lines`, as float32 does (see
/// `rows32::lse_sum`): its write pass then stores into lines already in the cache (A/B float64
/// log_softmax `out=`, both orders: see [`softmax_row`]).
///
/// # Safety
/// `x` readable for `n` doubles; `m` the row's finite maximum, `shift` its shift.
#[inline(always)]
unsafe fn lse_sum<S: Simd>(
    s: S,
    x: *const f64,
    n: usize,
    m: f64,
    shift: Shift,
    next: NextRow,
    out_lines: NextRow,
) -> ExpSum {
    let mut op = LseSumOp::<S> {
        lanes: LaneShift::splat(s, shift),
        m: s.splat(m),
        hi: [s.splat(0.0); VLANES],
        lo: [s.splat(0.0); VLANES],
        ties: s.splat(0.0),
    };
    let mut own = Fetching {
        op: &mut op,
        next: out_lines,
    };
    let mut fetching = Fetching { op: &mut own, next };
    // SAFETY: forwarded contract.
    unsafe { for_chunks(s, x, std::ptr::null_mut(), n, &mut fetching) };
    let others = lanes_total(spill(s, &op.hi), spill(s, &op.lo), 0.0);
    let count: f64 = spill1(s, op.ties)[..S::LANES].iter().sum();
    sum_to_max(count, others, row_to_max(s, m, shift, false))
}

/// [`to_max`] of one row, as a pair.
#[inline(always)]
fn row_to_max<S: Simd>(s: S, m: f64, shift: Shift, fast: bool) -> (f64, f64) {
    let k_m = s.splat(shift.k_m);
    let s_lo = shift_lo(s, k_m, s.splat(if fast { 0.0 } else { 1.0 }));
    let (f_hi, f_lo) = to_max(s, s.splat(m), k_m, s_lo);
    (spill1(s, f_hi)[0], spill1(s, f_lo)[0])
}

/// The lanes of one vector.
#[inline(always)]
fn spill1<S: Simd>(s: S, v: S::V) -> [f64; VLANES] {
    let mut out = [0.0f64; VLANES];
    // SAFETY: `out` has room for VLANES ≥ LANES doubles.
    unsafe { s.store_f64(out.as_mut_ptr(), v) };
    out
}

/// Rows whose logsumexp is certain to be at least this far from 0 take the fast pass of
/// [`lse_row`] (see [`fast_lse`]).
const FAST_LSE_MIN: f64 = 4.0;

/// Whether a logsumexp over `n` entries with maximum `m` is certain to be at least
/// [`FAST_LSE_MIN`] in magnitude (it lies in `[m, m + log n]`), so that its terms may be summed
/// as rounded (see [`lse_row`]). Rows, tiles and strips decide alike, so every layout returns
/// the same result: a tile lane or strip column that decides so compares its entries with NaN
/// (no ties counted apart) and drops each term's exact low part ([`fast_lane`]).
pub(crate) fn fast_lse(m: f64, n: usize) -> bool {
    m >= FAST_LSE_MIN || m + (n as f64).ln() <= -FAST_LSE_MIN
}

/// For a lane of a logsumexp (`lse`) tile or strip with maximum `m`: the value its entries are
/// compared with to count ties apart (NaN, never equal, where [`fast_lse`] holds) and the
/// factor of each term's exact low part (0 there, else 1).
pub(crate) fn fast_lane(m: f64, n: usize, lse: bool) -> (f64, f64) {
    if lse && fast_lse(m, n) {
        (f64::NAN, 0.0)
    } else {
        (m, 1.0)
    }
}

/// logsumexp of a float64 row (`−inf` when empty); `None` when `|max| > M_LIMIT` (the caller
/// takes the generic path).
///
/// Two passes after the max. Where `|lse| ≥ 4` is certain (`lse` lies in `[m, m + log n]`)
/// the terms are summed as softmax sums them, each `y` rounded (≤ 1.2u relative with the fast
/// terms of [`exp_terms`]) and the max entries included: `log S` is then off by at most 1.2u
/// absolute, 0.15 ULP of a result of magnitude ≥ 4, beside the roundings of `log S` and of
/// the result that both paths share (the contract is 2 ULP). That pass drops
/// the exact split of each term, its TwoSum and the count of the max entries. Results nearer
/// 0 take [`lse_sum`].
///
/// The sum pass asks for `next` as it goes.
///
/// # Safety
/// `x` readable for `n` doubles.
#[inline(always)]
pub(crate) unsafe fn lse_row<S: Simd>(s: S, x: *const f64, n: usize, next: NextRow) -> Option<f64> {
    // SAFETY (both blocks): forwarded contract.
    let (m, nan) = unsafe { row_max::<S, f64>(s, x, n) };
    if nan {
        return Some(f64::NAN);
    }
    if !m.is_finite() {
        return Some(m); // +inf, or -inf for empty / all -inf rows
    }
    let shift = Shift::of(m)?;
    if fast_lse(m, n) {
        let mut op = RoundedSumOp::<S, false>::new(s, shift);
        let mut fetching = Fetching { op: &mut op, next };
        unsafe { for_chunks(s, x, std::ptr::null_mut(), n, &mut fetching) };
        let factor = row_to_max(s, m, shift, true);
        return Some(m + sum_to_max(0.0, op.total(s), factor).ln());
    }
    let sum = unsafe { lse_sum(s, x, n, m, shift, next, NextRow::NONE) };
    Some(m + sum.ln())
}

/// softmax (or log_softmax when `log`) of a float64 row into `out` (which may equal `x`);
/// `false`, with nothing written, when `|max| > M_LIMIT` (the caller takes the generic path).
/// The exponential pass asks for `next` as it goes, and log_softmax's also for its output's
/// lines when that is another buffer: A/B float64 log_softmax `out=`, both orders,
/// (4096, 1000) ×1.14–1.18, (64, 32000) ×1.22–1.23, (256, 8192) ×1.28, rows in the caches
/// ((1, 100000), (300, 1000)) ×0.97–1.03.
///
/// # Safety
/// `x` readable and `out` writable for `n` doubles.
#[inline(always)]
pub(crate) unsafe fn softmax_row<S: Simd>(
    s: S,
    x: *const f64,
    out: *mut f64,
    n: usize,
    log: bool,
    next: NextRow,
) -> bool {
    if n == 0 {
        return true;
    }
    // SAFETY (all blocks): forwarded contract.
    let (m, nan) = unsafe { row_max::<S, f64>(s, x, n) };
    if !m.is_finite() || nan {
        unsafe { special_row(x, out, n, m, nan, log) };
        return true;
    }
    let Some(shift) = Shift::of(m) else {
        return false;
    };
    if log {
        let sum = unsafe { lse_sum(s, x, n, m, shift, next, NextRow::own_output(x, out)) };
        // m + log S as a pair: log S may be far below ulp(m).
        let (c_hi, c_lo) = two_sum(m, sum.ln());
        let mut op = LogSoftmaxOp::<S> {
            c_hi: s.splat(c_hi),
            c_lo: s.splat(c_lo),
        };
        unsafe { for_chunks(s, x, out, n, &mut op) };
    } else {
        // The rounded y wait in `out` (each element is read before it is written).
        let mut op = RoundedSumOp::<S, true>::new(s, shift);
        let mut fetching = Fetching { op: &mut op, next };
        unsafe { for_chunks(s, x, out, n, &mut fetching) };
        let (hi, lo) = op.total(s);
        let inv_hi = 1.0 / hi;
        // 1/(hi + lo) − inv_hi, to first order; the FMA residual is exact.
        let inv_lo = inv_hi * (inv_hi.mul_add(-hi, 1.0) - lo * inv_hi);
        let mut scale = ScaleOp::<S> {
            inv_hi: s.splat(inv_hi),
            inv_lo: s.splat(inv_lo),
        };
        unsafe { for_chunks(s, out, out, n, &mut scale) };
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{dispatch, Isa, WithSimd};

    /// The terms of 16 lines through [`exp_terms_of_lines`], and through [`exp_terms`] with
    /// each polynomial, every lane shifted like one row with maximum `m`.
    struct Terms<'a>(&'a [f64; VLANES], &'a [f64; VLANES], f64);

    type Lanes = [f64; VLANES];

    impl WithSimd for Terms<'_> {
        type Output = [(Lanes, Lanes); 3];
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) -> Self::Output {
            let lanes = LaneShift::splat(s, Shift::of(self.2).unwrap());
            let per = nv::<S>();
            let mut v = [s.splat(0.0); VLANES];
            let mut keep_lo = [s.splat(0.0); VLANES];
            for j in 0..per {
                // SAFETY: j·LANES + LANES <= 16.
                unsafe {
                    v[j] = s.load_f64(self.0.as_ptr().add(j * S::LANES));
                    keep_lo[j] = s.load_f64(self.1.as_ptr().add(j * S::LANES));
                }
            }
            let spilled = |(t, p2): ([S::V; VLANES], [S::V; VLANES])| {
                let (mut a, mut b) = ([0.0; VLANES], [0.0; VLANES]);
                for j in 0..per {
                    // SAFETY: as above.
                    unsafe {
                        s.store_f64(a.as_mut_ptr().add(j * S::LANES), t[j]);
                        s.store_f64(b.as_mut_ptr().add(j * S::LANES), p2[j]);
                    }
                }
                (a, b)
            };
            [
                spilled(exp_terms_of_lines(s, &v, per, &lanes, &keep_lo[..per])),
                spilled(exp_terms::<S, VLANES, true>(s, &v, per, &lanes)),
                spilled(exp_terms::<S, VLANES, false>(s, &v, per, &lanes)),
            ]
        }
    }

    /// Tile and strip lines take their own row's terms, lane by lane, whatever the other lines
    /// of their vector take: the sixteenths of `ln 2` where `keep_lo` is 0, the degree-13
    /// polynomial where it is 1 (every mix, all of one kind included), `t` and the power of
    /// two both.
    #[test]
    fn lines_take_their_own_polynomial() {
        let x: Lanes = std::array::from_fn(|i| 3.0 - 0.37 * i as f64);
        for pattern in [0u32, 0xffff, 0x0001, 0x8000, 0x5555, 0x0ff0, 0xfffe] {
            let keep_lo: Lanes = std::array::from_fn(|i| ((pattern >> i) & 1) as f64);
            for isa in Isa::supported() {
                let [lines, fast, full] = dispatch(isa, Terms(&x, &keep_lo, 3.0));
                for i in 0..VLANES {
                    let want = if keep_lo[i] == 0.0 {
                        fast.0[i]
                    } else {
                        full.0[i]
                    };
                    assert_eq!(
                        lines.0[i].to_bits(),
                        want.to_bits(),
                        "{isa:?} {pattern:x} {i}"
                    );
                    let want = if keep_lo[i] == 0.0 {
                        fast.1[i]
                    } else {
                        full.1[i]
                    };
                    assert_eq!(lines.1[i], want, "{isa:?} {pattern:x} {i}");
                }
                // The two kinds differ somewhere, or the test would prove nothing.
                assert!((0..VLANES).any(|i| fast.0[i] != full.0[i]), "{isa:?}");
            }
        }
    }
}
