//! Vector `exp` in f32 lanes, written once over [`Simd`]: twice the lanes of the f64 version,
//! for the float32 kernels.
//!
//! `e^x = 2^k · (1 + t)`, `k = round(x / ln 2)`, `r = x − k·ln 2` split as `r_hi + r_lo`,
//! `t = r_hi + r_hi²·p(r_hi) + r_lo·e^{r_hi}`. Keeping the leading `r_hi` out of the polynomial
//! product makes `t` accurate to ~2⁻²⁶ absolute; kernels then use `(1 + t)` unrounded (widened
//! to f64) or round once.
//!
//! Contract:
//!
//! | function | dtypes | max error | valid range |
//! |---|---|---|---|
//! | [`exp32_f32`] | f32 | ≤ 1 ULP (proven by the exhaustive test over all 2³² inputs) | all f32; `x > 88.73 → inf`, `x < −103.98 → 0`, NaN → NaN |
//!
//! Reduction: `k·ln2_hi` is exact under FMA and `x − k·ln2_hi` is exact for |x| ≤ 128 (the
//! result has bits no finer than ln2_hi's last bit, 2⁻²⁴); the rounding error of subtracting
//! `k·ln2_lo` is kept in `r_lo`, with the caller's low part (softmax's `x − max` by TwoSum).
//!
//! Polynomial: `p` of degree 4, a near-minimax fit (see `P`): 2⁻²⁸ relative to `e^r`.

use crate::simd::{Simd, WithSimd};

/// `1.5 · 2^23`: adding it rounds a float to an integer and leaves it in the low mantissa bits.
pub const MAGIC32: f32 = 12_582_912.0;
pub(crate) const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// `ln 2` rounded to f32.
pub(crate) const LN2_HI: f32 = std::f32::consts::LN_2;
/// `ln 2 − LN2_HI`.
const LN2_LO: f32 = -1.904_654_3e-9;
/// Arguments are clamped here: `k + 64 ≥ −109` keeps `2^(k+64)` normal, and `e^x` is 0 in f32.
pub const X_LOW: f32 = -120.0;
/// `e^x` overflows f32 above 88.73.
const X_HIGH: f32 = 89.0;

/// `p(r)` with `e^r ≈ 1 + r + r²·p(r)` on |r| ≤ ln2/2, highest degree first (Horner order): a
/// near-minimax fit with float32 coefficients, max relative error 2⁻²⁸·⁰ (computed and checked
/// in exact arithmetic by `tools/fit_exp32_poly.py`).
const P: [f32; 5] = [
    0.001_375_140_7,
    0.008_368_916,
    0.041_669_533,
    0.166_665_18,
    0.499_999_88,
];

/// `e^x` as `2^k · (1 + t0 + c)` in f32 lanes.
#[derive(Clone, Copy)]
pub struct Exp32Parts<F> {
    /// `e^{r_hi} − 1`, |t0| ≤ 0.415.
    pub t0: F,
    /// The correction `r_lo · e^{r_hi}` (tiny next to `t0`).
    pub c: F,
    /// `k + MAGIC32`: feed to [`Simd::fpow2_from_magic`].
    pub k_magic: F,
}

impl<F: Copy> Exp32Parts<F> {
    /// `t = t0 + c` rounded once: enough where `1 + t` is then used exactly (widened to f64).
    #[inline(always)]
    pub fn t<S: Simd<F = F>>(&self, s: S) -> F {
        s.fadd(self.t0, self.c)
    }
}

/// Split `e^(x_hi + x_lo)`; `x_hi ≤ 89` (larger values must be clamped by the caller), `x_lo`
/// tiny next to `ulp(x_hi)` or NaN/−1 for a `−inf` `x_hi` (it is dropped when `x_hi` is
/// clamped).
#[inline(always)]
pub fn exp32_parts<S: Simd>(s: S, x_hi: S::F, x_lo: S::F) -> Exp32Parts<S::F> {
    // Operand order keeps NaN: fmax returns the second operand when either is NaN.
    let x = s.fmax(s.fsplat(X_LOW), x_hi);
    let x_lo = s.fkeep(s.feq(x, x_hi), x_lo);
    let (t0, c, k_magic) = exp32_reduced_n::<S, 1>(s, &[x], Some(&[x_lo]), 1);
    Exp32Parts {
        t0: t0[0],
        c: c[0],
        k_magic: k_magic[0],
    }
}

/// `(t0, c, k_magic)` for `N` vectors, as in [`Exp32Parts`].
pub type Exp32Lanes<F, const N: usize> = ([F; N], [F; N], [F; N]);

