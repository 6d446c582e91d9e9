//! Vector `exp`, written once over [`Simd`]: reduce, approximate, reconstruct.
//!
//! `e^x = 2^k · (1 + t)`, with `k = round(x / ln 2)`, `r = x − k·ln 2` (|r| ≤ ln2/2) and
//! `t = e^r − 1` from a Taylor polynomial. Kernels keep `t` and `k` apart (see [`ExpParts`]) so
//! that softmax can divide before rounding; [`exp_f32`] / [`exp_f64`] round once at the end.
//!
//! Contract:
//!
//! | function | dtypes | max error | valid range |
//! |---|---|---|---|
//! | [`exp_f64`] (degree 13) | f64 | ≤ 1 ULP (subnormal results included) | all f64; `x > 709.78 → inf`, `x < −745.14 → 0`, NaN → NaN |
//! | [`exp_f32`] (computed in f64, degree 9) | f32 | ≤ 0.501 ULP (so ≤ 1 ULP; proven by the exhaustive test over all 2³² inputs) | all f32; `x > 88.73 → inf`, `x < −103.98 → 0` |
//!
//! Reduction: `k·ln2_hi` is exact under FMA and `x − k·ln2_hi` is exact (|result| < 0.5 with
//! bits no finer than ln2_hi's last bit); the rounding error of subtracting `k·ln2_lo` is kept
//! as `r_lo` and added linearly, so `r` is carried to ~2⁻¹⁰⁵. A caller that knows its argument
//! to more than double precision (softmax's `x − max`, computed by TwoSum) passes the low part.
//!
//! Polynomial: `e^r − 1 = r + r²·q(r)`, `q` with Taylor coefficients `1/j!` (the high-order
//! part by Estrin's scheme, the last two steps by Horner); the exact leading `r` stays out of
//! the rounded product (see [`exp_reduced_n`]). The truncation error at |r| ≤ ln2/2 is
//! `r^{N+1}/(N+1)! · e^r` = 5.8e-18 (0.05 ULP) for N = 13 and 9.8e-12 (2⁻³⁶·⁶) for N = 9.
//!
//! Reconstruction: `2^k` is split as `2^ka · 2^kb` with `ka` clamped to [−1020, 1020], so both
//! factors are normal; multiplying by the small factor first keeps the product exact until the
//! last multiply, which rounds once, also into the subnormal range.

use crate::simd::Simd;

/// `1.5 · 2^52`: adding it rounds a double to an integer (ties to even) and leaves that integer
/// in the low mantissa bits.
pub const MAGIC: f64 = 6_755_399_441_055_744.0;
const LOG2_E: f64 = std::f64::consts::LOG2_E;
/// `ln 2` rounded to double.
const LN2_HI: f64 = std::f64::consts::LN_2;
/// `ln 2 − LN2_HI`.
pub const LN2_LO: f64 = 2.319_046_813_846_299_6e-17;
/// Below this `e^x` rounds to 0 in f64 (`ln(2^-1075) = −745.13`).
const X_LOW: f64 = -746.0;
/// Above this `e^x` overflows f64 (`ln(f64::MAX) = 709.78`).
const X_HIGH: f64 = 710.0;

/// `1/j!` for `j = 4..=13`, lowest degree first: the high part `H` of
/// `q(r) = 1/2! + r/3! + r²·H(r)` (`e^r = 1 + r + r²·q(r)`), evaluated by Estrin's scheme
/// (short dependency chains); the two low-order steps stay Horner.
const HIGH_13: [f64; 10] = [
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5_040.0,
    1.0 / 40_320.0,
    1.0 / 362_880.0,
    1.0 / 3_628_800.0,
    1.0 / 39_916_800.0,
    1.0 / 479_001_600.0,
    1.0 / 6_227_020_800.0,
];
/// `1/j!` for `j = 4..=9`, lowest degree first (see [`HIGH_13`]).
const HIGH_9: [f64; 6] = [
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5_040.0,
    1.0 / 40_320.0,
    1.0 / 362_880.0,
];

/// `q(r)` of degree 4 for `e^r = 1 + r + r²·q(r)` on `|r| ≤ 0.02167` (just above ln2/32, the
/// reduction of [`exp_shifted_table_n`]), lowest degree first, fitted: 2⁻⁵⁶·²⁵
/// relative with these coefficients, in exact arithmetic over 20001 points (Lawson's iteration
/// of weighted least squares in 60 digits for the least maximum relative error of
/// `1 + r + r²·q(r)` against `e^r`).
const SIXTEENTHS_Q: [f64; 5] = [
    0.499_999_999_999_996_06,
    0.166_666_666_644_140_93,
    0.041_666_666_693_297_126,
    0.008_333_472_039_645_653,
    0.001_388_859_378_426_888_2,
];

