//! The float32 row passes in f32 lanes (twice the lanes of the f64 path), used for float32 data
//! without a temperature or weights whose maximum has `|m| ≤ M_LIMIT` (other rows take the
//! f64-lane path).
//!
//! The shift: instead of `e^{x − m}`, which needs `x − m` carried as an exact pair, the row is
//! shifted by `s = K_m·LN2_HI` with `K_m = round(m / ln 2)` and `LN2_HI` = ln 2 rounded to f32:
//! `e^{x − s} = 2^{K − K_m} e^{r}`, where `K = round(x / ln 2)` and
//! `r = (x − K·LN2_HI) − (K − K_m)·LN2_LO` is rounded once (see [`exp32_shifted_n`]).
//! softmax does not depend on the shift; logsumexp and log_softmax convert back with
//! `e^{s − m}`, once per row, in f64. softmax reduces by `K·LN2_LO` instead
//! ([`pass_terms`]), so its `1 + t` does not depend on the shift either, and its row kernel
//! skips the max pass when it writes to another buffer: it takes the shift from the first
//! block and moves it when a larger entry comes ([`OnePassOp`]), with the two-pass results.
//!
//! Accuracy: `1 + t` carries ≤ 0.73u relative error (u = 2⁻²⁴): the rounding of `r` (2⁻²⁶),
//! that of `t` (2⁻²⁶ absolute, ≤ 1.42·2⁻²⁶ relative to `1 + t ≥ 0.705`) and the polynomial's
//! approximation and evaluation (≤ 2·2⁻²⁸).
//! - softmax: `y = 2^{K−K_m+64}(1 + t)` is rounded once to f32 and stored in `out` (≤ 1.73u
//!   relative); the `y` are summed in f64, so `S` carries their weighted mean error;
//!   `out_i = y_i · (1/S)` with `1/S` as an f32 pair is rounded once. Bound
//!   2·1.73 + 0.5 ≤ 3.96 ULP, measured ≤ 2.6 (the contract is 4); the stored `y` save a second
//!   `exp` per element.
//! - logsumexp / log_softmax: each term is split exactly as `y + y_lo`, so `S` carries only
//!   the terms' own error (the mean of ≤ 0.73u) and ~n·2⁻⁵² from the f64 sum; the max entries
//!   are counted apart, so `S − 1` keeps its relative accuracy for `log1p`; log_softmax rounds
//!   `(x − c_hi) − c_lo` with `c = m + log S` as an f32 pair (≤ 2 ULP, outputs near 0
//!   included). log_softmax rows of at least 256 whose maximum is at least `2 ln n` or at most
//!   `−3 ln n` add their rounded `y` in f32 pairs instead, the max entries still counted apart
//!   ([`paired_log_softmax`], ≤ 3.6 ULP; the contract is 4). logsumexp takes the exact sums
//!   only where its result may be below 2 in magnitude;
//!   elsewhere it sums the rounded `y` as softmax does ([`lse_row`], ≤ 0.94 ULP), and rows of
//!   at least 128 whose result is at least 8 in magnitude sum those `y` in f32 runs first,
//!   their terms reduced without the `LN2_LO` term ([`RunSumOp`], [`run_terms`], ≤ 0.94 ULP).
//!   Measured ≤ 0.63 ULP (the contract is 1).
//!
//! Arguments are clamped at `(K_m − 191)·ln 2`, where the exponent field `K − K_m + 191` of
//! `2^{K−K_m+64}` is 0: entries more than ~132 below the max contribute exactly 0 (their true
//! share is below 2⁻¹⁹⁰, and every kept term is a normal float). Elements map to the same 16
//! virtual lanes as the f64 path (`i % 16`) and blocks have the same size on every ISA, so
//! every ISA returns bit-identical results.

// Kernels index several per-lane arrays with one virtual-lane index; iterators would hide that.
#![allow(clippy::needless_range_loop)]

use super::rows::{spill, tree, two_sum, Fetching, NextRow};
use crate::math::exp::{exp_v, Degree};
use crate::math::exp32::{exp32_shifted_n, ln2_lo, LN2_HI, LOG2_E, MAGIC32};
use crate::math::log::log1p_v;
use crate::simd::{Simd, VLANES, WIDEN_SCALE};

/// `2⁶⁴`: sums are scaled by it so that `2^(k+64)` is a normal float for every kept `k`.
pub(crate) const SCALE: f64 = 18_446_744_073_709_551_616.0;

/// Rows whose maximum is at most this in magnitude use the f32-lane passes: the clamped
/// arguments then stay within `|x| ≤ 2¹⁷`, where the reduction is exact.
pub(crate) const M_LIMIT: f32 = 65_536.0;

/// `2^{K − K_m + 64}` has the biased exponent `K − K_m + EXP_OFFSET`.
const EXP_OFFSET: i32 = 64 + 127;

/// Elements per step: two chunks of [`VLANES`], whose exponentials are computed interleaved.
pub(crate) const BLOCK: usize = 2 * VLANES;

/// f32 vectors per chunk of [`VLANES`] elements.
#[inline(always)]
pub(crate) fn nf<S: Simd>() -> usize {
    VLANES / S::LANES32
}

/// f32 vectors per block.
#[inline(always)]
fn nb<S: Simd>() -> usize {
    BLOCK / S::LANES32
}

/// f64 vectors per f32 vector.
#[inline(always)]
pub(crate) fn ratio<S: Simd>() -> usize {
    S::LANES32 / S::LANES
}

/// The f64 accumulator of virtual lanes for part `part` of block vector `j`.
#[inline(always)]
fn acc_index<S: Simd>(j: usize, part: usize) -> usize {
    (j % nf::<S>()) * ratio::<S>() + part
}

/// Load one block of `BLOCK` floats as `BLOCK / LANES32` vectors.
///
/// # Safety
/// `p` must be valid for reading `BLOCK` floats.
#[inline(always)]
unsafe fn load_block<S: Simd>(s: S, p: *const f32) -> [S::F; BLOCK] {
    let mut v = [s.fsplat(0.0); BLOCK];
    for j in 0..nb::<S>() {
        // SAFETY: j·LANES32 + LANES32 <= BLOCK floats are readable.
        v[j] = unsafe { s.fload(p.add(j * S::LANES32)) };
    }
    v
}

/// The work on one block. A trait rather than a closure: a closure is compiled as its own
/// function, outside the ISA's target features, and would not inline intrinsics.
trait BlockOp<S: Simd> {
    /// Process `v`; `out` (if non-null) has room for a whole block of results.
    ///
    /// # Safety
    /// A non-null `out` must be writable for `BLOCK` floats.
    unsafe fn block(&mut self, s: S, v: &[S::F; BLOCK], out: *mut f32);
}

/// Visit the row block by block; the tail is padded with `−inf` and written back partially.
///
/// # Safety
/// `x` readable and `out` (if non-null) writable for `n` floats; they may be equal.
#[inline(always)]
unsafe fn for_blocks<S: Simd, Op: BlockOp<S>>(
    s: S,
    x: *const f32,
    out: *mut f32,
    n: usize,
    op: &mut Op,
) {
    let full = n - n % BLOCK;
    let mut i = 0;
    while i < full {
        // SAFETY: i + BLOCK <= n for x and out.
        unsafe {
            let v = load_block::<S>(s, x.add(i));
            let o = if out.is_null() { out } else { out.add(i) };
            op.block(s, &v, o);
        }
        i += BLOCK;
    }
    if i < n {
        // The tail is read in place, padded with −inf (see `Simd::fload_first`), and its
        // results go to a block-sized buffer first, then out whole vector by whole vector and
        // the last few one by one.
        let rest = n - i;
        let mut v = [s.fsplat(f32::NEG_INFINITY); BLOCK];
        for j in 0..nb::<S>() {
            let at = j * S::LANES32;
            // SAFETY (both loads): floats i + at .. + min(rest − at, LANES32) are in the row.
            if at + S::LANES32 <= rest {
                v[j] = unsafe { s.fload(x.add(i + at)) };
            } else if at < rest {
                v[j] = unsafe { s.fload_first(x.add(i + at), rest - at, f32::NEG_INFINITY) };
            }
        }
        let mut res = [0.0f32; BLOCK];
        // SAFETY: `res` has room for a whole block.
        unsafe { op.block(s, &v, if out.is_null() { out } else { res.as_mut_ptr() }) };
        if !out.is_null() {
            for j in 0..nb::<S>() {
                let at = j * S::LANES32;
                if at + S::LANES32 <= rest {
                    // SAFETY: as above, for `out`; `res` holds the block's results.
                    unsafe { s.fstore(out.add(i + at), s.fload(res.as_ptr().add(at))) };
                } else {
                    // The last few one by one: scalar loads of a vector just stored are
                    // forwarded, and a masked vector store is slow on AMD machines.
                    for k in at..rest {
                        // SAFETY: i + k < n.
                        unsafe { *out.add(i + k) = res[k] };
                    }
                }
            }
        }
    }
}

impl<S: Simd, Op: BlockOp<S>> BlockOp<S> for Fetching<'_, Op> {
    #[inline(always)]
    unsafe fn block(&mut self, s: S, v: &[S::F; BLOCK], out: *mut f32) {
        self.next.fetch_step();
        // SAFETY: forwarded contract.
        unsafe { self.op.block(s, v, out) };
    }
}

/// Spill f32 vectors to the 16 virtual lanes.
#[inline(always)]
fn spill32<S: Simd>(s: S, acc: &[S::F; VLANES]) -> [f32; VLANES] {
    let mut out = [0.0f32; VLANES];
    for j in 0..nf::<S>() {
        // SAFETY: out has room for VLANES floats.
        unsafe { s.fstore(out.as_mut_ptr().add(j * S::LANES32), acc[j]) };
    }
    out
}

/// The max pass's state: one maximum per vector of a block, so that each block adds one `fmax`
/// to each dependency chain. Per 16-lane chunk, as the other passes keep them, the block's two
/// chunks would put two `fmax` on each chain, whose latency then bounded the pass on AVX-512
/// (one vector per chunk): float32 logsumexp and log_softmax ×1.02–1.10, with one build,
/// calls interleaved. The maximum is the same; only a zero maximum's sign may come out
/// otherwise, and that changes no result (`m` enters through `K_m`, `x == m` and `m + log S`).
struct MaxOp<S: Simd> {
    acc: [S::F; BLOCK],
    /// A plain sum per lane, which any NaN entry turns NaN (as in `rows::row_max`).
    probe: [S::F; BLOCK],
}

impl<S: Simd> BlockOp<S> for MaxOp<S> {
    #[inline(always)]
    unsafe fn block(&mut self, s: S, v: &[S::F; BLOCK], _out: *mut f32) {
        for j in 0..nb::<S>() {
            // fmax(v, acc) returns acc when v is NaN: the NaN shows in `probe` instead.
            self.acc[j] = s.fmax(v[j], self.acc[j]);
            self.probe[j] = s.fadd(self.probe[j], v[j]);
        }
    }
}