/// `e^(x + x_lo) = 2^k · (1 + t0 + c)` for the first `count` of `N` vectors, each step applied
/// to all of them before the next: one vector's chain is about 20 dependent operations, and
/// interleaving several keeps the FMA units busy (measured 1.3–1.5× on AVX2 for 4 vectors).
/// Returns `(t0, c, k_magic)` as in [`Exp32Parts`].
///
/// Valid for finite `|x| ≤ 2¹⁷` (the caller bounds it; the exponent `k` is the caller's to
/// scale): the reduction `x − k·ln2_hi` is exact there, because both terms are multiples of
/// 2⁻²⁴ (2⁻²⁵ below 0.5) and the difference is below 0.36; `k·ln2_lo` is kept to 2⁻³⁵.
#[inline(always)]
pub fn exp32_reduced_n<S: Simd, const N: usize>(
    s: S,
    x: &[S::F; N],
    x_lo: Option<&[S::F; N]>,
    count: usize,
) -> Exp32Lanes<S::F, N> {
    let magic = s.fsplat(MAGIC32);
    let mut k_magic = *x;
    let mut k = *x;
    let mut r1 = *x;
    let mut r_hi = *x;
    let mut r_lo = *x;
    let mut p = *x;
    let mut t0 = *x;
    let mut c = *x;
    for j in 0..count {
        k_magic[j] = s.ffma(x[j], s.fsplat(LOG2_E), magic);
    }
    for j in 0..count {
        k[j] = s.fsub(k_magic[j], magic);
    }
    for j in 0..count {
        r1[j] = s.ffma(k[j], s.fsplat(-LN2_HI), x[j]); // exact
    }
    for j in 0..count {
        r_hi[j] = s.ffma(k[j], s.fsplat(-LN2_LO), r1[j]);
    }
    for j in 0..count {
        r_lo[j] = s.ffma(k[j], s.fsplat(-LN2_LO), s.fsub(r1[j], r_hi[j]));
        if let Some(lo) = x_lo {
            r_lo[j] = s.fadd(r_lo[j], lo[j]);
        }
    }
    for pj in p.iter_mut().take(count) {
        *pj = s.fsplat(P[0]);
    }
    for &coef in &P[1..] {
        for j in 0..count {
            p[j] = s.ffma(p[j], r_hi[j], s.fsplat(coef));
        }
    }
    for j in 0..count {
        t0[j] = s.ffma(s.fmul(r_hi[j], r_hi[j]), p[j], r_hi[j]);
    }
    // e^(r_hi + r_lo) − 1 = t0 + r_lo·(1 + t0) + O(r_lo²).
    for j in 0..count {
        c[j] = s.ffma(r_lo[j], t0[j], r_lo[j]);
    }
    (t0, c, k_magic)
}

/// `(t, k_magic)` for `N` vectors, as in [`exp32_shifted_n`].
pub type ShiftedLanes<F, const N: usize> = ([F; N], [F; N]);

/// How [`exp32_shifted_n`] takes the low part `LN2_LO` of `K·ln 2` into its reduced argument.
pub mod ln2_lo {
    /// `(K − K_m)·LN2_LO`: exact relative to the row's `K_m·LN2_HI` (logsumexp and
    /// log_softmax, which convert back with `e^{K_m·LN2_HI − m}`).
    pub const RELATIVE: u8 = 0;
    /// `K·LN2_LO`: `t` depends on `x` alone, not on the shift, so rows shifted by different
    /// `K_m` give the same `1 + t` (softmax, whose one-pass row kernel moves its shift).
    pub const ABSOLUTE: u8 = 1;
    /// Left out (the f32 runs of logsumexp, whose results have room for the bias).
    pub const NONE: u8 = 2;
}