/// `Σ a[i]·x^i` by Estrin's scheme (at most 16 coefficients): pairs `a[2i] + a[2i+1]·x`,
/// then pairs of those with `x²`, `x⁴`, `x⁸`; depth ~log₂ of the degree instead of the degree.
#[inline(always)]
pub(crate) fn estrin<S: Simd>(s: S, a: &[f64], x: S::V) -> S::V {
    debug_assert!(!a.is_empty() && a.len() <= 16);
    let mut v = [s.splat(0.0); 8];
    let mut len = a.len().div_ceil(2);
    for i in 0..len {
        v[i] = if 2 * i + 1 < a.len() {
            s.fma(s.splat(a[2 * i + 1]), x, s.splat(a[2 * i]))
        } else {
            s.splat(a[2 * i])
        };
    }
    let mut p = s.mul(x, x);
    while len > 1 {
        let half = len.div_ceil(2);
        for i in 0..half {
            v[i] = if 2 * i + 1 < len {
                s.fma(v[2 * i + 1], p, v[2 * i])
            } else {
                v[2 * i]
            };
        }
        len = half;
        if len > 1 {
            p = s.mul(p, p);
        }
    }
    v[0]
}

/// `q(r)` with `e^r = 1 + r + r²·q(r)`: `1/2 + r/6 + r²·H(r)`, `H` by Estrin's scheme from
/// its coefficients `high` ([`HIGH_13`] or [`HIGH_9`]), the two low-order steps Horner.
#[inline(always)]
fn quadratic_factor<S: Simd>(s: S, high: &[f64], r: S::V) -> S::V {
    quadratic_factor_from(s, [0.5, 1.0 / 6.0], high, r)
}

/// `low[0] + low[1]·r + r²·H(r)`, `H` by Estrin's scheme from `high`, the two low-order steps
/// Horner.
#[inline(always)]
fn quadratic_factor_from<S: Simd>(s: S, low: [f64; 2], high: &[f64], r: S::V) -> S::V {
    let q = s.fma(estrin(s, high, r), r, s.splat(low[1]));
    s.fma(q, r, s.splat(low[0]))
}

/// Polynomial degree used for results delivered as f64 (`FULL`) or as f32 (`SHORT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Degree {
    /// Degree 13: f64 results.
    Full,
    /// Degree 9: results that end as f32.
    Short,
}

/// `e^x` as `2^k · (1 + t)`, with `2^k` kept as two normal factors.
#[derive(Clone, Copy)]
pub struct ExpParts<V> {
    /// `e^r − 1`, |t| ≤ 0.415.
    pub t: V,
    /// `2^ka`, ka in [−1020, 1020].
    pub pow_a: V,
    /// `2^kb`, kb = k − ka in [−57, 5].
    pub pow_b: V,
}

impl<V: Copy> ExpParts<V> {
    /// `v · 2^k`, rounded once.
    #[inline(always)]
    pub fn scale<S: Simd<V = V>>(&self, s: S, v: V) -> V {
        s.mul(s.mul(v, self.pow_b), self.pow_a)
    }
}

/// Split `e^(x_hi + x_lo)` into [`ExpParts`]. `x_lo` must be finite and tiny next to
/// `ulp(x_hi)` (or zero). NaN in `x_hi` gives NaN in `t`.
#[inline(always)]
pub fn exp_parts<S: Simd>(s: S, x_hi: S::V, x_lo: S::V, degree: Degree) -> ExpParts<S::V> {
    // Operand order keeps NaN: max/min return the second operand when either is NaN.
    let x = s.min(s.splat(X_HIGH), s.max(s.splat(X_LOW), x_hi));
    // A clamped argument is far outside the range, and its low part (which can be huge there,
    // e.g. −1e300 − 3) must not leak into the polynomial.
    let x_lo = s.select(s.eq(x, x_hi), x_lo, s.splat(0.0));
    let (t_hi, t_lo, k_magic) = exp_reduced_n::<S, 1>(s, &[x], Some(&[x_lo]), degree, 1);
    let t = s.add(t_hi[0], t_lo[0]);
    let magic = s.splat(MAGIC);
    let kf = s.sub(k_magic[0], magic);
    let ka = s.min(s.splat(1020.0), s.max(s.splat(-1020.0), kf));
    let kb = s.sub(kf, ka);
    ExpParts {
        t,
        pow_a: s.pow2_from_magic(s.add(ka, magic)),
        pow_b: s.pow2_from_magic(s.add(kb, magic)),
    }
}