/// Finds NaN entries vector by vector: [`row_max`]'s answer when its sums are NaN (a NaN
/// entry, or +inf and −inf, or an overflow and −inf, in one lane).
struct NanOp<S: Simd> {
    nan: S::FM,
}

impl<S: Simd> BlockOp<S> for NanOp<S> {
    #[inline(always)]
    unsafe fn block(&mut self, s: S, v: &[S::F; BLOCK], _out: *mut f32) {
        for j in 0..nb::<S>() {
            self.nan = s.fmor(self.nan, s.fis_nan(v[j]));
        }
    }
}

/// Pass 1: the row maximum (NaN ignored) and whether a NaN is present.
///
/// # Safety
/// `x` readable for `n` floats.
#[inline(always)]
pub(crate) unsafe fn row_max<S: Simd>(s: S, x: *const f32, n: usize) -> (f32, bool) {
    let mut op = MaxOp {
        acc: [s.fsplat(f32::NEG_INFINITY); BLOCK],
        probe: [s.fsplat(0.0); BLOCK],
    };
    // SAFETY: forwarded contract.
    unsafe { for_blocks(s, x, std::ptr::null_mut(), n, &mut op) };
    // Into the 16 virtual lanes, the second chunk's vectors onto the first's, in the same order
    // on every ISA.
    let mut acc = [s.fsplat(f32::NEG_INFINITY); VLANES];
    for j in 0..nb::<S>() {
        let a = j % nf::<S>();
        acc[a] = s.fmax(op.acc[j], acc[a]);
    }
    let m = tree(spill32(s, &acc), |a, b| if a > b { a } else { b });
    let probed = op.probe[..nb::<S>()].iter().any(|&p| s.fmany(s.fis_nan(p)));
    if !probed {
        return (m, false);
    }
    let mut nan = NanOp { nan: s.fmnone() };
    // SAFETY: forwarded contract.
    unsafe { for_blocks(s, x, std::ptr::null_mut(), n, &mut nan) };
    (m, s.fmany(nan.nan))
}

/// `K = round(m / ln 2)` as the kernels compute it (finite `|m| ≤ M_LIMIT`).
fn octave_of(m: f32) -> i32 {
    (m.mul_add(LOG2_E, MAGIC32) - MAGIC32) as i32
}

/// The row's shift `s = K_m·ln 2`.
#[derive(Clone, Copy)]
pub(crate) struct Shift {
    pub k_m: i32,
    /// `(K_m − 191)·ln 2`: the clamp, whose `2^{K − K_m + 64}` is exactly 0.
    pub low: f32,
}

impl Shift {
    /// `None` when `|m| > M_LIMIT` (or `m` is not finite).
    pub fn of(m: f32) -> Option<Shift> {
        if !m.is_finite() || m.abs() > M_LIMIT {
            return None;
        }
        Some(Shift::at(octave_of(m)))
    }

    /// The shift `K_m·ln 2` for a given `K_m` (finite `|K_m| ≤ 2¹⁷`).
    fn at(k_m: i32) -> Shift {
        // Rounding `low` to f32 moves it by < 0.005, far from the ±0.35 that would change its K.
        let low = ((k_m - EXP_OFFSET) as f64 * std::f64::consts::LN_2) as f32;
        Shift { k_m, low }
    }

    /// `[low, MAGIC32 + K_m, MAGIC32 + EXP_OFFSET − K_m]`: the lane values of [`LaneShift`]
    /// (the same as [`LaneShift::of_maxima`] computes 16 at a time).
    pub fn lane_values(self) -> [f32; 3] {
        [
            self.low,
            MAGIC32 + self.k_m as f32,
            MAGIC32 + (EXP_OFFSET - self.k_m) as f32,
        ]
    }
}

/// The per-lane constants of [`exp_terms`]: splats for a row, 16 lanes for a column tile.
#[derive(Clone, Copy)]
pub(crate) struct LaneShift<F> {
    /// The clamp `(K_m − 191)·ln 2`.
    pub low: [F; VLANES],
    /// `MAGIC32 + K_m`.
    pub k_mm: [F; VLANES],
    /// `MAGIC32 + EXP_OFFSET − K_m`, whose low mantissa bits hold the exponent bias of
    /// `2^{K − K_m + 64}` (see [`Simd::fpow2_from_magic_lanes`]).
    pub bias: [F; VLANES],
}

impl<F: Copy> LaneShift<F> {
    /// The constants of one shift per virtual lane.
    #[inline(always)]
    pub fn of_lanes<S: Simd<F = F>>(s: S, shifts: &[Shift; VLANES]) -> Self {
        let mut low = [0.0f32; VLANES];
        let mut k_mm = [0.0f32; VLANES];
        let mut bias = [0.0f32; VLANES];
        for (b, shift) in shifts.iter().enumerate() {
            [low[b], k_mm[b], bias[b]] = shift.lane_values();
        }
        // SAFETY: the arrays hold VLANES floats.
        unsafe { Self::load(s, low.as_ptr(), k_mm.as_ptr(), bias.as_ptr()) }
    }

    /// The constants of 16 consecutive lanes from per-lane arrays (as built by
    /// [`Shift::lane_values`]); only the first `nf` vectors are set, the ones `exp_terms` reads.
    ///
    /// # Safety
    /// Each pointer must be readable for 16 floats.
    #[inline(always)]
    pub unsafe fn load<S: Simd<F = F>>(
        s: S,
        low: *const f32,
        k_mm: *const f32,
        bias: *const f32,
    ) -> Self {
        let mut lanes = LaneShift {
            low: [s.fsplat(0.0); VLANES],
            k_mm: [s.fsplat(0.0); VLANES],
            bias: [s.fsplat(0.0); VLANES],
        };
        for j in 0..nf::<S>() {
            // SAFETY: the caller's contract.
            unsafe {
                lanes.low[j] = s.fload(low.add(j * S::LANES32));
                lanes.k_mm[j] = s.fload(k_mm.add(j * S::LANES32));
                lanes.bias[j] = s.fload(bias.add(j * S::LANES32));
            }
        }
        lanes
    }

    /// The constants of 16 lanes from their maxima, each finite with `|m| ≤ M_LIMIT`: the
    /// vector form of [`Shift::of`] and [`Shift::lane_values`], with the same values (the
    /// same operations per lane), and `K_m` per lane (as floats, exact). A tile's 16 scalar
    /// shifts cost about a tenth of a 10-element-row call.
    #[inline(always)]
    pub fn of_maxima<S: Simd<F = F>>(s: S, m: &[F; VLANES]) -> (Self, [f32; VLANES]) {
        let mut lanes = LaneShift {
            low: [s.fsplat(0.0); VLANES],
            k_mm: [s.fsplat(0.0); VLANES],
            bias: [s.fsplat(0.0); VLANES],
        };
        let mut k_m = [0.0f32; VLANES];
        let mut low = [0.0f32; VLANES];
        let magic = s.fsplat(MAGIC32);
        for j in 0..nf::<S>() {
            let k = s.fsub(s.ffma(m[j], s.fsplat(LOG2_E), magic), magic);
            lanes.k_mm[j] = s.fadd(magic, k);
            lanes.bias[j] = s.fsub(s.fsplat(MAGIC32 + EXP_OFFSET as f32), k);
            // SAFETY: k_m holds VLANES floats.
            unsafe { s.fstore(k_m.as_mut_ptr().add(j * S::LANES32), k) };
        }
        // low = ((K_m − EXP_OFFSET)·ln 2 in f64) rounded to f32, as in `Shift::of`.
        for a in 0..VLANES / S::LANES {
            // SAFETY: the arrays hold VLANES floats.
            unsafe {
                let k = s.load_f32(k_m.as_ptr().add(a * S::LANES));
                let v = s.mul(
                    s.sub(k, s.splat(EXP_OFFSET as f64)),
                    s.splat(std::f64::consts::LN_2),
                );
                s.store_f32(low.as_mut_ptr().add(a * S::LANES), v);
            }
        }
        for j in 0..nf::<S>() {
            // SAFETY: low holds VLANES floats.
            lanes.low[j] = unsafe { s.fload(low.as_ptr().add(j * S::LANES32)) };
        }
        (lanes, k_m)
    }

    /// One shift in every lane (a row).
    #[inline(always)]
    fn splat<S: Simd<F = F>>(s: S, shift: Shift) -> Self {
        let [low, k_mm, bias] = shift.lane_values();
        LaneShift {
            low: [s.fsplat(low); VLANES],
            k_mm: [s.fsplat(k_mm); VLANES],
            bias: [s.fsplat(bias); VLANES],
        }
    }
}

/// `(t, 2^{K − K_m + 64})` with `e^{x − K_m·LN2_HI} = 2^{K − K_m}(1 + t)` for the first
/// `count` of `N` vectors; vector `j` belongs to the lanes `j % nf` of `lanes`.
#[inline(always)]
pub(crate) fn exp_terms<S: Simd, const N: usize>(
    s: S,
    v: &[S::F; N],
    count: usize,
    lanes: &LaneShift<S::F>,
) -> ([S::F; N], [S::F; N]) {
    shifted_terms::<S, N, { ln2_lo::RELATIVE }>(s, v, count, lanes)
}

/// The terms of a pass over every layout: logsumexp's and log_softmax's are [`exp_terms`];
/// softmax's (`softmax`) have the same `2^{K − K_m + 64}` but `t` reduced by `K·LN2_LO`
/// ([`ln2_lo::ABSOLUTE`]), so it does not depend on the shift: a row's terms under shifts
/// `K_m` and `K_m'` differ by exactly `2^{K_m' − K_m}` wherever both are normal, which lets the
/// one-pass row kernel ([`softmax_row`]) move its shift and still return what the two-pass
/// layouts return.
#[inline(always)]
pub(crate) fn pass_terms<S: Simd, const N: usize>(
    s: S,
    v: &[S::F; N],
    count: usize,
    lanes: &LaneShift<S::F>,
    softmax: bool,
) -> ([S::F; N], [S::F; N]) {
    if softmax {
        shifted_terms::<S, N, { ln2_lo::ABSOLUTE }>(s, v, count, lanes)
    } else {
        exp_terms(s, v, count, lanes)
    }
}