/// `e^{x − K_m·LN2_HI} = 2^{K − K_m}·(1 + t)` for the first `count` of `N` vectors (the
/// shifted kernels' exponential): vector `j` belongs to the lanes `j % lanes` of `k_mm`, which
/// holds `MAGIC32 + K_m` per lane. Returns `t` and `k_magic = MAGIC32 + K` (for
/// [`Simd::fpow2_from_magic_lanes`]).
///
/// Valid for finite `x` with `|x| ≤ 2¹⁷` and `K_m − 192 ≤ K ≤ K_m` (the caller clamps `x`
/// below and never passes more than its row maximum). With [`ln2_lo::RELATIVE`] the reduction
/// `r = (x − K·LN2_HI) − (K − K_m)·LN2_LO` rounds once: `x − K·LN2_HI` is exact (as in
/// [`exp32_reduced_n`]) and `(K − K_m)·LN2_LO` is an exact product, so the only roundings are
/// that of `r` (≤ 2⁻²⁶ relative to `e^r`) and of `t = r + r²p(r)` (≤ 2⁻²⁶ absolute), beside
/// the polynomial's 2⁻²⁸. The remaining `K_m·LN2_LO` is the same for every lane of a row: it
/// is left out here, so `1 + t` is `e^{x − K_m·LN2_HI}/2^{K−K_m}` and callers that need
/// `e^{x − m}` convert with `e^{K_m·LN2_HI − m}` (exact `K_m·LN2_HI` in f64).
///
/// With [`ln2_lo::ABSOLUTE`] it is `r = (x − K·LN2_HI) − K·LN2_LO`, also rounded once (`k_mm`
/// is not read): `1 + t` is `e^{x − K·(LN2_HI + LN2_LO)}`, whose factor
/// `e^{K·(ln 2 − LN2_HI − LN2_LO)}` against `e^{x − K·ln 2}` is common to a row but for
/// `e^{(K − K_m)·2⁻⁵³}` (≤ 2⁻⁴⁵ relative over the 192 octaves kept): softmax divides it away.
/// `|K·LN2_LO| ≤ 3.6·10⁻⁴` for `|x| ≤ 2¹⁷`, so `|r|` stays within the polynomial's range as in
/// [`exp32_reduced_n`], which reduces the same way. One operation fewer than `RELATIVE`.
///
/// Compared with [`exp32_reduced_n`] this drops the split `r_hi + r_lo` and its correction:
/// 4 fewer operations and a dependency chain about 15 cycles shorter per vector.
///
/// With [`ln2_lo::NONE`] the reduction stops at `r = x − K·LN2_HI` (exact, so `t` then
/// carries only its own rounding and the polynomial's error), 2 fewer operations per vector:
/// `1 + t` is then `e^{x − K_m·LN2_HI}/2^{K−K_m}` times `e^{(K_m − K)·|LN2_LO|}`, a bias of
/// `(K_m − K)·2⁻²⁸·⁹⁷` relative that grows with the term's distance below the max while its
/// weight halves per step: over a sum that includes its max entry it stays below
/// `log₂ n · 2⁻²⁸·⁹⁷` relative (see `rows32::run_terms`).
#[inline(always)]
pub fn exp32_shifted_n<S: Simd, const N: usize, const LO_TERM: u8>(
    s: S,
    x: &[S::F; N],
    count: usize,
    k_mm: &[S::F],
) -> ShiftedLanes<S::F, N> {
    let lanes = k_mm.len();
    let magic = s.fsplat(MAGIC32);
    let mut k_magic = *x;
    let mut r = *x;
    let mut r2 = *x;
    let mut p = *x;
    let mut t = *x;
    for j in 0..count {
        k_magic[j] = s.ffma(x[j], s.fsplat(LOG2_E), magic);
    }
    for j in 0..count {
        let k = s.fsub(k_magic[j], magic);
        let r1 = s.ffma(k, s.fsplat(-LN2_HI), x[j]); // exact
        r[j] = match LO_TERM {
            ln2_lo::RELATIVE => {
                let k_rel = s.fsub(k_magic[j], k_mm[j % lanes]); // K − K_m, exact
                s.ffma(k_rel, s.fsplat(-LN2_LO), r1)
            }
            ln2_lo::ABSOLUTE => s.ffma(k, s.fsplat(-LN2_LO), r1),
            _ => r1,
        };
    }
    for j in 0..count {
        r2[j] = s.fmul(r[j], r[j]);
    }
    // Estrin's scheme: p = (P4 + P3·r) + r²·((P2 + P1·r) + r²·P0), two levels instead of
    // Horner's four dependent steps.
    for j in 0..count {
        let lo = s.ffma(s.fsplat(P[3]), r[j], s.fsplat(P[4]));
        let mid = s.ffma(s.fsplat(P[1]), r[j], s.fsplat(P[2]));
        let hi = s.ffma(s.fsplat(P[0]), r2[j], mid);
        p[j] = s.ffma(hi, r2[j], lo);
    }
    for j in 0..count {
        t[j] = s.ffma(r2[j], p[j], r[j]);
    }
    (t, k_magic)
}

/// `e^x` rounded once to f32 (the standalone kernel; scales `2^k` in two normal steps).
#[inline(always)]
pub fn exp32_v<S: Simd>(s: S, x: S::F) -> S::F {
    // min(x, X_HIGH) keeping NaN: fmin returns the second operand when either is NaN.
    let x = s.fmin(s.fsplat(X_HIGH), x);
    let p = exp32_parts(s, x, s.fsplat(0.0));
    let magic = s.fsplat(MAGIC32);
    let k = s.fsub(p.k_magic, magic);
    let ka = s.fmin(s.fsplat(100.0), s.fmax(s.fsplat(-100.0), k));
    let kb = s.fsub(k, ka);
    let pa = s.fpow2_from_magic(s.fadd(ka, magic), 0);
    let pb = s.fpow2_from_magic(s.fadd(kb, magic), 0);
    // 1 + t0 + c with one rounding: Fast2Sum of 1 + t0 (|t0| < 1) keeps its error in `lo`.
    let one = s.fsplat(1.0);
    let hi = s.fadd(one, p.t0);
    let lo = s.fadd(s.fsub(one, hi), p.t0);
    let y = s.fadd(hi, s.fadd(lo, p.c));
    // Rounding y·2^kb·2^ka happens once more in the subnormal range only, where y's error is
    // far below the subnormal ULP.
    s.fmul(s.fmul(y, pb), pa)
}