/// `(t_hi, t_lo, k_magic)` for `N` vectors: `e^x = 2^k (1 + t_hi + t_lo)` with `k_magic = k +
/// MAGIC` (see [`Simd::pow2_from_magic`]).
pub type ExpLanes<V, const N: usize> = ([V; N], [V; N], [V; N]);

/// `e^(x + x_lo) = 2^k (1 + t_hi + t_lo)` for the first `count` of `N` vectors, without the
/// clamp of [`exp_parts`]; each step is applied to all of them before the next so that their
/// dependency chains overlap.
///
/// `t_hi = r_hi` (the reduced argument, exact) and `t_lo = r_hi²·q(r_hi) + r_lo·e^{r_hi}`
/// (|t_lo| < 0.07): keeping the leading term out of the rounded polynomial makes
/// `t_hi + t_lo` accurate to ~2⁻⁵⁷ (0.15 ULP of `1 + t`), so callers may keep it as a pair.
///
/// Valid for finite `|x| ≤ 2³⁰` (callers clamp): `x − k·ln2_hi` is exact there (both terms are
/// multiples of 2⁻⁵³ once `|x| ≥ 1`, and the difference is below 0.35), and `k·ln2_lo` is
/// carried to ~2⁻⁷⁰ relative to `r`. `x_lo`, the caller's low part, joins `r_lo`; without one
/// `r_lo` is below 2⁻⁵³ and `r_lo·(1 + r_hi)` stands for `r_lo·e^{r_hi}`.
#[inline(always)]
pub fn exp_reduced_n<S: Simd, const N: usize>(
    s: S,
    x: &[S::V; N],
    x_lo: Option<&[S::V; N]>,
    degree: Degree,
    count: usize,
) -> ExpLanes<S::V, N> {
    let magic = s.splat(MAGIC);
    let mut k_magic = *x;
    let mut r_hi = *x;
    let mut r_lo = *x;
    let mut t_lo = *x;
    for j in 0..count {
        k_magic[j] = s.fma(x[j], s.splat(LOG2_E), magic);
    }
    for j in 0..count {
        let neg_k = s.sub(magic, k_magic[j]);
        let r1 = s.fma(neg_k, s.splat(LN2_HI), x[j]); // exact
        r_hi[j] = s.fma(neg_k, s.splat(LN2_LO), r1);
        // The rounding error of r_hi (r1 − r_hi is exact by Sterbenz), plus the caller's part.
        r_lo[j] = s.fma(neg_k, s.splat(LN2_LO), s.sub(r1, r_hi[j]));
        if let Some(lo) = x_lo {
            r_lo[j] = s.add(r_lo[j], lo[j]);
        }
    }
    let high: &[f64] = match degree {
        Degree::Full => &HIGH_13,
        Degree::Short => &HIGH_9,
    };
    for j in 0..count {
        let r = r_hi[j];
        let q = quadratic_factor(s, high, r);
        let r2 = s.mul(r, r);
        t_lo[j] = if x_lo.is_some() {
            // The caller's low part can reach 2⁻⁴⁷ (softmax's x − max for |x − max| ≈ 100):
            // its factor must be e^{r_hi} = 1 + r_hi + r_hi²·q, not just 1 + r_hi (the missing
            // r_lo·r_hi²/2 alone would cost several ULP).
            let quad = s.mul(r2, q);
            s.add(quad, s.fma(r_lo[j], s.add(r, quad), r_lo[j]))
        } else {
            s.fma(r2, q, s.fma(r_lo[j], r, r_lo[j]))
        };
    }
    (r_hi, t_lo, k_magic)
}

/// `(t, k_magic)` for `N` vectors, as in [`exp_shifted_n`].
pub type ShiftedLanes<V, const N: usize> = ([V; N], [V; N]);