/// [`exp_terms`] without the reduction's `LN2_LO` term (see [`exp32_shifted_n`]), for the f32
/// runs of [`RunSumOp`], whose results have room for the bias: 2 of the pass's ~16 vector
/// operations per element go (float32 logsumexp rows of 250 to 100000 ×1.03–1.39, median
/// 1.11, over three A/B runs; axis-0 strips ×1.04–1.16).
///
/// The bias: term `i`, `j_i = K_m − K_i` octaves below the max, comes out `e^{j_i·|LN2_LO|}`
/// times too large (`|LN2_LO| = 2⁻²⁸·⁹⁷`), so `S` is biased by `|LN2_LO|` times the mean of
/// the `j_i` weighted by the terms. Each term weighs at most `2^{1/2 − j_i}` (`|r| ≤ ln 2 / 2`
/// but for the ~0.006 that rounding `K` allows; the bound below holds with a ratio of 2.05)
/// and the max entry (`j = 0`) at least `2^{−1/2}`, so that mean is a linear-fractional
/// function of how many terms sit at each level, largest with all `n − 1` others at one level
/// `j`: `a·j / (1 + a)` with `a = 2(n − 1)·2^{−j}`, whose maximum over `j` is below `log₂ n`
/// (27.3 for `n = 2³²`, 12.4 for `2¹⁶`, 5.6 for `2⁸`). So `S` is biased by less than
/// `log₂ n · 2⁻²⁸·⁹⁷` relative: 0.51u for `n < 2¹⁶`, 1.02u for `n < 2³²` (u = 2⁻²⁴).
#[inline(always)]
pub(crate) fn run_terms<S: Simd, const N: usize>(
    s: S,
    v: &[S::F; N],
    count: usize,
    lanes: &LaneShift<S::F>,
) -> ([S::F; N], [S::F; N]) {
    shifted_terms::<S, N, { ln2_lo::NONE }>(s, v, count, lanes)
}

#[inline(always)]
fn shifted_terms<S: Simd, const N: usize, const LO_TERM: u8>(
    s: S,
    v: &[S::F; N],
    count: usize,
    lanes: &LaneShift<S::F>,
) -> ([S::F; N], [S::F; N]) {
    let mut xc = *v;
    for j in 0..count {
        // fmax returns its second operand when either is NaN (NaN rows never get here);
        // −inf (padding, masked entries) is clamped like any far-away entry.
        xc[j] = s.fmax(lanes.low[j % nf::<S>()], v[j]);
    }
    let (t, k_magic) = exp32_shifted_n::<S, N, LO_TERM>(s, &xc, count, &lanes.k_mm[..nf::<S>()]);
    let mut p2 = k_magic;
    for j in 0..count {
        // The exponent field K − K_m + 191 is 0 at the clamp.
        p2[j] = s.fpow2_from_magic_lanes(k_magic[j], lanes.bias[j % nf::<S>()]);
    }
    (t, p2)
}

/// One term of a logsumexp sum: `(y, y_lo, at_max)` with `y + y_lo = p2·(1 + t)` exactly, both
/// zero at the max entries (`x == m`), which are counted apart. With AVX-512's masked FMAs the
/// zeroing costs no operation of its own (one of the pass's ~31 per vector, and one more by
/// counting the max entries with a masked add, [`Simd::fadd_keep`]: ×1.02–1.04 on float32
/// log_softmax rows, A/B, one run in each order); elsewhere `p2` is zeroed once for both FMAs.
#[inline(always)]
pub(crate) fn lse_term<S: Simd>(s: S, t: S::F, p2: S::F, x: S::F, m: S::F) -> (S::F, S::F, S::FM) {
    let at_max = s.feq(x, m);
    // p2·(1 + t) − y: p2 − y is exact (Sterbenz) and the rounding error of y, a power of two
    // times the error of fl(1 + t), is a float: the FMA returns it exactly.
    if S::FREE_MASKS {
        let y = s.ffma_drop(at_max, t, p2, p2);
        let y_lo = s.ffma_drop(at_max, t, p2, s.fsub(p2, y));
        (y, y_lo, at_max)
    } else {
        let p2 = s.fdrop(at_max, p2);
        let y = s.ffma(t, p2, p2);
        (y, s.ffma(t, p2, s.fsub(p2, y)), at_max)
    }
}

/// softmax pass 2: `y = 2^{K−K_m+64}(1 + t)` rounded once (into `out` when `STORE`), summed in
/// f64. Without the store it is the fast logsumexp pass (see [`lse_row`]).
struct RoundedSumOp<S: Simd, const STORE: bool> {
    lanes: LaneShift<S::F>,
    acc: [S::V; VLANES],
}

impl<S: Simd, const STORE: bool> RoundedSumOp<S, STORE> {
    #[inline(always)]
    fn new(s: S, shift: Shift) -> Self {
        RoundedSumOp {
            lanes: LaneShift::splat(s, shift),
            acc: [s.splat(0.0); VLANES],
        }
    }

    /// `Σ y` (scaled by 2⁶⁴).
    #[inline(always)]
    fn total(&self, s: S) -> f64 {
        tree(widened_sums(s, &self.acc), |a, b| a + b)
    }
}

impl<S: Simd, const STORE: bool> BlockOp<S> for RoundedSumOp<S, STORE> {
    #[inline(always)]
    unsafe fn block(&mut self, s: S, v: &[S::F; BLOCK], out: *mut f32) {
        let (t, p2) = pass_terms(s, v, nb::<S>(), &self.lanes, STORE);
        for j in 0..nb::<S>() {
            let y = s.ffma(t[j], p2[j], p2[j]);
            if STORE {
                // SAFETY: `out` has room for a whole block (the trait's contract).
                unsafe { s.fstore(out.add(j * S::LANES32), y) };
            }
            for i in 0..ratio::<S>() {
                let a = acc_index::<S>(j, i);
                self.acc[a] = s.add(self.acc[a], s.widen_scaled(y, i));
            }
        }
    }
}

/// Blocks whose rounded terms [`RunSumOp`] sums in f32 before it widens the sums into f64.
pub(crate) const RUN_BLOCKS: usize = 4;

/// The fastest logsumexp pass (see [`run_lse`]): `y = 2^{K−K_m+64}(1 + t)` rounded once, as in
/// [`RoundedSumOp`], but summed in f32 first: per virtual lane `l` and block, the pair of the
/// block's elements `l` and `16 + l` (one rounding), then those pairs over a run of
/// [`RUN_BLOCKS`] blocks in order (three more), and only each run's sum is widened and added
/// in f64. Per element the f64 sums cost six of the pass's ~23 vector operations (two
/// widenings of two operations, two adds); here they cost about one: 11–17% faster on rows of
/// 1000 to 100000.
///
/// Error: each term ≤ 1.48u relative (as in [`RoundedSumOp`] less the 0.25u of rounding the
/// reduced argument, exact in [`run_terms`]) and `S` biased by less than `log₂ n · 2⁻²⁸·⁹⁷`
/// (≤ 1.02u for n < 2³²; see [`run_terms`]); the four f32 roundings on a term's way ≤ 4u of
/// the partial sums (all terms are positive), so `S` within 6.5u relative plus
/// (n/128 + 4)·2⁻⁵³ from the f64 sums, and `log S` within ~6.6u absolute: ≤ 0.42 ULP of a
/// result of magnitude ≥ 8 (ULP ≥ 16u), ≤ 0.94 ULP with the final rounding (the contract is
/// 1).
struct RunSumOp<S: Simd> {
    lanes: LaneShift<S::F>,
    run: [S::F; VLANES],
    acc: [S::V; VLANES],
}

impl<S: Simd> RunSumOp<S> {
    #[inline(always)]
    fn new(s: S, shift: Shift) -> Self {
        RunSumOp {
            lanes: LaneShift::splat(s, shift),
            run: [s.fsplat(0.0); VLANES],
            acc: [s.splat(0.0); VLANES],
        }
    }

    /// Add the run's sums to the f64 sums and start a new run.
    #[inline(always)]
    fn flush(&mut self, s: S) {
        for a in 0..nf::<S>() {
            for i in 0..ratio::<S>() {
                let k = a * ratio::<S>() + i;
                self.acc[k] = s.add(self.acc[k], s.widen_scaled(self.run[a], i));
            }
            self.run[a] = s.fsplat(0.0);
        }
    }

    /// `Σ y` (scaled by 2⁶⁴).
    #[inline(always)]
    fn total(&mut self, s: S) -> f64 {
        self.flush(s);
        tree(widened_sums(s, &self.acc), |a, b| a + b)
    }
}

impl<S: Simd> BlockOp<S> for RunSumOp<S> {
    #[inline(always)]
    unsafe fn block(&mut self, s: S, v: &[S::F; BLOCK], _out: *mut f32) {
        let (t, p2) = run_terms(s, v, nb::<S>(), &self.lanes);
        let mut y = t;
        for j in 0..nb::<S>() {
            y[j] = s.ffma(t[j], p2[j], p2[j]);
        }
        // Vectors a and nf + a hold the same virtual lanes of the block's two chunks.
        for a in 0..nf::<S>() {
            self.run[a] = s.fadd(self.run[a], s.fadd(y[a], y[nf::<S>() + a]));
        }
    }
}

/// The 16 lanes' sums of [`Simd::widen_scaled`] terms (accumulated at [`acc_index`]) in lane
/// order and unscaled: the sums of the widened terms exactly (scaling by 2⁻⁸⁹⁶ changes no
/// rounding: the terms are multiples of 2⁻¹⁰⁴⁵, so sums in the subnormal range are exact).
#[inline(always)]
pub(crate) fn widened_sums<S: Simd>(s: S, acc: &[S::V; VLANES]) -> [f64; VLANES] {
    let mut acc = *acc;
    for a in 0..nf::<S>() {
        s.natural_lanes(&mut acc[a * ratio::<S>()..(a + 1) * ratio::<S>()]);
    }
    spill(s, &acc).map(|v| v * WIDEN_SCALE)
}

/// logsumexp / log_softmax pass 2: `Σ 2^{K−K_m+64}(1 + t)` over the entries below the max,
/// and the number of max entries. Each term is split exactly as `y + y_lo` (f32): `y` is
/// summed in f64, `y_lo` (below 2⁻²⁴ y) in f32. Widening only `y` halves the f32→f64
/// conversions, which have one port on AVX2 machines and bounded this pass (widened by
/// [`Simd::widen_scaled`]'s integer operations instead, as in [`RoundedSumOp`]).
///
/// `PAIRED` (log_softmax rows where [`paired_log_softmax`] holds): each `y` rounded, without
/// its low part, and the two chunks of a block added in f32 (virtual lane `l`: elements `l`
/// and `16 + l`, one rounding) before the pair is widened, the max entries still counted apart:
/// 9 of the pass's ~27 vector operations per 16 entries go. `S − count` is then within 2.4u
/// relative (each rounded term within 1.4u of `e^{x − m}`: 1u from rounding `1 + t`, 0.4u
/// from `r`, `t` and the polynomial; the pair 1u) instead of 0.73u.
struct LseSumOp<S: Simd, const PAIRED: bool> {
    m: S::F,
    lanes: LaneShift<S::F>,
    acc: [S::V; VLANES],
    lo: [S::F; VLANES],
    ties: [S::F; VLANES],
}

