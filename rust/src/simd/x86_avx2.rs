//! AVX2 + FMA implementation of [`Simd`]: four `f64` lanes in a `__m256d`.

use std::arch::x86_64::*;

use super::{
    Simd, WithSimd, ONE_BITS, POW2_SIXTEENTHS_PAIRS, SIGNIFICAND, TWO_52_BITS, TWO_52_PLUS_BIAS,
};

/// Four `f64` lanes. A value exists only inside [`run`], after the CPU was checked for AVX2 and
/// FMA, which is what makes the intrinsic calls below sound.
#[derive(Clone, Copy, Debug)]
pub struct Avx2 {
    _checked: (),
}

/// Run `op` with AVX2 + FMA enabled for the whole (inlined) kernel.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn run<W: WithSimd>(op: W) -> W::Output {
    op.with_simd(Avx2 { _checked: () })
}

// SAFETY (every block below): an `Avx2` value proves AVX2 and FMA are available (see `run`);
// pointer arguments carry the caller's contract from the trait.
impl Simd for Avx2 {
    const LANES: usize = 4;
    type V = __m256d;
    type M = __m256d;

    #[inline(always)]
    fn splat(self, x: f64) -> __m256d {
        unsafe { _mm256_set1_pd(x) }
    }
    #[inline(always)]
    fn add(self, a: __m256d, b: __m256d) -> __m256d {
        unsafe { _mm256_add_pd(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m256d, b: __m256d) -> __m256d {
        unsafe { _mm256_sub_pd(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m256d, b: __m256d) -> __m256d {
        unsafe { _mm256_mul_pd(a, b) }
    }
    #[inline(always)]
    fn div(self, a: __m256d, b: __m256d) -> __m256d {
        unsafe { _mm256_div_pd(a, b) }
    }
    #[inline(always)]
    fn fma(self, a: __m256d, b: __m256d, c: __m256d) -> __m256d {
        unsafe { _mm256_fmadd_pd(a, b, c) }
    }
    #[inline(always)]
    fn max(self, a: __m256d, b: __m256d) -> __m256d {
        unsafe { _mm256_max_pd(a, b) }
    }
    #[inline(always)]
    fn min(self, a: __m256d, b: __m256d) -> __m256d {
        unsafe { _mm256_min_pd(a, b) }
    }
    #[inline(always)]
    fn is_nan(self, v: __m256d) -> __m256d {
        unsafe { _mm256_cmp_pd::<_CMP_UNORD_Q>(v, v) }
    }
    #[inline(always)]
    fn eq(self, a: __m256d, b: __m256d) -> __m256d {
        unsafe { _mm256_cmp_pd::<_CMP_EQ_OQ>(a, b) }
    }
    #[inline(always)]
    fn ge(self, a: __m256d, b: __m256d) -> __m256d {
        unsafe { _mm256_cmp_pd::<_CMP_GE_OQ>(a, b) }
    }
    #[inline(always)]
    fn or(self, a: __m256d, b: __m256d) -> __m256d {
        unsafe { _mm256_or_pd(a, b) }
    }
    #[inline(always)]
    fn none(self) -> __m256d {
        unsafe { _mm256_setzero_pd() }
    }
    #[inline(always)]
    fn any(self, m: __m256d) -> bool {
        unsafe { _mm256_movemask_pd(m) != 0 }
    }
    #[inline(always)]
    fn select(self, m: __m256d, a: __m256d, b: __m256d) -> __m256d {
        unsafe { _mm256_blendv_pd(b, a, m) }
    }
    #[inline(always)]
    fn pow2_from_magic(self, t: __m256d) -> __m256d {
        unsafe {
            let bits = _mm256_add_epi64(_mm256_castpd_si256(t), _mm256_set1_epi64x(1023));
            _mm256_castsi256_pd(_mm256_slli_epi64::<52>(bits))
        }
    }
    #[inline(always)]
    fn pow2_sixteenths_from_magic(self, t: __m256d) -> (__m256d, __m256d) {
        // Each lane loads its entry and correction as one pair, and two unpacks sort them:
        // two gathers (VGATHERQPD) made float64 logsumexp a third slower, lookups by VPERMPS
        // from four quarters of each table a third.
        unsafe {
            let bits = _mm256_castpd_si256(t);
            let (low, high) = (
                _mm256_castsi256_si128(bits),
                _mm256_extracti128_si256::<1>(bits),
            );
            // [T_0, c_0, T_2, c_2] and [T_1, c_1, T_3, c_3].
            let even = _mm256_insertf128_pd::<1>(
                _mm256_castpd128_pd256(pair_at(_mm_cvtsi128_si64(low))),
                pair_at(_mm_cvtsi128_si64(high)),
            );
            let odd = _mm256_insertf128_pd::<1>(
                _mm256_castpd128_pd256(pair_at(_mm_extract_epi64::<1>(low))),
                pair_at(_mm_extract_epi64::<1>(high)),
            );
            let entry = _mm256_castpd_si256(_mm256_unpacklo_pd(even, odd));
            let shifted = _mm256_slli_epi64::<48>(bits);
            let pow = _mm256_castsi256_pd(_mm256_add_epi64(entry, shifted));
            (pow, _mm256_unpackhi_pd(even, odd))
        }
    }
    #[inline(always)]
    fn split_exponent(self, v: __m256d) -> (__m256d, __m256d) {
        unsafe {
            let bits = _mm256_castpd_si256(v);
            let biased = _mm256_srli_epi64::<52>(bits);
            let magic = _mm256_or_si256(biased, _mm256_set1_epi64x(TWO_52_BITS));
            let k = _mm256_sub_pd(_mm256_castsi256_pd(magic), _mm256_set1_pd(TWO_52_PLUS_BIAS));
            let fraction = _mm256_and_si256(bits, _mm256_set1_epi64x(SIGNIFICAND));
            let f = _mm256_or_si256(fraction, _mm256_set1_epi64x(ONE_BITS));
            (k, _mm256_castsi256_pd(f))
        }
    }
    const LANES32: usize = 8;
    type F = __m256;
    type FM = __m256;

    #[inline(always)]
    fn fsplat(self, x: f32) -> __m256 {
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    fn fadd(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    fn fsub(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_sub_ps(a, b) }
    }
    #[inline(always)]
    fn fmul(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    fn ffma(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn fmax(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_max_ps(a, b) }
    }
    #[inline(always)]
    fn fmin(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_min_ps(a, b) }
    }
    #[inline(always)]
    fn fis_nan(self, v: __m256) -> __m256 {
        unsafe { _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v) }
    }
    #[inline(always)]
    fn feq(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_cmp_ps::<_CMP_EQ_OQ>(a, b) }
    }
    #[inline(always)]
    fn flt(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_cmp_ps::<_CMP_LT_OQ>(a, b) }
    }
    #[inline(always)]
    fn fge(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_cmp_ps::<_CMP_GE_OQ>(a, b) }
    }
    #[inline(always)]
    fn fmand(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_and_ps(a, b) }
    }
    #[inline(always)]
    fn fmor(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_or_ps(a, b) }
    }
    #[inline(always)]
    fn fmnone(self) -> __m256 {
        unsafe { _mm256_setzero_ps() }
    }
    #[inline(always)]
    fn fmany(self, m: __m256) -> bool {
        unsafe { _mm256_movemask_ps(m) != 0 }
    }
    #[inline(always)]
    fn fkeep(self, m: __m256, v: __m256) -> __m256 {
        unsafe { _mm256_and_ps(m, v) }
    }
    #[inline(always)]
    fn fdrop(self, m: __m256, v: __m256) -> __m256 {
        unsafe { _mm256_andnot_ps(m, v) }
    }
    const FREE_MASKS: bool = false;
    #[inline(always)]
    fn fpow2_from_magic(self, t: __m256, bias: i32) -> __m256 {
        unsafe {
            let bits = _mm256_add_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(127 + bias));
            _mm256_castsi256_ps(_mm256_slli_epi32::<23>(bits))
        }
    }
    #[inline(always)]
    fn fpow2_from_magic_lanes(self, t: __m256, bias: __m256) -> __m256 {
        unsafe {
            let bits = _mm256_add_epi32(_mm256_castps_si256(t), _mm256_castps_si256(bias));
            _mm256_castsi256_ps(_mm256_slli_epi32::<23>(bits))
        }
    }
    #[inline(always)]
    fn widen_scaled(self, v: __m256, part: usize) -> __m256d {
        unsafe {
            let bits = _mm256_castps_si256(v);
            let zero = _mm256_setzero_si256();
            // Each float's bits into the low half of a 64-bit lane (in-lane unpacks: lanes 0, 1,
            // 4, 5 or 2, 3, 6, 7), then up by 29 into a double's place.
            let wide = if part == 0 {
                _mm256_unpacklo_epi32(bits, zero)
            } else {
                _mm256_unpackhi_epi32(bits, zero)
            };
            _mm256_castsi256_pd(_mm256_slli_epi64::<29>(wide))
        }
    }
    #[inline(always)]
    fn natural_lanes(self, parts: &mut [__m256d]) {
        unsafe {
            let (a, b) = (parts[0], parts[1]);
            parts[0] = _mm256_permute2f128_pd::<0x20>(a, b);
            parts[1] = _mm256_permute2f128_pd::<0x31>(a, b);
        }
    }
    #[inline(always)]
    unsafe fn fload(self, p: *const f32) -> __m256 {
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn fstore(self, p: *mut f32, v: __m256) {
        unsafe { _mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn load_f64_first(self, p: *const f64, count: usize, fill: f64) -> __m256d {
        // Masked-off lanes are neither read nor able to fault.
        unsafe {
            let mask = _mm256_cmpgt_epi64(
                _mm256_set1_epi64x(count as i64),
                _mm256_setr_epi64x(0, 1, 2, 3),
            );
            let v = _mm256_maskload_pd(p, mask);
            _mm256_blendv_pd(_mm256_set1_pd(fill), v, _mm256_castsi256_pd(mask))
        }
    }
    #[inline(always)]
    unsafe fn fload_first(self, p: *const f32, count: usize, fill: f32) -> __m256 {
        // Masked-off lanes are neither read nor able to fault.
        unsafe {
            let mask = first_lanes(count);
            let v = _mm256_maskload_ps(p, mask);
            _mm256_blendv_ps(_mm256_set1_ps(fill), v, _mm256_castsi256_ps(mask))
        }
    }
    #[inline(always)]
    unsafe fn load_f64(self, p: *const f64) -> __m256d {
        unsafe { _mm256_loadu_pd(p) }
    }
    #[inline(always)]
    unsafe fn load_f32(self, p: *const f32) -> __m256d {
        unsafe { _mm256_cvtps_pd(_mm_loadu_ps(p)) }
    }
    #[inline(always)]
    unsafe fn store_f64(self, p: *mut f64, v: __m256d) {
        unsafe { _mm256_storeu_pd(p, v) }
    }
    #[inline(always)]
    unsafe fn store_f32(self, p: *mut f32, v: __m256d) {
        unsafe { _mm_storeu_ps(p, _mm256_cvtpd_ps(v)) }
    }
    #[inline(always)]
    unsafe fn transpose8_f32(self, src: &[*const f32; 8], dst: &[*mut f32; 8]) {
        unsafe { transpose8_f32(src, dst) }
    }
    #[inline(always)]
    unsafe fn transpose4_f64(self, src: &[*const f64; 4], dst: &[*mut f64; 4]) {
        unsafe { transpose4_f64(src, dst) }
    }
}

/// All bits set in the first `count` 32-bit lanes (`count ≤ 8`).
#[inline(always)]
fn first_lanes(count: usize) -> __m256i {
    // SAFETY: AVX2 callers only (the CPU supports it).
    unsafe {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(count as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }
}

/// [`Simd::transpose8_f32`] in AVX registers: the rows' 128-bit halves are paired as they are
/// loaded, then two rounds of in-lane shuffles (16 shuffles for 64 floats).
///
/// # Safety
/// As for [`Simd::transpose8_f32`]; the CPU must support AVX (AVX2 and AVX-512 callers do).
#[inline(always)]
pub(super) unsafe fn transpose8_f32(src: &[*const f32; 8], dst: &[*mut f32; 8]) {
    unsafe {
        // r[j] holds row j's floats 0–3 in its low half and row j + 4's in its high half
        // (and h[j] the floats 4–7): the 128-bit lane crossing happens in the loads.
        let mut r = [_mm256_setzero_ps(); 4];
        let mut h = [_mm256_setzero_ps(); 4];
        for j in 0..4 {
            r[j] = _mm256_loadu2_m128(src[j + 4], src[j]);
            h[j] = _mm256_loadu2_m128(src[j + 4].add(4), src[j].add(4));
        }
        for (half, k0) in [(r, 0), (h, 4)] {
            // A 4 × 4 transpose within each 128-bit lane.
            let t0 = _mm256_unpacklo_ps(half[0], half[1]);
            let t1 = _mm256_unpackhi_ps(half[0], half[1]);
            let t2 = _mm256_unpacklo_ps(half[2], half[3]);
            let t3 = _mm256_unpackhi_ps(half[2], half[3]);
            let out = [
                _mm256_shuffle_ps::<0x44>(t0, t2),
                _mm256_shuffle_ps::<0xEE>(t0, t2),
                _mm256_shuffle_ps::<0x44>(t1, t3),
                _mm256_shuffle_ps::<0xEE>(t1, t3),
            ];
            for (k, v) in out.into_iter().enumerate() {
                _mm256_storeu_ps(dst[k0 + k], v);
            }
        }
    }
}

/// [`Simd::transpose4_f64`] in AVX registers, as [`transpose8_f32`] does it.
///
/// # Safety
/// As for [`Simd::transpose4_f64`]; the CPU must support AVX.
#[inline(always)]
pub(super) unsafe fn transpose4_f64(src: &[*const f64; 4], dst: &[*mut f64; 4]) {
    unsafe {
        // r[j] holds row j's doubles 0–1 and row j + 2's; h[j] their doubles 2–3.
        let mut r = [_mm256_setzero_pd(); 2];
        let mut h = [_mm256_setzero_pd(); 2];
        for j in 0..2 {
            r[j] = _mm256_loadu2_m128d(src[j + 2], src[j]);
            h[j] = _mm256_loadu2_m128d(src[j + 2].add(2), src[j].add(2));
        }
        for (half, k0) in [(r, 0), (h, 2)] {
            _mm256_storeu_pd(dst[k0], _mm256_unpacklo_pd(half[0], half[1]));
            _mm256_storeu_pd(dst[k0 + 1], _mm256_unpackhi_pd(half[0], half[1]));
        }
    }
}

/// `[T_j, c_j]` of [`POW2_SIXTEENTHS_PAIRS`] for `j` = the low four bits of `bits`.
///
/// # Safety
/// AVX2 must be available (the caller holds an [`Avx2`]).
#[inline(always)]
unsafe fn pair_at(bits: i64) -> __m128d {
    // SAFETY: the index is below 16, the pairs' length.
    unsafe {
        _mm_loadu_pd(
            POW2_SIXTEENTHS_PAIRS
                .as_ptr()
                .add((bits & 15) as usize)
                .cast(),
        )
    }
}