/// `e^{x − K_m·LN2_HI} = 2^{K − K_m}·(1 + t)` for the first `count` of `N` vectors (the
/// float64 shifted kernels): vector `j` belongs to the lanes `j % lanes` of `k_mm`, which holds
/// `MAGIC + K_m` per lane. Returns `t` and `k_magic = MAGIC + K`.
///
/// Valid for finite `|x| ≤ 2³⁰` with `K_m − 1088 ≤ K ≤ K_m` (the caller clamps `x` below and
/// never passes more than its row maximum). `x − K·LN2_HI` is exact (as in
/// [`exp_reduced_n`]) and `(K − K_m)·LN2_LO` an exact product below 2⁻³⁵, so the reduction
/// `r = (x − K·LN2_HI) − (K − K_m)·LN2_LO` rounds once (≤ 2⁻⁵⁵ relative to `e^r`), and so does
/// `t = r + r²q(r)` (≤ 2⁻⁵⁵ absolute), beside the polynomial's 2⁻⁵⁷: `1 + t` is within 0.67u
/// (u = 2⁻⁵³). The row's `K_m·LN2_LO` is left to the caller, whose shift is `K_m·LN2_HI`.
/// Against [`exp_reduced_n`] this drops the split `r_hi + r_lo` and its correction. Measured
/// over 400000 reductions on every ISA: 0.666u.
#[inline(always)]
pub fn exp_shifted_n<S: Simd, const N: usize>(
    s: S,
    x: &[S::V; N],
    count: usize,
    k_mm: &[S::V],
) -> ShiftedLanes<S::V, N> {
    let lanes = k_mm.len();
    let magic = s.splat(MAGIC);
    let mut k_magic = *x;
    let mut r = *x;
    let mut t = *x;
    for j in 0..count {
        k_magic[j] = s.fma(x[j], s.splat(LOG2_E), magic);
    }
    for j in 0..count {
        let neg_k = s.sub(magic, k_magic[j]);
        let k_rel = s.sub(k_magic[j], k_mm[j % lanes]); // K − K_m, exact
        let r1 = s.fma(neg_k, s.splat(LN2_HI), x[j]); // exact
        r[j] = s.fma(k_rel, s.splat(-LN2_LO), r1);
    }
    for j in 0..count {
        let q = quadratic_factor(s, &HIGH_13, r[j]);
        t[j] = s.fma(s.mul(r[j], r[j]), q, r[j]);
    }
    (t, k_magic)
}

/// `e^{x − K_m·ln 2} = 2^{k/16 − K_m}·(1 + t)` for the first `count` of `N` vectors, as
/// [`exp_shifted_n`] but with `k = round(16x / ln 2)` (sixteenths of `ln 2`) and the whole of
/// `k·ln2/16` reduced from `x`, so that `t` does not depend on the shift (whose `K_m·LN2_LO`
/// the caller then takes into its factor to the max): `magic` holds `MAGIC − 16·K_m + 1024`
/// per lane, and the result is `(t, p2)` with `p2 = 2^{k/16 − K_m + 64}` taken as `2^e·T_j`
/// (`k − 16K_m + 1024 = 16e + j`, `T_j` = `2^{j/16}` rounded) from
/// [`Simd::pow2_sixteenths_from_magic`], whose correction `c_j = (2^{j/16} − T_j)/T_j` joins
/// `t`: `T_j·(1 + t)` stands for `2^{j/16}·e^r`.
///
/// Valid as [`exp_shifted_n`] (finite `|x| ≤ 2³⁰`, `16K_m − 17408 ≤ k ≤ 16K_m + 8`): the
/// per-lane magic rounds `16x/ln 2` as `MAGIC` does (same binade, an even offset);
/// `x − k·LN2_HI/16` is exact (both are multiples of `min(ulp(x), 2⁻⁵⁷)` and the difference is
/// below 0.0217, within 53 bits of that grain; `x` itself where `k = 0`), and `k·LN2_LO/16`
/// (below 2⁻²⁵) joins it with one rounding (≤ 2⁻⁵⁹). `|r| ≤ ln2/32` takes a degree-6
/// polynomial (`SIXTEENTHS_Q`, 2⁻⁵⁶·²⁵) where [`exp_shifted_n`] needs degree 13; with
/// the roundings of `r`, `r + c_j` and `t` (≤ 2⁻⁵⁹ each) and the dropped `c_j·(e^r − 1)`
/// (≤ 2⁻⁵⁹), `T_j·(1 + t)` is within 0.2u of `2^{j/16}·e^r` (u = 2⁻⁵³; measured in
/// `shifted_terms_within_their_bounds`). Against the degree-11 polynomial on `|r| ≤ ln2/2` it
/// replaced (fitted likewise, 0.75u) this trades six multiply-adds and two subtractions for
/// the lookup and an add.
#[inline(always)]
pub fn exp_shifted_table_n<S: Simd, const N: usize>(
    s: S,
    x: &[S::V; N],
    count: usize,
    magic: &[S::V],
) -> ShiftedLanes<S::V, N> {
    let lanes = magic.len();
    let mut k_magic = *x;
    let mut r = *x;
    let mut t = *x;
    for j in 0..count {
        k_magic[j] = s.fma(x[j], s.splat(16.0 * LOG2_E), magic[j % lanes]);
    }
    for j in 0..count {
        let k = s.sub(k_magic[j], magic[j % lanes]);
        let r1 = s.fma(k, s.splat(-LN2_HI / 16.0), x[j]); // exact
        r[j] = s.fma(k, s.splat(-LN2_LO / 16.0), r1);
    }
    let mut pow = k_magic;
    for j in 0..count {
        let (p, correction) = s.pow2_sixteenths_from_magic(k_magic[j]);
        pow[j] = p;
        let q = quadratic_factor_from(
            s,
            [SIXTEENTHS_Q[0], SIXTEENTHS_Q[1]],
            &SIXTEENTHS_Q[2..],
            r[j],
        );
        t[j] = s.fma(s.mul(r[j], r[j]), q, s.add(r[j], correction));
    }
    (t, pow)
}