impl<S: Simd, const PAIRED: bool> BlockOp<S> for LseSumOp<S, PAIRED> {
    #[inline(always)]
    unsafe fn block(&mut self, s: S, v: &[S::F; BLOCK], _out: *mut f32) {
        let (t, p2) = exp_terms(s, v, nb::<S>(), &self.lanes);
        let one = s.fsplat(1.0);
        if PAIRED {
            let mut y = t;
            for j in 0..nb::<S>() {
                // The exact split's low part goes unused (and uncomputed).
                let (y_j, _, at_max) = lse_term(s, t[j], p2[j], v[j], self.m);
                y[j] = y_j;
                let a = j % nf::<S>();
                self.ties[a] = s.fadd_keep(at_max, self.ties[a], one);
            }
            // Vectors a and nf + a hold the same virtual lanes of the block's two chunks.
            for a in 0..nf::<S>() {
                let pair = s.fadd(y[a], y[nf::<S>() + a]);
                for i in 0..ratio::<S>() {
                    let k = a * ratio::<S>() + i;
                    self.acc[k] = s.add(self.acc[k], s.widen_scaled(pair, i));
                }
            }
            return;
        }
        for j in 0..nb::<S>() {
            let a = j % nf::<S>();
            let (y, y_lo, at_max) = lse_term(s, t[j], p2[j], v[j], self.m);
            self.ties[a] = s.fadd_keep(at_max, self.ties[a], one);
            self.lo[a] = s.fadd(self.lo[a], y_lo);
            for i in 0..ratio::<S>() {
                let a = acc_index::<S>(j, i);
                self.acc[a] = s.add(self.acc[a], s.widen_scaled(y, i));
            }
        }
    }
}

/// `v` as an unevaluated f32 pair `hi + lo` (`v = v_hi + v_lo` given in f64).
pub(crate) fn f32_pair(v_hi: f64, v_lo: f64) -> (f32, f32) {
    let hi = v_hi as f32;
    (hi, ((v_hi - hi as f64) + v_lo) as f32)
}

/// [`f32_pair`] of 16 lanes at once (the same operations per lane).
#[inline(always)]
pub(crate) fn f32_pairs<S: Simd>(
    s: S,
    v_hi: &[f64; VLANES],
    v_lo: &[f64; VLANES],
) -> ([f32; VLANES], [f32; VLANES]) {
    let (mut hi, mut lo) = ([0.0f32; VLANES], [0.0f32; VLANES]);
    for a in 0..VLANES / S::LANES {
        let at = a * S::LANES;
        // SAFETY: at + LANES <= VLANES for every array.
        unsafe {
            let v = s.load_f64(v_hi.as_ptr().add(at));
            s.store_f32(hi.as_mut_ptr().add(at), v);
            let rest = s.sub(v, s.load_f32(hi.as_ptr().add(at)));
            let rest = s.add(rest, s.load_f64(v_lo.as_ptr().add(at)));
            s.store_f32(lo.as_mut_ptr().add(at), rest);
        }
    }
    (hi, lo)
}

/// `y · (hi + lo)`, rounded once (softmax's rescaling).
#[inline(always)]
pub(crate) fn times_pair<S: Simd>(s: S, y: S::F, hi: S::F, lo: S::F) -> S::F {
    s.ffma(y, hi, s.fmul(y, lo))
}

/// `(x − hi) − lo` (log_softmax from `m + log S` as a pair; see [`LogSoftmaxOp`]).
#[inline(always)]
pub(crate) fn minus_pair<S: Simd>(s: S, x: S::F, hi: S::F, lo: S::F) -> S::F {
    s.fsub(s.fsub(x, hi), lo)
}

/// `out_i = y_i · (inv_hi + inv_lo)`, rounded once.
struct ScaleOp<S: Simd> {
    inv_hi: S::F,
    inv_lo: S::F,
}

impl<S: Simd> BlockOp<S> for ScaleOp<S> {
    #[inline(always)]
    unsafe fn block(&mut self, s: S, v: &[S::F; BLOCK], out: *mut f32) {
        for j in 0..nb::<S>() {
            let y = times_pair(s, v[j], self.inv_hi, self.inv_lo);
            // SAFETY: `out` has room for a whole block (the trait's contract).
            unsafe { s.fstore(out.add(j * S::LANES32), y) };
        }
    }
}

/// `out_i = (x_i − c_hi) − c_lo` with `c_hi + c_lo = m + log S` (an f32 pair).
///
/// Within 2 ULP with the exact sums (3.6 with the pairs, see [`paired_log_softmax`]): where
/// `x_i − c_hi` is inexact it is at least `c_hi/2` in magnitude and
/// `c_lo` is small next to it; where it cancels (x near m, log S below ulp(m)) it is exact
/// (Sterbenz) and `c_lo` carries `log S` to f32 precision, so outputs near 0 keep their
/// relative accuracy.
struct LogSoftmaxOp<S: Simd> {
    c_hi: S::F,
    c_lo: S::F,
}

impl<S: Simd> BlockOp<S> for LogSoftmaxOp<S> {
    #[inline(always)]
    unsafe fn block(&mut self, s: S, v: &[S::F; BLOCK], out: *mut f32) {
        for j in 0..nb::<S>() {
            let y = minus_pair(s, v[j], self.c_hi, self.c_lo);
            // SAFETY: `out` has room for a whole block (the trait's contract).
            unsafe { s.fstore(out.add(j * S::LANES32), y) };
        }
    }
}

/// Pass 2 for logsumexp / log_softmax: `S = Σ e^{x_i − m}` with the max entries counted apart
/// (`below_single_max` set when there is exactly one), asking for `next` and `out_lines` as it
/// goes. log_softmax passes its own row's output as `out_lines`, so that its write pass, which
/// follows, stores into lines already in the cache instead of waiting on each line's read for
/// ownership from L3 or memory (A/B float32 log_softmax `out=`, both orders: (64, 32000)
/// ×1.21–1.32, (1000, 4096) ×1.19–1.33, (4096, 1000) ×1.09–1.10, (256, 128256) ×1.09–1.11,
/// rows of 250 and single rows in L2 unchanged). A pending log_softmax write pass of the
/// previous row runs inside this pass, block by block (see [`PendingWrite`]); a pending
/// softmax scale pass runs first. The row's factor `e^{K_m·LN2_HI − m}` ([`RowFactor`]) is
/// taken before the loop: after it, the `exp` had lengthened the chain from the last block to
/// `log S`, which the next row's writes wait on (with the masked operations of [`lse_term`],
/// A/B float32 log_softmax `out=`, three runs over both orders: (4096, 1000) ×1.01–1.05,
/// (64, 32000) ×1.03, (1000, 4096) ×1.00–1.03, (256, 1000) ×1.04–1.05, (1, 100000) ×1.01).
///
/// # Safety
/// `x` readable for `n` floats; `m` finite with `|m| ≤ M_LIMIT`; the pending row readable and
/// writable, apart from `x`.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // the row, its shift, what to fetch, the pending row
unsafe fn lse_sum<S: Simd>(
    s: S,
    x: *const f32,
    n: usize,
    m: f32,
    shift: Shift,
    next: NextRow,
    out_lines: NextRow,
    pending: &mut PendingWrite,
    paired: bool,
) -> f64 {
    // SAFETY (both): forwarded contract.
    if paired {
        unsafe { lse_sum_of::<S, true>(s, x, n, m, shift, next, out_lines, pending) }
    } else {
        unsafe { lse_sum_of::<S, false>(s, x, n, m, shift, next, out_lines, pending) }
    }
}

/// [`lse_sum`] with its sum kind (see [`LseSumOp`]) as a constant.
///
/// # Safety
/// As for [`lse_sum`].
#[inline(always)]
#[allow(clippy::too_many_arguments)] // as lse_sum
unsafe fn lse_sum_of<S: Simd, const PAIRED: bool>(
    s: S,
    x: *const f32,
    n: usize,
    m: f32,
    shift: Shift,
    mut next: NextRow,
    mut out_lines: NextRow,
    pending: &mut PendingWrite,
) -> f64 {
    let factor = RowFactor::of(s, shift, m);
    let mut op = LseSumOp::<S, PAIRED> {
        m: s.fsplat(m),
        lanes: LaneShift::splat(s, shift),
        acc: [s.splat(0.0); VLANES],
        lo: [s.fsplat(0.0); VLANES],
        ties: [s.fsplat(0.0); VLANES],
    };
    if !pending.log {
        // SAFETY: forwarded contract.
        unsafe { pending.finish(s, 0, NextRow::NONE) };
    }
    let full = n - n % BLOCK;
    let written = pending.n - pending.n % BLOCK;
    let mut i = 0;
    if written > 0 {
        let (c_hi, c_lo) = (s.fsplat(pending.hi), s.fsplat(pending.lo));
        let (src, dst) = (pending.src, pending.out);
        let end = full.min(written);
        // SAFETY (all blocks): i + BLOCK ≤ n for this row and ≤ pending.n for the other.
        while i < end {
            out_lines.fetch_step();
            next.fetch_step();
            let v = unsafe { load_block::<S>(s, x.add(i)) };
            unsafe { op.block(s, &v, std::ptr::null_mut()) };
            let q = unsafe { load_block::<S>(s, src.add(i)) };
            for (j, &y) in q.iter().enumerate().take(nb::<S>()) {
                let p = unsafe { dst.add(i + j * S::LANES32) };
                unsafe { s.fstore(p, minus_pair(s, y, c_hi, c_lo)) };
            }
            i += BLOCK;
        }
    }
    // SAFETY: the pending row's entries from `i` on (or from `written`, past a shorter one).
    unsafe { pending.finish(s, i.min(written), NextRow::NONE) };
    let mut own = Fetching {
        op: &mut op,
        next: out_lines,
    };
    let mut fetching = Fetching { op: &mut own, next };
    // SAFETY: forwarded contract.
    unsafe { for_blocks(s, x.add(i), std::ptr::null_mut(), n - i, &mut fetching) };
    let lo = tree(spill32(s, &op.lo), |a, b| a + b) as f64;
    let total = tree(widened_sums(s, &op.acc), |a, b| a + b) + lo;
    let count = tree(spill32(s, &op.ties), |a, b| a + b) as f64;
    factor.log_sum(s, total, count)
}