struct Exp32Slice<'a> {
    x: &'a [f32],
    out: &'a mut [f32],
}

impl WithSimd for Exp32Slice<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let n = self.x.len();
        let body = n - n % S::LANES32;
        let (xp, op) = (self.x.as_ptr(), self.out.as_mut_ptr());
        let mut i = 0;
        while i < body {
            // SAFETY: i + LANES32 <= n for both slices.
            unsafe { s.fstore(op.add(i), exp32_v(s, s.fload(xp.add(i)))) };
            i += S::LANES32;
        }
        for j in body..n {
            let mut lane = [0.0f32; 16];
            // SAFETY: `lane` holds 16 >= LANES32 floats.
            unsafe { s.fstore(lane.as_mut_ptr(), exp32_v(s, s.fsplat(self.x[j]))) };
            self.out[j] = lane[0];
        }
    }
}

/// `out[i] = e^x[i]` with the f32-lane kernel (≤ 1 ULP), on the active SIMD path.
///
/// # Panics
/// If the slices differ in length.
pub fn exp32_f32(x: &[f32], out: &mut [f32]) -> Result<(), String> {
    let isa = crate::simd::active_isa()?;
    exp32_on(isa, x, out);
    Ok(())
}

/// [`exp32_f32`] on a given ISA.
///
/// # Panics
/// If the slices differ in length.
pub fn exp32_on(isa: crate::simd::Isa, x: &[f32], out: &mut [f32]) {
    assert_eq!(x.len(), out.len(), "exp: input and output lengths differ");
    crate::simd::dispatch(isa, Exp32Slice { x, out });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::Isa;

    fn sweep(isa: Isa, stride: u64) -> (f64, u32) {
        crate::math::sweep::sweep_exp_f32(stride, |x, out| exp32_on(isa, x, out))
    }

    #[test]
    fn exp32_within_one_ulp_sampled() {
        for isa in Isa::supported() {
            let (worst, at) = sweep(isa, 61);
            assert!(
                worst <= 1.0,
                "{isa:?}: {worst} ULP at {:e}",
                f32::from_bits(at)
            );
        }
    }

    /// All 2^32 inputs: `make test-exhaustive` (release mode, a few minutes on 2 cores).
    #[test]
    #[ignore = "exhaustive: run with `cargo test --release -- --ignored exhaustive`"]
    fn exp32_exhaustive() {
        for isa in Isa::supported() {
            let (worst, at) = sweep(isa, 1);
            println!(
                "exp32 {}: max {worst:.6} ULP at {:e}",
                isa.name(),
                f32::from_bits(at)
            );
            assert!(
                worst <= 1.0,
                "{isa:?}: {worst} ULP at {:e}",
                f32::from_bits(at)
            );
        }
    }

    #[test]
    fn exp32_special_values() {
        for isa in Isa::supported() {
            let xs = [
                f32::NAN,
                f32::INFINITY,
                f32::NEG_INFINITY,
                89.0,
                -104.0,
                0.0,
                -0.0,
                88.7,
            ];
            let mut out = [0.0f32; 8];
            exp32_on(isa, &xs, &mut out);
            assert!(out[0].is_nan());
            assert_eq!(
                &out[1..7],
                &[f32::INFINITY, 0.0, f32::INFINITY, 0.0, 1.0, 1.0]
            );
            assert!(out[7].is_finite() && out[7] > 3e38);
        }
    }
}

#[cfg(test)]
mod timing {
    #[test]
    #[ignore = "timing probe"]
    fn exp32_throughput() {
        let x: Vec<f32> = (0..4_000_000)
            .map(|i| -((i % 1000) as f32) * 0.05)
            .collect();
        let mut out = vec![0.0f32; x.len()];
        for isa in crate::simd::Isa::supported() {
            let t = std::time::Instant::now();
            for _ in 0..20 {
                super::exp32_on(isa, &x, &mut out);
            }
            let ns = t.elapsed().as_nanos() as f64 / 20.0 / x.len() as f64;
            println!("exp32 {}: {ns:.3} ns/element", isa.name());
            let t = std::time::Instant::now();
            for _ in 0..20 {
                crate::math::exp::exp_slice_on(isa, &x, &mut out);
            }
            let ns = t.elapsed().as_nanos() as f64 / 20.0 / x.len() as f64;
            println!("exp (f64 lanes) for f32 {}: {ns:.3} ns/element", isa.name());
        }
    }
}