/// `e^x` rounded once to f64.
#[inline(always)]
pub fn exp_v<S: Simd>(s: S, x: S::V, degree: Degree) -> S::V {
    let p = exp_parts(s, x, s.splat(0.0), degree);
    p.scale(s, s.add(s.splat(1.0), p.t))
}

struct ExpSlice<'a, E> {
    x: &'a [E],
    out: &'a mut [E],
}

impl<E: crate::simd::Element> crate::simd::WithSimd for ExpSlice<'_, E> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let degree = if E::IS_F64 {
            Degree::Full
        } else {
            Degree::Short
        };
        let n = self.x.len();
        let body = n - n % S::LANES;
        let (xp, op) = (self.x.as_ptr(), self.out.as_mut_ptr());
        let mut i = 0;
        while i < body {
            // SAFETY: i + LANES <= body <= n for both slices.
            unsafe {
                let v = E::load(s, xp.add(i));
                E::store(s, op.add(i), exp_v(s, v, degree));
            }
            i += S::LANES;
        }
        for j in body..n {
            let v = s.splat(self.x[j].to_f64());
            let mut lane = [0.0f64; 16];
            // SAFETY: `lane` holds 16 >= LANES doubles.
            unsafe { s.store_f64(lane.as_mut_ptr(), exp_v(s, v, degree)) };
            self.out[j] = E::from_f64(lane[0]);
        }
    }
}

/// `out[i] = e^x[i]` (f32, ≤ 1 ULP), on the active SIMD path.
///
/// # Panics
/// If the slices differ in length.
pub fn exp_f32(x: &[f32], out: &mut [f32]) -> Result<(), String> {
    exp_slice(x, out)
}

/// `out[i] = e^x[i]` (f64, ≤ 1 ULP), on the active SIMD path.
///
/// # Panics
/// If the slices differ in length.
pub fn exp_f64(x: &[f64], out: &mut [f64]) -> Result<(), String> {
    exp_slice(x, out)
}

fn exp_slice<E: crate::simd::Element>(x: &[E], out: &mut [E]) -> Result<(), String> {
    assert_eq!(x.len(), out.len(), "exp: input and output lengths differ");
    let isa = crate::simd::active_isa()?;
    crate::simd::dispatch(isa, ExpSlice { x, out });
    Ok(())
}