/// `log S`, `S = count + total·2⁻⁶⁴·e^{K_m·LN2_HI − m}`, of 16 lines (a tile's lanes or 16
/// strip columns) from their pass-2 results, in f64 lanes: the factor by [`exp_v`] and the
/// logarithm as `log1p((count − 1) + others)` by [`log1p_v`] (within 2⁻⁵⁰ relative;
/// `count − 1` is exact and `others` carries `S − 1` to full relative accuracy when one max
/// entry is counted apart). Lines that counted none apart (logsumexp's rounded sums, `count`
/// 0) take `log1p(total·2⁻⁶⁴ − 1) + (K_m·LN2_HI − m)` instead (within 2⁻⁵⁰ relative to
/// `log S` and two f64 roundings, far below the f32 result's ULP), without the factor's
/// `exp`: float32 logsumexp ×1.16–1.19 on (1000, 10), ×0.92–1.10 on rows of 100 to 100000
/// (median 1.03, within the noise; A/B). Rows take the same operations through
/// [`log_sum_one`] or [`RowFactor::log_sum`], so every layout returns the same results; in
/// vector lanes because per-line libm `exp` and `log1p` calls cost 7–14% of a float32
/// log_softmax or logsumexp of 10-element rows.
#[inline(always)]
pub(crate) fn log_sums<S: Simd>(s: S, sums: &LineSums) -> [f64; VLANES] {
    let mut total = [0.0f64; VLANES];
    let mut count = [1.0f64; VLANES];
    let mut d = [0.0f64; VLANES];
    for a in 0..VLANES / S::LANES {
        let at = a * S::LANES;
        // SAFETY: at + LANES <= VLANES for every array.
        unsafe {
            // A line compared with NaN (a fast logsumexp line, see [`tie_value`]) drops its
            // low parts, as the row kernel does.
            let lo = s.load_f32(sums.lo.as_ptr().add(at));
            let dropped = s.is_nan(s.load_f32(sums.tie.as_ptr().add(at)));
            let acc = s.load_f64(sums.acc.as_ptr().add(at));
            s.store_f64(
                total.as_mut_ptr().add(at),
                s.add(acc, s.select(dropped, s.splat(0.0), lo)),
            );
            s.store_f64(
                count.as_mut_ptr().add(at),
                s.load_f32(sums.ties.as_ptr().add(at)),
            );
            // K_m·LN2_HI is exact in f64; the difference (|d| ≤ 0.35) rounds once. 0 − m is
            // −m exactly except for m = 0, where either zero gives the same sum.
            let minus_m = s.sub(s.splat(0.0), s.load_f32(sums.m.as_ptr().add(at)));
            let k_m = s.load_f32(sums.k_m.as_ptr().add(at));
            s.store_f64(
                d.as_mut_ptr().add(at),
                s.fma(k_m, s.splat(LN2_HI as f64), minus_m),
            );
        }
    }
    log_sums_of(s, &total, &count, &d, VLANES)
}

/// The pass-2 results of 16 lines (a tile's lanes or 16 strip columns), the inputs of
/// [`log_sums`].
pub(crate) struct LineSums {
    /// The f64 sums (scaled by 2⁶⁴).
    pub acc: [f64; VLANES],
    /// The f32 sums of the exact low parts.
    pub lo: [f32; VLANES],
    /// The number of max entries counted apart.
    pub ties: [f32; VLANES],
    /// The value entries were compared with (see [`tie_value`]).
    pub tie: [f32; VLANES],
    /// The maxima.
    pub m: [f32; VLANES],
    /// `K_m` of each line's shift.
    pub k_m: [f32; VLANES],
}

/// The vector part of [`log_sums`]: `log S` of the first `len` lines from `total`, `count`
/// and `d = K_m·LN2_HI − m`.
#[inline(always)]
fn log_sums_of<S: Simd>(
    s: S,
    total: &[f64; VLANES],
    count: &[f64; VLANES],
    d: &[f64; VLANES],
    len: usize,
) -> [f64; VLANES] {
    let mut logs = [0.0f64; VLANES];
    for j in 0..len.div_ceil(S::LANES) {
        let at = j * S::LANES;
        // SAFETY: at + LANES <= VLANES for every array.
        unsafe {
            let d = s.load_f64(d.as_ptr().add(at));
            let scaled = s.mul(s.load_f64(total.as_ptr().add(at)), s.splat(1.0 / SCALE));
            let count = s.load_f64(count.as_ptr().add(at));
            let one = s.splat(1.0);
            // Lines that counted no max entries apart (the rounded sums) need no relative
            // accuracy in `S − 1`: `log(total·2⁻⁶⁴) + d` spares the factor's `exp`. Any other
            // count (NaN included) keeps the counted form.
            let uncounted = s.eq(count, s.splat(0.0));
            let log = if !s.any(uncounted) {
                counted_log(s, scaled, count, d)
            } else {
                let plain = uncounted_log(s, scaled, d);
                if s.any(s.or(s.ge(count, one), s.is_nan(count))) {
                    s.select(uncounted, plain, counted_log(s, scaled, count, d))
                } else {
                    plain
                }
            };
            s.store_f64(logs.as_mut_ptr().add(at), log);
        }
    }
    logs
}

/// `log1p((count − 1) + scaled·e^d)`: `log S` of lines whose `count ≥ 1` max entries were
/// counted apart, with `S − 1` to full relative accuracy.
#[inline(always)]
fn counted_log<S: Simd>(s: S, scaled: S::V, count: S::V, d: S::V) -> S::V {
    counted_log_from(s, scaled, count, exp_v(s, d, Degree::Full))
}

/// [`counted_log`] from the factor `exp_d = e^d`.
#[inline(always)]
fn counted_log_from<S: Simd>(s: S, scaled: S::V, count: S::V, exp_d: S::V) -> S::V {
    let others = s.mul(scaled, exp_d);
    log1p_v(s, s.add(s.sub(count, s.splat(1.0)), others))
}

/// `log1p(scaled − 1) + d`: `log S` of lines that counted no max entries apart.
#[inline(always)]
fn uncounted_log<S: Simd>(s: S, scaled: S::V, d: S::V) -> S::V {
    s.add(log1p_v(s, s.sub(scaled, s.splat(1.0))), d)
}

/// [`log_sums`] of one line (a row) with its sum `total` (low parts included) and `count`
/// max entries.
#[inline(always)]
fn log_sum_one<S: Simd>(s: S, total: f64, count: f64, shift: Shift, m: f32) -> f64 {
    // Every lane the row's, so that its vector takes one branch of `log_sums_of`.
    let d = row_d(shift, m);
    log_sums_of(s, &[total; VLANES], &[count; VLANES], &[d; VLANES], 1)[0]
}

/// `d = K_m·LN2_HI − m` of a row, by the fused multiply-add of [`log_sums`].
#[inline(always)]
fn row_d(shift: Shift, m: f32) -> f64 {
    (shift.k_m as f64).mul_add(LN2_HI as f64, -(m as f64))
}

/// A row's `d` and the factor `e^d` of [`counted_log`], in every lane: [`lse_sum`] takes them
/// before its loop, so that the `exp`, which depends on the max alone, runs beside the sum
/// instead of lengthening the chain of dependent operations after it.
#[derive(Clone, Copy)]
struct RowFactor<V> {
    d: V,
    exp_d: V,
}

impl<V: Copy> RowFactor<V> {
    #[inline(always)]
    fn of<S: Simd<V = V>>(s: S, shift: Shift, m: f32) -> Self {
        let d = s.splat(row_d(shift, m));
        RowFactor {
            d,
            exp_d: exp_v(s, d, Degree::Full),
        }
    }

    /// [`log_sum_one`] from the factor: the same operations on the same values.
    #[inline(always)]
    fn log_sum<S: Simd<V = V>>(self, s: S, total: f64, count: f64) -> f64 {
        let scaled = s.mul(s.splat(total), s.splat(1.0 / SCALE));
        let log = if count == 0.0 {
            uncounted_log(s, scaled, self.d)
        } else {
            counted_log_from(s, scaled, s.splat(count), self.exp_d)
        };
        let mut lanes = [0.0f64; VLANES];
        // SAFETY: `lanes` holds VLANES >= LANES doubles.
        unsafe { s.store_f64(lanes.as_mut_ptr(), log) };
        lanes[0]
    }
}

/// Whether a logsumexp over `n` entries with maximum `m` is certain to be at least
/// [`FAST_LSE_MIN`] in magnitude (it lies in `[m, m + ln n]`), so that its terms may be summed
/// as rounded (see [`lse_row`]); `ln_n` is `ln n`, which callers with many lines compute once.
/// Rows, tiles and strips decide alike, so every layout returns the same result.
pub(crate) fn fast_lse(m: f32, ln_n: f64) -> bool {
    let m = m as f64;
    m >= FAST_LSE_MIN || m + ln_n <= -FAST_LSE_MIN
}

/// Whether a logsumexp over `n` entries with maximum `m` (`ln_n = ln n`) takes the f32 runs of
/// [`RunSumOp`]: rows of at least [`RUN_MIN_LEN`] whose result is certain to be at least
/// [`RUN_LSE_MIN`] in magnitude. Rows, tiles and strips decide alike.
pub(crate) fn run_lse(m: f32, n: usize, ln_n: f64) -> bool {
    let m = m as f64;
    n >= RUN_MIN_LEN && (m >= RUN_LSE_MIN || m + ln_n <= -RUN_LSE_MIN)
}

/// See [`run_lse`]: from here the result's ULP (≥ 2⁻²⁰ = 16u) leaves room for the f32 sums.
const RUN_LSE_MIN: f64 = 8.0;

/// See [`run_lse`]: one whole run. Batches of shorter rows go through the column tiles, which
/// keep the f64 sums.
pub(crate) const RUN_MIN_LEN: usize = 32 * RUN_BLOCKS;

/// For a line of `n` entries (`ln_n = ln n`) of a logsumexp (`lse`) tile or strip with maximum
/// `m`: the value its entries are compared with to count ties apart, NaN (never equal) where
/// [`fast_lse`] holds; such a line also drops its exact low parts, as the row kernel does.
pub(crate) fn tie_value(m: f32, ln_n: f64, lse: bool) -> f32 {
    if lse && fast_lse(m, ln_n) {
        f32::NAN
    } else {
        m
    }
}

/// Whether a float32 log_softmax line of `n` entries (`ln_n = ln n`) with maximum `m` sums
/// its terms in pairs ([`LseSumOp`]'s `PAIRED`): lines of at least [`PAIR_MIN_LEN`] with
/// `m ≥ 2 ln n` or `m ≤ −3 ln n`. Rows, tiles and strips decide alike.
///
/// Error (u = 2⁻²⁴, `L = log S ≤ ln n`): the pairs leave `L` within 2.4u·L (`S − count` within
/// 2.4u relative, see [`LseSumOp`]; `log1p` of it loses no more: `s/((1 + s)·log1p(s)) ≤ 1`),
/// i.e. at most 2.4 ULP of an output `out = (x − m) − L`, whose magnitude is at least `L`.
/// The write pass `(x − c_hi) − c_lo` ([`LogSoftmaxOp`]) adds one rounding where `x − c_hi`
/// is exact (≤ 3.4 ULP in all) and two where it is not. By the bound on `m`, `x − c_hi` is
/// exact (Sterbenz: `c_hi/2 ≤ x ≤ 2c_hi`, `c = m + L`) unless `m − x > L/2`, so the output is
/// then more than 1.5 times `L` and at most two thirds of the 2.4u reach it: ≤ 1.6 + 1 + 1
/// ULP. Within the 4 ULP contract either way (the exact sums: 2 ULP). Lines nearer 0,
/// such as `N(0, 1)` logits, keep the exact sums: there `x − c_hi` can round where `L` is most
/// of the output.
pub(crate) fn paired_log_softmax(m: f32, n: usize, ln_n: f64) -> bool {
    let m = m as f64;
    n >= PAIR_MIN_LEN && (m >= 2.0 * ln_n || m <= -3.0 * ln_n)
}

/// See [`paired_log_softmax`]: longer than the rows that go to the column tiles by the tile
/// (`MEDIUM_ROW_LOG32`), so only lines along another axis reach a tile with it.
pub(crate) const PAIR_MIN_LEN: usize = 256;

/// Rows whose logsumexp is certain to be at least this far from 0 take the fast pass of
/// [`lse_row`] (see [`fast_lse`]).
const FAST_LSE_MIN: f64 = 2.0;

/// logsumexp of a float32 row (`−inf` when empty); `None` when `|max| > M_LIMIT` (the caller
/// takes the f64-lane path).
///
/// Two passes after the max. Where `|lse| ≥ 2` is certain (`lse` lies in `[m, m + log n]`)
/// the terms are summed as softmax sums them, each `y` rounded to f32 (≤ 1.73u relative, see
/// the module doc) and the max entries included: `log S` is then off by at most 1.73u
/// absolute (plus ~n·2⁻⁵³ from the f64 sum), below 0.44 ULP of a result of magnitude ≥ 2, so
/// with the final rounding the result stays within 0.94 ULP (the contract is 1). That pass
/// drops the exact split of each term and the count of the max entries, 7 of the ~30
/// operations per vector. Results nearer 0, where `log S` itself must be accurate to the
/// last bit, take [`lse_sum`]. The sum pass asks for `next` as it goes.
///
/// # Safety
/// `x` readable for `n` floats.
#[inline(always)]
pub(crate) unsafe fn lse_row<S: Simd>(s: S, x: *const f32, n: usize, next: NextRow) -> Option<f64> {
    // SAFETY (both blocks): forwarded contract.
    let (m, nan) = unsafe { row_max(s, x, n) };
    if nan {
        return Some(f64::NAN);
    }
    if !m.is_finite() {
        return Some(m as f64); // +inf, or -inf for empty / all -inf rows
    }
    let shift = Shift::of(m)?;
    let ln_n = (n as f64).ln();
    let sum = if run_lse(m, n, ln_n) {
        let mut op = RunSumOp::<S>::new(s, shift);
        let mut fetching = Fetching { op: &mut op, next };
        for at in (0..n).step_by(RUN_MIN_LEN) {
            unsafe {
                for_blocks(
                    s,
                    x.add(at),
                    std::ptr::null_mut(),
                    (n - at).min(RUN_MIN_LEN),
                    &mut fetching,
                )
            };
            fetching.op.flush(s);
        }
        log_sum_one(s, op.total(s), 0.0, shift, m)
    } else if fast_lse(m, ln_n) {
        let mut op = RoundedSumOp::<S, false>::new(s, shift);
        let mut fetching = Fetching { op: &mut op, next };
        unsafe { for_blocks(s, x, std::ptr::null_mut(), n, &mut fetching) };
        log_sum_one(s, op.total(s), 0.0, shift, m)
    } else {
        let mut none = PendingWrite::NONE;
        unsafe { lse_sum(s, x, n, m, shift, next, NextRow::NONE, &mut none, false) }
    };
    Some(m as f64 + sum)
}

/// How far above the maximum of its sample (the row's first entries, [`sample_len`]) the one-pass
/// softmax puts its shift, in octaves: it moves the shift only when an entry exceeds it, so the gap
/// spares rows whose maximum lies somewhat above their first entries' the move, while every entry
/// that it clamps or leaves subnormal stays more than 150 octaves below the row's maximum, where
/// the two-pass kernel's output is 0 too (see [`OnePassOp`]). At most 39.
const ONE_PASS_GAP: i32 = 32;

/// Rows shorter than this take the two passes: the sample's maximum and the per-block test
/// cost about what the max pass saves there ((300, 128) measured ×0.85–0.90 at 128).
const ONE_PASS_MIN: usize = 256;

/// `2^e` as an f64, exactly (0 below the subnormal range); `e ≤ 1023`.
fn pow2_f64(e: i32) -> f64 {
    if e < -1074 {
        0.0
    } else if e < -1022 {
        f64::from_bits(1u64 << (e + 1074))
    } else {
        f64::from_bits(((e + 1023) as u64) << 52)
    }
}

/// softmax's pass 2 without its max pass: [`RoundedSumOp`] under a shift `K_s` taken from the
/// maximum of the row's first entries ([`sample_len`]) plus [`ONE_PASS_GAP`] octaves, with
/// each block first tested against `K_s·ln 2`. The first block with an entry above it (or
/// `+inf`) makes the pass take the max pass over the rest of the row, whose maximum is the
/// row's (the entries before stayed below the test), and move the shift there, the two-pass
/// kernel's, after scaling the sums and the `y` already in `out` by `2^{K_s − K_m}` (powers
/// of two: exact wherever the result is normal); so a row pays at most one partial max pass
/// and one rescale of what it has written (sorted rows, rows of wide scale), against the
/// whole max pass it saves on the others. A NaN or infinite entry, or a maximum beyond
/// `M_LIMIT`, ends the pass (`failed`; a NaN that the block test does not see shows in the
/// sums, see [`NAN_MARK`]), and the caller takes the two passes instead (which is why `out`
/// must not be `x`).
///
/// It returns what the two-pass kernel returns, to the bit, but for a last-bit difference in
/// the sum with probability ~2⁻¹⁰⁰: every entry keeps `K ≤ K_s ≤ K_m + 32`, so each
/// `y = 2^{K − K_s + 64}(1 + t)` is the two-pass `y` times `2^{K_m − K_s}` wherever both are normal
/// (softmax's [`pass_terms`] give `t` that does not depend on the shift), the sum and `1/S`
/// are scaled by the same power of two, and the outputs `y·(1/S)` round alike. The entries
/// where they are not normal lie more than 190 − 32 octaves below the max: both kernels
/// output 0 there, and their share of the sum (below 2⁻¹⁵⁰ relative) moves it only if it sits
/// that close to a rounding boundary.
struct OnePassOp<S: Simd> {
    sums: RoundedSumOp<S, true>,
    k_s: i32,
    limit: S::F,
    /// The row, its length, and how many entries of `out` hold `y` so far.
    x: *const f32,
    out: *mut f32,
    n: usize,
    done: usize,
    /// The row takes the two passes.
    failed: bool,
}

impl<S: Simd> OnePassOp<S> {
    /// The pass's state for the row `x` of `n ≥ BLOCK` entries; `None` when its sample
    /// holds a NaN or infinite entry or one beyond `M_LIMIT`, or only `−inf`.
    ///
    /// # Safety
    /// `x` readable for `n ≥ BLOCK` floats.
    #[inline(always)]
    unsafe fn new(s: S, x: *const f32, out: *mut f32, n: usize) -> Option<Self> {
        // SAFETY: forwarded contract (the sample is at most the row).
        let (m, nan) = unsafe { row_max(s, x, sample_len(n)) };
        if nan || !m.is_finite() || m.abs() > M_LIMIT {
            return None;
        }
        let k_s = octave_of(m) + ONE_PASS_GAP;
        Some(OnePassOp {
            sums: RoundedSumOp::new(s, Shift::at(k_s)),
            k_s,
            limit: s.fsplat(limit_of(k_s)),
            x,
            out,
            n,
            done: 0,
            failed: false,
        })
    }

    /// Whether a lane's sum holds a NaN's mark (see [`NAN_MARK`]).
    #[inline(always)]
    fn nan_marked(&self, s: S) -> bool {
        let mark = s.splat(NAN_MARK);
        let mut seen = s.none();
        for a in 0..nf::<S>() * ratio::<S>() {
            // ge is false for NaN sums: a NaN y widens to a finite mark, never to NaN.
            seen = s.or(seen, s.ge(self.sums.acc[a], mark));
        }
        s.any(seen)
    }

    /// Move the shift to `k_new` (`≥ k_s`), for good: scale the sums and the `y` in `out`.
    #[inline(always)]
    fn move_shift(&mut self, s: S, k_new: i32) {
        let drop = self.k_s - k_new;
        let factor = s.splat(pow2_f64(drop));
        for a in 0..nf::<S>() * ratio::<S>() {
            self.sums.acc[a] = s.mul(self.sums.acc[a], factor);
        }
        // 2^drop as one normal f32 factor, or two (the second 0 where every product would be);
        // `done` is a multiple of BLOCK.
        let first = drop.max(-126);
        let second = (drop - first).max(-150);
        let (f1, f2) = (
            s.fsplat(pow2_f64(first) as f32),
            s.fsplat(pow2_f64(second) as f32),
        );
        let mut i = 0;
        while i < self.done && drop < 0 {
            // SAFETY: out holds `done` floats of this row.
            unsafe {
                let p = self.out.add(i);
                let y = s.fmul(s.fload(p), f1);
                s.fstore(p, if second < 0 { s.fmul(y, f2) } else { y });
            }
            i += S::LANES32;
        }
        self.k_s = k_new;
        self.sums.lanes = LaneShift::splat(s, Shift::at(k_new));
    }
}

/// How many leading entries of a row of `n` set the one-pass shift: a 32nd of the row, at
/// least one block and at most 1024 entries, a multiple of [`BLOCK`]. Any sample gives the
/// two-pass results (the shift stays within [`ONE_PASS_GAP`] octaves above the row's maximum
/// octave); a larger one moves the shift less often: the maximum of a row's first block of 32
/// lies ~2σ above the mean of Gaussian entries, below the row's own maximum by more than the
/// gap's 22 units for σ = 10 in a large share of rows of 32000 (~4.1σ), which then took a max
/// pass over the rest of the row and rescaled what they had written. A 32nd of the row, ~3.2σ
/// for 32000, moves them rarely, and costs a 32nd more reads, from the cache. A/B float32
/// softmax `out=` on `N(0,1)·10`, both orders: (64, 32000) ×1.09–1.12 (calls alternating) and
/// ×1.02–1.20 (`ab_builds --out`), (256, 128256) ×1.18–1.19; (1, 100000) and (16, 4096)
/// unchanged (×0.89–1.12, the order effect); rows below 2048 entries sample one block as before.
fn sample_len(n: usize) -> usize {
    (n / 32).clamp(BLOCK, 1024) / BLOCK * BLOCK
}

/// `k·ln 2` as an f32: entries up to it have `K ≤ k` (the roundings of the limit and of
/// `x·log₂ e` move `x / ln 2` by at most `|k|·2⁻²³ ≤ 0.03`, far from the next `K`).
fn limit_of(k: i32) -> f32 {
    (k as f64 * std::f64::consts::LN_2) as f32
}