/// `e^x` on a given ISA (tests and benchmarks compare ISAs with it).
pub fn exp_slice_on<E: crate::simd::Element>(isa: crate::simd::Isa, x: &[E], out: &mut [E]) {
    assert_eq!(x.len(), out.len(), "exp: input and output lengths differ");
    crate::simd::dispatch(isa, ExpSlice { x, out });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{Isa, POW2_SIXTEENTHS_CORRECTION};

    /// Worst ULP error of exp_f32 over every `stride`-th bit pattern, on `isa`.
    fn sweep_f32(isa: Isa, stride: u64) -> (f64, u32) {
        crate::math::sweep::sweep_exp_f32(stride, |x, out| exp_slice_on(isa, x, out))
    }

    #[test]
    fn exp_f32_within_one_ulp_sampled() {
        for isa in Isa::supported() {
            let (worst, at) = sweep_f32(isa, 61);
            assert!(
                worst <= 1.0,
                "{isa:?}: {worst} ULP at {}",
                f32::from_bits(at)
            );
            // Computed in f64 with a 2^-36 polynomial: only near-halfway cases misround.
            assert!(worst < 0.501, "{isa:?}: {worst} ULP, expected ≤ 0.501");
        }
    }

    /// The full sweep over all 2^32 inputs: `make test-exhaustive` (release mode, ~1 min).
    #[test]
    #[ignore = "exhaustive: run with `cargo test --release -- --ignored exhaustive`"]
    fn exp_f32_exhaustive() {
        for isa in Isa::supported() {
            let (worst, at) = sweep_f32(isa, 1);
            println!(
                "exp_f32 {}: max {worst:.6} ULP at {:e}",
                isa.name(),
                f32::from_bits(at)
            );
            assert!(
                worst <= 1.0,
                "{isa:?}: {worst} ULP at {}",
                f32::from_bits(at)
            );
        }
    }

    fn ulp_f64(x: f64) -> f64 {
        let a = x.abs().max(f64::from_bits(1));
        if a >= f64::MIN_POSITIVE {
            f64::from_bits(a.to_bits() + 1) - a
        } else {
            f64::from_bits(1)
        }
    }

    #[test]
    fn exp_f64_matches_libm_within_one_ulp() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let mut xs: Vec<f64> = (0..400_000)
            .map(|_| rng.random_range(-746.0..710.0))
            .collect();
        xs.extend((0..100_000).map(|_| rng.random_range(-1.0..1.0)));
        xs.extend((0..100_000).map(|_| rng.random_range(-745.2..-700.0))); // subnormal results
        xs.extend([
            0.0, -0.0, 1e-300, -1e-300, 709.78, 709.79, -745.13, -745.14, 1.0, -1.0,
        ]);
        for isa in Isa::supported() {
            let mut out = vec![0.0; xs.len()];
            exp_slice_on(isa, &xs, &mut out);
            for (x, y) in xs.iter().zip(&out) {
                let r = x.exp();
                // glibc's exp is within 0.5x ULP; ours ≤ 1 ULP ⇒ differ by < 1.6 ULP. The strict
                // ≤ 1 ULP bound against mpmath is in tests/test_exp.py.
                let err = (y - r).abs() / ulp_f64(r);
                assert!(err <= 1.0 || *y == r, "{isa:?} exp({x:e}) = {y:e} vs {r:e}");
            }
        }
    }

    #[test]
    fn exp_special_values() {
        for isa in Isa::supported() {
            let xs = [
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                1000.0,
                -1000.0,
                0.0,
            ];
            let mut out = [0.0; 6];
            exp_slice_on(isa, &xs, &mut out);
            assert!(out[0].is_nan());
            assert_eq!(&out[1..], &[f64::INFINITY, 0.0, f64::INFINITY, 0.0, 1.0]);
            let xs32 = [
                f32::NAN,
                f32::INFINITY,
                f32::NEG_INFINITY,
                89.0,
                -104.0,
                0.0,
            ];
            let mut o32 = [0.0f32; 6];
            exp_slice_on(isa, &xs32, &mut o32);
            assert!(o32[0].is_nan());
            assert_eq!(&o32[1..], &[f32::INFINITY, 0.0, f32::INFINITY, 0.0, 1.0]);
        }
    }

    /// `(t, k)` of [`exp_shifted_n`] for `x` with the shift `K_m = 0`, per ISA; with `TABLE`,
    /// `(t, p2)` of [`exp_shifted_table_n`] (`p2 = 2^{k/16 + 64}` as `2^e·T_j`).
    struct Shifted<'a, const TABLE: bool>(&'a [f64], &'a mut [(f64, f64)]);

    impl<const TABLE: bool> crate::simd::WithSimd for Shifted<'_, TABLE> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) {
            let (mut t, mut k) = ([0.0f64; 16], [0.0f64; 16]);
            for (x, out) in self.0.iter().zip(self.1.iter_mut()) {
                let (tv, kv) = if TABLE {
                    // MAGIC − 16·K_m + 1024 for K_m = 0.
                    let magic = s.splat(MAGIC + 1024.0);
                    exp_shifted_table_n::<S, 1>(s, &[s.splat(*x)], 1, &[magic])
                } else {
                    exp_shifted_n::<S, 1>(s, &[s.splat(*x)], 1, &[s.splat(MAGIC)])
                };
                // SAFETY: the arrays hold 16 >= LANES doubles.
                unsafe {
                    s.store_f64(t.as_mut_ptr(), tv[0]);
                    s.store_f64(k.as_mut_ptr(), kv[0]);
                }
                *out = (t[0], if TABLE { k[0] } else { k[0] - MAGIC });
            }
        }
    }

    /// Double-double helpers for the reference below: `a + b` and `a·b` exactly as pairs.
    fn two_sum(a: f64, b: f64) -> (f64, f64) {
        let s = a + b;
        let bb = s - a;
        (s, (a - (s - bb)) + (b - bb))
    }

    fn dd_add((ah, al): (f64, f64), (bh, bl): (f64, f64)) -> (f64, f64) {
        let (s, e) = two_sum(ah, bh);
        two_sum(s, e + al + bl)
    }

    fn dd_mul((ah, al): (f64, f64), (bh, bl): (f64, f64)) -> (f64, f64) {
        let p = ah * bh;
        two_sum(p, ah.mul_add(bh, -p) + (ah * bl + al * bh))
    }

    /// `e^r` for `|r| < 0.7` by its Taylor series in double-double (~2⁻¹⁰⁰ relative; `1/k` as a
    /// pair too).
    fn dd_exp((rh, rl): (f64, f64)) -> (f64, f64) {
        let mut term = (1.0, 0.0);
        let mut sum = (1.0, 0.0);
        for k in 1..40 {
            let k = k as f64;
            let q = 1.0 / k;
            term = dd_mul(term, (rh, rl));
            term = dd_mul(term, (q, q.mul_add(-k, 1.0) / k));
            sum = dd_add(sum, term);
        }
        sum
    }

    /// The float64 shifted terms within their documented bounds (module of `rows64`): `1 + t`
    /// of [`exp_shifted_n`] within 0.67u of `e^r` (u = 2⁻⁵³), `r = x − K·ln 2`, and
    /// `T_j·(1 + t)` of [`exp_shifted_table_n`] within 0.2u of `2^{j/16}·e^r`,
    /// `r = x − k·ln2/16`, `T_j` from [`Simd::pow2_sixteenths_from_magic`]; references in
    /// double-double, over x across ±40 and many reductions near the ends of both intervals, on
    /// every ISA; and `k` within ½ of `16x/ln 2`.
    #[test]
    fn shifted_terms_within_their_bounds() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(11);
        let ln2 = (std::f64::consts::LN_2, LN2_LO);
        let mut xs: Vec<f64> = (0..200_000)
            .map(|_| rng.random_range(-40.0..40.0))
            .collect();
        // Reductions at the ends of the intervals, where the polynomials' errors peak.
        xs.extend((0..100_000).map(|i| {
            let k = (i % 50) as f64 - 25.0;
            (k + rng.random_range(0.49..0.5)) * std::f64::consts::LN_2
        }));
        xs.extend((0..100_000).map(|i| {
            let k = (i % 800) as f64 - 400.0;
            (k + rng.random_range(0.49..0.5)) * std::f64::consts::LN_2 / 16.0
        }));
        let u = f64::powi(2.0, -53);
        for isa in Isa::supported() {
            let mut full = vec![(0.0, 0.0); xs.len()];
            let mut table = vec![(0.0, 0.0); xs.len()];
            crate::simd::dispatch(isa, Shifted::<false>(&xs, &mut full));
            crate::simd::dispatch(isa, Shifted::<true>(&xs, &mut table));
            let (mut worst_full, mut worst_table) = (0.0f64, 0.0f64);
            for ((&x, &(t_full, k)), &(t_table, p2)) in xs.iter().zip(&full).zip(&table) {
                let k_ln2 = dd_mul(ln2, (k, 0.0));
                let e = dd_exp(dd_add((x, 0.0), (-k_ln2.0, -k_ln2.1)));
                let diff = dd_add(dd_add((1.0, 0.0), (t_full, 0.0)), (-e.0, -e.1));
                worst_full = worst_full.max((diff.0 + diff.1).abs() / e.0 / u);

                // k as the kernel rounds it, within ½ of 16x/ln 2.
                let k16 = x.mul_add(16.0 * std::f64::consts::LOG2_E, MAGIC) - MAGIC;
                assert!(
                    (16.0 * x / ln2.0 - k16).abs() <= 0.5 + 1e-9,
                    "{isa:?} x = {x:e}"
                );
                // 2^{j/16}·e^{x − k·ln2/16} = e^{x − e·ln 2}, e = ⌊k/16⌋; p2 = 2^{e+64}·T_j.
                let e16 = (k16 / 16.0).floor();
                let j = (k16 - 16.0 * e16) as usize;
                let entry = p2 / f64::powi(2.0, e16 as i32 + 64);
                assert_eq!(entry, table_entry(j), "{isa:?} x = {x:e}");
                let e_ln2 = dd_mul(ln2, (e16, 0.0));
                let e = dd_exp(dd_add((x, 0.0), (-e_ln2.0, -e_ln2.1)));
                let got = dd_mul((entry, 0.0), dd_add((1.0, 0.0), (t_table, 0.0)));
                let diff = dd_add(got, (-e.0, -e.1));
                worst_table = worst_table.max((diff.0 + diff.1).abs() / e.0 / u);
            }
            assert!(worst_full <= 0.67, "{isa:?}: degree 13 {worst_full}u");
            assert!(worst_table <= 0.2, "{isa:?}: sixteenths {worst_table}u");
            println!("{isa:?}: degree 13 {worst_full:.3}u, sixteenths {worst_table:.3}u");
        }
    }

    /// `T_j`, `2^{j/16}` rounded: the table's entry with `j` put back into its bits.
    fn table_entry(j: usize) -> f64 {
        f64::from_bits(crate::simd::POW2_SIXTEENTHS[j].to_bits() + ((j as u64) << 48))
    }

    /// [`Simd::pow2_sixteenths_from_magic`] on every ISA: `T_j` is `2^{j/16}` rounded to
    /// nearest (double-double reference), the result `2^e·T_j` for every `k = 16e + j` with
    /// `−1022 ≤ e ≤ 1023` and `(T_j − 1)·2⁻¹⁰²²` at `e = −1023` (0 for `j = 0`), beside the
    /// correction `(2^{j/16} − T_j)/T_j` (to 2⁻¹⁰⁰).
    #[test]
    fn pow2_sixteenths_are_rounded_powers() {
        struct Powers<'a>(&'a [f64], &'a mut [f64], &'a mut [f64]);
        impl crate::simd::WithSimd for Powers<'_> {
            type Output = ();
            #[inline(always)]
            fn with_simd<S: Simd>(self, s: S) {
                let mut lane = [0.0f64; 16];
                for (i, &k) in self.0.iter().enumerate() {
                    let (p, c) = s.pow2_sixteenths_from_magic(s.splat(MAGIC + k));
                    // SAFETY: `lane` holds 16 >= LANES doubles.
                    unsafe { s.store_f64(lane.as_mut_ptr(), p) };
                    self.1[i] = lane[0];
                    // SAFETY: as above.
                    unsafe { s.store_f64(lane.as_mut_ptr(), c) };
                    self.2[i] = lane[0];
                }
            }
        }
        let ln2 = (std::f64::consts::LN_2, LN2_LO);
        let exact: Vec<(f64, f64)> = (0..16)
            .map(|j| dd_exp(dd_mul(ln2, (j as f64 / 16.0, 0.0))))
            .collect();
        let ks: Vec<f64> = (-16 * 1023..16 * 1024).map(f64::from).collect();
        for isa in Isa::supported() {
            let (mut pow, mut corr) = (vec![0.0; ks.len()], vec![0.0; ks.len()]);
            crate::simd::dispatch(isa, Powers(&ks, &mut pow, &mut corr));
            for (i, &k) in ks.iter().enumerate() {
                let e = (k / 16.0).floor();
                let j = (k - 16.0 * e) as usize;
                let entry = exact[j].0;
                let want = if e >= -1022.0 {
                    entry * f64::powi(2.0, e as i32)
                } else {
                    (entry - 1.0) * f64::powi(2.0, -1022)
                };
                assert_eq!(pow[i], want, "{isa:?} k = {k}");
                assert_eq!(corr[i], POW2_SIXTEENTHS_CORRECTION[j], "{isa:?} k = {k}");
                assert_eq!(entry, table_entry(j), "{isa:?} k = {k}");
            }
            assert_eq!(pow[0], 0.0, "{isa:?}");
        }
        for (j, &(hi, lo)) in exact.iter().enumerate() {
            // hi is the double nearest 2^{j/16}: |lo| at most half an ULP of hi.
            assert!(
                lo.abs() <= 0.5 * f64::EPSILON * hi.max(1.0).log2().floor().exp2(),
                "{j}"
            );
            let c = POW2_SIXTEENTHS_CORRECTION[j];
            assert!(
                (c - lo / hi).abs() <= f64::powi(2.0, -100),
                "{j}: {c:e} vs {:e}",
                lo / hi
            );
        }
    }
}