impl<S: Simd> OnePassOp<S> {
    /// Whether an entry of the block lies above the limit (or is `+inf`; NaN is caught by the
    /// sum instead, as `fmax` drops it).
    #[inline(always)]
    fn exceeds(&self, s: S, v: &[S::F; BLOCK]) -> bool {
        let mut top = v[0];
        for j in 1..nb::<S>() {
            top = s.fmax(v[j], top);
        }
        s.fmany(s.flt(self.limit, top))
    }

    /// Move the shift to the maximum of the row from entry `done` on, found by a max pass
    /// there; `false` (failed) on a NaN, an infinity or a maximum beyond `M_LIMIT`.
    #[inline(always)]
    fn move_to_row_max(&mut self, s: S) -> bool {
        // SAFETY: `done < n` entries of the row are behind this point.
        let (m, nan) = unsafe { row_max(s, self.x.add(self.done), self.n - self.done) };
        // A NaN seen earlier must show before the move scales its mark away.
        if nan || !m.is_finite() || m.abs() > M_LIMIT || self.nan_marked(s) {
            self.failed = true;
            return false;
        }
        self.move_shift(s, octave_of(m));
        true
    }
}

/// The row's last, partial block (padded with `−inf`), tested like the others.
impl<S: Simd> BlockOp<S> for OnePassOp<S> {
    #[inline(always)]
    unsafe fn block(&mut self, s: S, v: &[S::F; BLOCK], out: *mut f32) {
        if self.exceeds(s, v) && !self.move_to_row_max(s) {
            return;
        }
        // SAFETY: forwarded contract.
        unsafe { self.sums.block(s, v, out) };
    }
}

/// How far ahead of its stores [`one_pass_sum`] asks for its output's lines, in bytes.
const OUT_AHEAD: usize = 4096;

/// softmax of a float32 row of at least [`ONE_PASS_MIN`] entries into `out` (not `x`) by
/// [`OnePassOp`]: `Σ y` (scaled), or `None` when the row needs the two passes. The blocks are
/// tested until one exceeds the limit; the move and the untested rest follow outside that
/// loop, which keeps it as tight as [`RoundedSumOp`]'s.
///
/// In rows of up to [`SCALE_FETCH_MAX`] entries that loop asks for the output's lines
/// [`OUT_AHEAD`] bytes ahead of its stores (past the row's end: the next row's output, where
/// rows are contiguous), so that its stores find them in the cache instead of waiting on
/// their reads for ownership. float32 softmax `out=`, with and without the fetch in one build
/// (calls interleaved, two runs): (4096, 1000) ×1.04–1.07, (2048, 2000) ×1.03–1.07,
/// (1000, 4096) ×1.05, (512, 8192) ×1.11–1.13, (256, 16384) ×1.03–1.13; longer rows lost,
/// (128, 32000) ×0.75–0.81 and (64, 32000) ×0.96–0.97. 4096 bytes beat 256 and 1024 and
/// matched 8192. Two builds A/B, averaged over both orders: ×1.00–1.07 on the same shapes.
///
/// # Safety
/// `x` readable and `out` writable for `n ≥ BLOCK` floats; they do not overlap.
#[inline(always)]
unsafe fn one_pass_sum<S: Simd>(
    s: S,
    x: *const f32,
    out: *mut f32,
    n: usize,
    pending: &mut PendingWrite,
    mut next: NextRow,
) -> Option<f64> {
    if pending.n > SCALE_FETCH_MAX {
        next = NextRow::NONE;
    }
    if pending.log {
        // SAFETY: forwarded contract.
        unsafe { pending.finish(s, 0, next) };
    }
    // SAFETY: forwarded contract (the pending row is not this one's `x` or `out`).
    let Some(mut op) = (unsafe { OnePassOp::new(s, x, out, n) }) else {
        unsafe { pending.finish(s, 0, next) };
        return None;
    };
    let full = n - n % BLOCK;
    let mut i = 0;
    let mut out_lines = if n <= SCALE_FETCH_MAX {
        NextRow::strided(out.cast_const().wrapping_add(OUT_AHEAD / 4), 1)
    } else {
        NextRow::NONE
    };
    let scaled = pending.n - pending.n % BLOCK;
    let mut stopped = false;
    if scaled > 0 {
        let (inv_hi, inv_lo) = (s.fsplat(pending.hi), s.fsplat(pending.lo));
        let prev = pending.out;
        let end = full.min(scaled);
        // SAFETY (all blocks): i + BLOCK ≤ n for this row and ≤ pending.n for the other.
        while i < end {
            out_lines.fetch_step();
            next.fetch_step();
            let v = unsafe { load_block::<S>(s, x.add(i)) };
            if op.exceeds(s, &v) {
                stopped = true;
                break;
            }
            unsafe { op.sums.block(s, &v, out.add(i)) };
            let q = unsafe { load_block::<S>(s, prev.add(i)) };
            for (j, &y) in q.iter().enumerate().take(nb::<S>()) {
                let p = unsafe { prev.add(i + j * S::LANES32) };
                unsafe { s.fstore(p, times_pair(s, y, inv_hi, inv_lo)) };
            }
            i += BLOCK;
        }
    }
    // SAFETY (all blocks): n ≥ BLOCK; forwarded contract.
    while !stopped && i < full {
        out_lines.fetch_step();
        let v = unsafe { load_block::<S>(s, x.add(i)) };
        if op.exceeds(s, &v) {
            break;
        }
        unsafe { op.sums.block(s, &v, out.add(i)) };
        i += BLOCK;
    }
    // SAFETY: the pending row's entries from `i` on (or from `scaled`, past a shorter one).
    unsafe { pending.finish(s, i.min(scaled), next) };
    op.done = i;
    if i < full {
        if !op.move_to_row_max(s) {
            return None;
        }
        unsafe { for_blocks(s, x.add(i), out.add(i), n - i, &mut op.sums) };
    } else if i < n {
        unsafe { for_blocks(s, x.add(i), out.add(i), n - i, &mut op) };
        if op.failed {
            return None;
        }
    }
    (!op.nan_marked(s)).then(|| op.sums.total(s))
}

/// `2⁻⁷⁶⁹`: a lane sum of the one-pass softmax (widened, unscaled) at or above this means a NaN
/// entry: its `y` is NaN, whose exponent field of 255 [`Simd::widen_scaled`] carries into the
/// sum as `2⁻⁷⁶⁸` or more, while every other `y` is below `2^{66}` (`2⁻⁸³⁰` widened), so a
/// lane's sum of fewer than `2⁶⁰` of them stays below it.
const NAN_MARK: f64 = f64::from_bits((1023 - 769) << 52);

/// The longest rows whose one-pass softmax fetches the next row in its scale pass (64 KB):
/// that pass reads and writes the row in L1 or L2 and is short, so a longer next row would
/// arrive all at once, on top of its write-backs (A/B: rows of 4096 ×1.29, 8192 ×1.16, 16384
/// ×1.07, 32000 ×0.79–0.99).
const SCALE_FETCH_MAX: usize = 16_384;

/// softmax's pass 3: `out_i = y_i / total` (`total` = `Σ y`), `1/total` as an f32 pair, asking
/// for `next` as it goes in rows of up to [`SCALE_FETCH_MAX`].
///
/// # Safety
/// `out` readable and writable for `n` floats.
#[inline(always)]
unsafe fn scale_by_inverse<S: Simd>(s: S, out: *mut f32, n: usize, total: f64, next: NextRow) {
    let mut pending = PendingWrite::of(out, n, total);
    // SAFETY: forwarded contract.
    unsafe { pending.finish(s, 0, next) };
}

/// A row's last pass, still to run: softmax's scale pass (`out_i = y_i · (1/S)`, see
/// [`scale_by_inverse`]) after the one-pass kernel, or log_softmax's write pass
/// (`out_i = (x_i − c_hi) − c_lo`, see [`LogSoftmaxOp`]). [`softmax_row_deferring`] runs it
/// block by block inside the next row's exponential pass ([`one_pass_sum`], [`lse_sum`]),
/// whose arithmetic then hides its loads and stores of the row, in L1 or L2. Each output is
/// the same value, so the results do not change. `benches/ab_builds.py --out`, one thread:
/// - softmax, four runs in each order: (64, 32000) ×0.98–1.16 (×1.11–1.16 in three of four),
///   (4096, 1000) ×1.03–1.12, (1000, 4096) ×1.05–1.13, (256, 1000) ×1.01–1.10; single rows,
///   which defer nothing, (1, 100000) ×1.18–1.28 (the scale pass now runs from the row loop's
///   code). The fused blocks run in a loop of their own: with one loop testing per block
///   whether a pending block is left, the same change measured ×0.88–0.98.
/// - log_softmax, two runs in each order: (4096, 1000) ×1.04–1.06, (64, 32000) ×1.06,
///   (1000, 4096) ×1.07–1.16, (256, 1000) ×1.00–1.02, (1, 100000) ×0.99–1.00; with AVX2
///   ×1.01.
pub(crate) struct PendingWrite {
    /// What the pass reads: `out` itself (softmax) or the row's `x` (log_softmax).
    src: *const f32,
    out: *mut f32,
    /// 0 when there is nothing to write.
    n: usize,
    /// `1/S` (softmax) or `m + log S` (log_softmax) as an f32 pair.
    hi: f32,
    lo: f32,
    log: bool,
}

impl PendingWrite {
    /// Nothing to write.
    pub const NONE: PendingWrite = PendingWrite {
        src: std::ptr::null(),
        out: std::ptr::null_mut(),
        n: 0,
        hi: 0.0,
        lo: 0.0,
        log: false,
    };

    fn of(out: *mut f32, n: usize, total: f64) -> PendingWrite {
        let (hi, lo) = f32_pair(1.0 / total, 0.0);
        PendingWrite {
            src: out.cast_const(),
            out,
            n,
            hi,
            lo,
            log: false,
        }
    }

    /// log_softmax's write pass `out_i = (x_i − c_hi) − c_lo` (see [`LogSoftmaxOp`]).
    fn log_softmax(x: *const f32, out: *mut f32, n: usize, c_hi: f32, c_lo: f32) -> PendingWrite {
        PendingWrite {
            src: x,
            out,
            n,
            hi: c_hi,
            lo: c_lo,
            log: true,
        }
    }

    /// Write the row's entries from `from` on (asking for `next` as it goes in rows of up to
    /// [`SCALE_FETCH_MAX`]); nothing is pending after.
    ///
    /// # Safety
    /// The row (`src`, `out`, `n`) must still be readable and writable; `from` a multiple of
    /// [`BLOCK`].
    #[inline(always)]
    pub unsafe fn finish<S: Simd>(&mut self, s: S, from: usize, next: NextRow) {
        if from < self.n {
            let next = if self.n <= SCALE_FETCH_MAX {
                next
            } else {
                NextRow::NONE
            };
            let (src, out) = (self.src.wrapping_add(from), self.out.wrapping_add(from));
            let (hi, lo) = (s.fsplat(self.hi), s.fsplat(self.lo));
            // SAFETY (both blocks): forwarded contract.
            if self.log {
                let mut op = LogSoftmaxOp::<S> { c_hi: hi, c_lo: lo };
                let mut fetching = Fetching { op: &mut op, next };
                unsafe { for_blocks(s, src, out, self.n - from, &mut fetching) };
            } else {
                let mut op = ScaleOp::<S> {
                    inv_hi: hi,
                    inv_lo: lo,
                };
                let mut fetching = Fetching { op: &mut op, next };
                unsafe { for_blocks(s, src, out, self.n - from, &mut fetching) };
            }
        }
        *self = PendingWrite::NONE;
    }
}

/// softmax (or log_softmax when `log`) of a float32 row into `out` (which may equal `x`);
/// `false` when `|max| > M_LIMIT` (the caller takes the f64-lane path, which reads only `x`:
/// `out` may hold partial results then, but only when it is not `x`).
///
/// softmax rows of at least [`ONE_PASS_MIN`] entries written to another buffer skip the max
/// pass ([`one_pass_sum`]): the max pass streams the row in from L3 or memory while the exp
/// pass is bound by its arithmetic, which then hides the loads. A/B float32 softmax on
/// `N(0,1)·10` rows: (4096, 1000) ×1.05–1.35 (more when other work loads the machine),
/// (64, 32000) ×1.09–1.25, (1000, 4096) ×1.17, rows that stay in L2 such as (1, 100000)
/// ×0.97–1.03; sorted rows and rows of `N(0,1)·100`, which move the shift early and so take a
/// max pass over most of the row anyway, (4096, 1000) ×0.89–0.93 and (64, 32000) ×1.00–1.07.
/// In place, the two passes run, so that a row with a NaN, an infinity or an entry beyond
/// `M_LIMIT` found late can start over from `x`.
///
/// # Safety
/// `x` readable and `out` writable for `n` floats; equal or not overlapping.
#[inline(always)]
pub(crate) unsafe fn softmax_row<S: Simd>(
    s: S,
    x: *const f32,
    out: *mut f32,
    n: usize,
    log: bool,
    next: NextRow,
) -> bool {
    let mut pending = PendingWrite::NONE;
    // SAFETY (both blocks): forwarded contract.
    let done = unsafe { softmax_row_deferring(s, x, out, n, log, next, &mut pending) };
    let next = if log { NextRow::NONE } else { next };
    unsafe { pending.finish(s, 0, next) };
    done
}

/// [`softmax_row`] for a loop over rows: first `pending` (the previous row's last pass, run
/// inside this row's exponential pass where this row takes the one-pass softmax kernel or
/// log_softmax's sum pass, before it otherwise, or later where the row takes neither), then
/// this row, whose last pass it leaves in `pending` when it took one of those. The caller runs
/// the last row's with [`PendingWrite::finish`].
///
/// # Safety
/// As [`softmax_row`]; the pending row must not overlap this row's `x` or `out`.
#[inline(always)]
pub(crate) unsafe fn softmax_row_deferring<S: Simd>(
    s: S,
    x: *const f32,
    out: *mut f32,
    n: usize,
    log: bool,
    next: NextRow,
    pending: &mut PendingWrite,
) -> bool {
    if n == 0 {
        return true;
    }
    if !log && n >= ONE_PASS_MIN && !std::ptr::eq(x, out) {
        // SAFETY: forwarded contract; `out` is not `x`, and the caller's buffers do not
        // overlap otherwise. one_pass_sum finishes `pending` whatever it returns.
        if let Some(total) = unsafe { one_pass_sum(s, x, out, n, pending, next) } {
            *pending = PendingWrite::of(out, n, total);
            return true;
        }
    } else if !log {
        // SAFETY: forwarded contract.
        unsafe { pending.finish(s, 0, NextRow::NONE) };
    }
    // SAFETY (all blocks): forwarded contract.
    let (m, nan) = unsafe { row_max(s, x, n) };
    if !m.is_finite() || nan {
        unsafe { super::rows::special_row(x, out, n, m as f64, nan, log) };
        return true;
    }
    let Some(shift) = Shift::of(m) else {
        return false;
    };
    if log {
        let own = NextRow::own_output(x, out);
        // The length first: no logarithm for the rows too short to pair.
        let paired = n >= PAIR_MIN_LEN && paired_log_softmax(m, n, (n as f64).ln());
        let sum = unsafe { lse_sum(s, x, n, m, shift, next, own, pending, paired) };
        // m + log S as an f64 pair first: log S may be far below ulp(m).
        let (c, c_err) = two_sum(m as f64, sum);
        let (c_hi, c_lo) = f32_pair(c, c_err);
        *pending = PendingWrite::log_softmax(x, out, n, c_hi, c_lo);
    } else {
        // The rounded y wait in `out` (each element is read before it is written).
        let mut op = RoundedSumOp::<S, true>::new(s, shift);
        let mut fetching = Fetching { op: &mut op, next };
        unsafe { for_blocks(s, x, out, n, &mut fetching) };
        unsafe { scale_by_inverse(s, out, n, op.total(s), NextRow::NONE) };
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{dispatch, Isa, WithSimd};

    struct LseRow<'a>(&'a [f32]);

    impl WithSimd for LseRow<'_> {
        type Output = Option<f64>;
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) -> Option<f64> {
            // SAFETY: the slice is readable for its length.
            unsafe { lse_row(s, self.0.as_ptr(), self.0.len(), NextRow::NONE) }
        }
    }

    /// `1 + t` of 16 entries of a row with maximum `m` by [`run_terms`].
    struct RunTerms<'a>(&'a [f32; VLANES], f32);

    impl WithSimd for RunTerms<'_> {
        type Output = [f64; VLANES];
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) -> Self::Output {
            let lanes = LaneShift::splat(s, Shift::of(self.1).unwrap());
            let mut v = [s.fsplat(0.0); VLANES];
            for j in 0..nf::<S>() {
                // SAFETY: the array holds VLANES floats.
                v[j] = unsafe { s.fload(self.0.as_ptr().add(j * S::LANES32)) };
            }
            let t = run_terms::<S, VLANES>(s, &v, nf::<S>(), &lanes).0;
            let mut out = [0.0f32; VLANES];
            for j in 0..nf::<S>() {
                // SAFETY: as above.
                unsafe { s.fstore(out.as_mut_ptr().add(j * S::LANES32), t[j]) };
            }
            out.map(|t| 1.0 + t as f64)
        }
    }

    /// [`run_terms`]' bias is the documented `e^{j·|LN2_LO|}` for a term `j` octaves below the
    /// max: over 1600 entries per level, the mean ratio of `1 + t` to the exact
    /// `e^{x − K_m·LN2_HI}/2^{K−K_m}` (in f64) is `1 + j·|LN2_LO|` within 2% (the single ratios
    /// scatter by `t`'s rounding and the polynomial's error, ~2⁻²⁵).
    #[test]
    fn run_terms_are_biased_by_their_distance_from_the_max() {
        let ln2 = std::f64::consts::LN_2;
        let ln2_hi = LN2_HI as f64;
        let ln2_lo = (ln2 - ln2_hi).abs();
        for m in [0.3f32, 9.0, -20.0] {
            let k_m = Shift::of(m).unwrap().k_m as f64;
            for j in [30.0, 90.0, 150.0, 188.0] {
                let x: Vec<f32> = (0..1600)
                    .map(|i| ((k_m - j + 0.98 * (i as f64 / 1600.0 - 0.5)) * ln2) as f32)
                    .collect();
                let exact: Vec<f64> = x
                    .iter()
                    .map(|&x| {
                        let k = (x as f64 / ln2).round();
                        assert_eq!(k, k_m - j);
                        (x as f64 - k_m * ln2_hi - (k - k_m) * ln2).exp()
                    })
                    .collect();
                for isa in Isa::supported() {
                    let mut sum = 0.0;
                    for (xs, exact) in x.chunks_exact(VLANES).zip(exact.chunks_exact(VLANES)) {
                        let terms = dispatch(isa, RunTerms(xs.try_into().unwrap(), m));
                        sum += (0..VLANES).map(|i| terms[i] / exact[i] - 1.0).sum::<f64>();
                    }
                    let mean = sum / x.len() as f64;
                    let want = j * ln2_lo;
                    assert!(
                        (mean - want).abs() <= 0.02 * want,
                        "{isa:?} m={m} j={j}: {mean:e} vs {want:e}"
                    );
                }
            }
        }
    }

    /// The f32 runs on rows built for the largest bias of [`run_terms`]: one max entry and the
    /// other `n − 1` near the level `j` octaves below that maximises the weighted mean of the
    /// `j`, each about as heavy as its level allows, and the max entry as light as it can be.
    /// `log S` (the result before its rounding to f32, against an f64 reference) stays within
    /// the bound of [`RunSumOp`] (6.5u, with 2u for the f64 parts and the reference).
    #[test]
    fn run_sums_within_their_bound_where_the_bias_is_largest() {
        let u = f64::powi(2.0, -24);
        let ln2 = std::f64::consts::LN_2;
        for n in [128usize, 1000, 4099, 1 << 16] {
            let ln_n = (n as f64).ln();
            let weight = |j: f64| 2.0 * (n - 1) as f64 * (-j * ln2).exp();
            let mean = |j: usize| weight(j as f64) * j as f64 / (1.0 + weight(j as f64));
            let worst = (0..64)
                .max_by(|&a, &b| mean(a).total_cmp(&mean(b)))
                .unwrap() as f64;
            // Rows above +8 and below −8 − ln n; K_m·ln 2 − 0.34 makes the max entry light.
            for k_m in [13.0, 14.0, 40.0, -12.0 - (ln_n / ln2).ceil(), -40.0] {
                let m = (k_m * ln2 - 0.34) as f32;
                for j in [worst - 1.0, worst, worst + 1.0] {
                    for frac in [0.3, 0.42, 0.49] {
                        let mut x: Vec<f32> = (0..n)
                            .map(|i| ((k_m - j + frac - 0.01 * (i % 7) as f64) * ln2) as f32)
                            .collect();
                        x[n / 3] = m;
                        assert!(run_lse(m, n, ln_n), "the row must take the f32 runs");
                        let s: f64 = x.iter().map(|&v| (v as f64 - m as f64).exp()).sum();
                        let want = m as f64 + s.ln();
                        for isa in Isa::supported() {
                            let got = dispatch(isa, LseRow(&x)).unwrap();
                            let err = (got - want) / u;
                            assert!(err.abs() <= 8.5, "{isa:?} n={n} m={m} j={j}: {err}u");
                        }
                    }
                }
            }
        }
    }
}
