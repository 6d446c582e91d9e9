//! AVX-512F implementation of [`Simd`]: eight `f64` lanes in a `__m512d`.

use std::arch::x86_64::*;

use super::{
    Simd, WithSimd, ONE_BITS, POW2_SIXTEENTHS, POW2_SIXTEENTHS_CORRECTION, SIGNIFICAND,
    TWO_52_BITS, TWO_52_PLUS_BIAS,
};

/// Eight `f64` lanes. A value exists only inside [`run`], after the CPU was checked for
/// AVX-512F, which is what makes the intrinsic calls below sound.
#[derive(Clone, Copy, Debug)]
pub struct Avx512 {
    _checked: (),
}

/// Run `op` with AVX-512F (and AVX2/FMA, which every AVX-512F CPU has) enabled.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn run<W: WithSimd>(op: W) -> W::Output {
    op.with_simd(Avx512 { _checked: () })
}

// SAFETY (every block below): an `Avx512` value proves AVX-512F is available (see `run`);
// pointer arguments carry the caller's contract from the trait.
impl Simd for Avx512 {
    const LANES: usize = 8;
    type V = __m512d;
    type M = __mmask8;

    #[inline(always)]
    fn splat(self, x: f64) -> __m512d {
        unsafe { _mm512_set1_pd(x) }
    }
    #[inline(always)]
    fn add(self, a: __m512d, b: __m512d) -> __m512d {
        unsafe { _mm512_add_pd(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m512d, b: __m512d) -> __m512d {
        unsafe { _mm512_sub_pd(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m512d, b: __m512d) -> __m512d {
        unsafe { _mm512_mul_pd(a, b) }
    }
    #[inline(always)]
    fn div(self, a: __m512d, b: __m512d) -> __m512d {
        unsafe { _mm512_div_pd(a, b) }
    }
    #[inline(always)]
    fn fma(self, a: __m512d, b: __m512d, c: __m512d) -> __m512d {
        unsafe { _mm512_fmadd_pd(a, b, c) }
    }
    #[inline(always)]
    fn max(self, a: __m512d, b: __m512d) -> __m512d {
        // VMAXPD returns the second operand when either is NaN, like MAXPD.
        unsafe { _mm512_max_pd(a, b) }
    }
    #[inline(always)]
    fn min(self, a: __m512d, b: __m512d) -> __m512d {
        unsafe { _mm512_min_pd(a, b) }
    }
    #[inline(always)]
    fn is_nan(self, v: __m512d) -> __mmask8 {
        unsafe { _mm512_cmp_pd_mask::<_CMP_UNORD_Q>(v, v) }
    }
    #[inline(always)]
    fn eq(self, a: __m512d, b: __m512d) -> __mmask8 {
        unsafe { _mm512_cmp_pd_mask::<_CMP_EQ_OQ>(a, b) }
    }
    #[inline(always)]
    fn ge(self, a: __m512d, b: __m512d) -> __mmask8 {
        unsafe { _mm512_cmp_pd_mask::<_CMP_GE_OQ>(a, b) }
    }
    #[inline(always)]
    fn or(self, a: __mmask8, b: __mmask8) -> __mmask8 {
        a | b
    }
    #[inline(always)]
    fn none(self) -> __mmask8 {
        0
    }
    #[inline(always)]
    fn any(self, m: __mmask8) -> bool {
        m != 0
    }
    #[inline(always)]
    fn select(self, m: __mmask8, a: __m512d, b: __m512d) -> __m512d {
        unsafe { _mm512_mask_blend_pd(m, b, a) }
    }
    #[inline(always)]
    fn pow2_from_magic(self, t: __m512d) -> __m512d {
        unsafe {
            let bits = _mm512_add_epi64(_mm512_castpd_si512(t), _mm512_set1_epi64(1023));
            _mm512_castsi512_pd(_mm512_slli_epi64::<52>(bits))
        }
    }
    #[inline(always)]
    fn pow2_sixteenths_from_magic(self, t: __m512d) -> (__m512d, __m512d) {
        // VPERMI2PD reads bits 0-3 of each index: 0-2 pick the entry, 3 the register.
        unsafe {
            let index = _mm512_castpd_si512(t);
            let lookup = |table: &[f64; 16]| {
                let low = _mm512_loadu_pd(table.as_ptr());
                let high = _mm512_loadu_pd(table.as_ptr().add(8));
                _mm512_permutex2var_pd(low, index, high)
            };
            let entry = _mm512_castpd_si512(lookup(&POW2_SIXTEENTHS));
            let shifted = _mm512_slli_epi64::<48>(index);
            let pow = _mm512_castsi512_pd(_mm512_add_epi64(entry, shifted));
            (pow, lookup(&POW2_SIXTEENTHS_CORRECTION))
        }
    }
    #[inline(always)]
    fn split_exponent(self, v: __m512d) -> (__m512d, __m512d) {
        unsafe {
            let bits = _mm512_castpd_si512(v);
            let biased = _mm512_srli_epi64::<52>(bits);
            let magic = _mm512_or_si512(biased, _mm512_set1_epi64(TWO_52_BITS));
            let k = _mm512_sub_pd(_mm512_castsi512_pd(magic), _mm512_set1_pd(TWO_52_PLUS_BIAS));
            let fraction = _mm512_and_si512(bits, _mm512_set1_epi64(SIGNIFICAND));
            let f = _mm512_or_si512(fraction, _mm512_set1_epi64(ONE_BITS));
            (k, _mm512_castsi512_pd(f))
        }
    }
    const LANES32: usize = 16;
    type F = __m512;
    type FM = __mmask16;

    #[inline(always)]
    fn fsplat(self, x: f32) -> __m512 {
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    fn fadd(self, a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    fn fsub(self, a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_sub_ps(a, b) }
    }
    #[inline(always)]
    fn fmul(self, a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    fn ffma(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn fmax(self, a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_max_ps(a, b) }
    }
    #[inline(always)]
    fn fmin(self, a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_min_ps(a, b) }
    }
    #[inline(always)]
    fn fis_nan(self, v: __m512) -> __mmask16 {
        unsafe { _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v) }
    }
    #[inline(always)]
    fn feq(self, a: __m512, b: __m512) -> __mmask16 {
        unsafe { _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a, b) }
    }
    #[inline(always)]
    fn flt(self, a: __m512, b: __m512) -> __mmask16 {
        unsafe { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b) }
    }
    #[inline(always)]
    fn fge(self, a: __m512, b: __m512) -> __mmask16 {
        unsafe { _mm512_cmp_ps_mask::<_CMP_GE_OQ>(a, b) }
    }
    #[inline(always)]
    fn fmand(self, a: __mmask16, b: __mmask16) -> __mmask16 {
        a & b
    }
    #[inline(always)]
    fn fmor(self, a: __mmask16, b: __mmask16) -> __mmask16 {
        a | b
    }
    #[inline(always)]
    fn fmnone(self) -> __mmask16 {
        0
    }
    #[inline(always)]
    fn fmany(self, m: __mmask16) -> bool {
        m != 0
    }
    #[inline(always)]
    fn fkeep(self, m: __mmask16, v: __m512) -> __m512 {
        unsafe { _mm512_maskz_mov_ps(m, v) }
    }
    #[inline(always)]
    fn fdrop(self, m: __mmask16, v: __m512) -> __m512 {
        unsafe { _mm512_maskz_mov_ps(!m, v) }
    }
    const FREE_MASKS: bool = true;
    #[inline(always)]
    fn ffma_drop(self, m: __mmask16, a: __m512, b: __m512, c: __m512) -> __m512 {
        unsafe { _mm512_maskz_fmadd_ps(!m, a, b, c) }
    }
    #[inline(always)]
    fn fadd_keep(self, m: __mmask16, a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_mask_add_ps(a, m, a, b) }
    }
    #[inline(always)]
    fn fpow2_from_magic(self, t: __m512, bias: i32) -> __m512 {
        unsafe {
            let bits = _mm512_add_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(127 + bias));
            _mm512_castsi512_ps(_mm512_slli_epi32::<23>(bits))
        }
    }
    #[inline(always)]
    fn fpow2_from_magic_lanes(self, t: __m512, bias: __m512) -> __m512 {
        unsafe {
            let bits = _mm512_add_epi32(_mm512_castps_si512(t), _mm512_castps_si512(bias));
            _mm512_castsi512_ps(_mm512_slli_epi32::<23>(bits))
        }
    }
    #[inline(always)]
    fn widen_scaled(self, v: __m512, part: usize) -> __m512d {
        unsafe {
            let bits = _mm512_castps_si512(v);
            let zero = _mm512_setzero_si512();
            // Each float's bits into the low half of a 64-bit lane by in-lane unpacks (lanes
            // 0, 1, 4, 5, 8, 9, 12, 13 or 2, 3, 6, 7, 10, 11, 14, 15), then up by 29 into a
            // double's place: one operation per 16 floats fewer than zero-extending each half
            // in lane order, whose upper half must be extracted first (the float32 softmax
            // pass ×1.07 in `benches/probes/softmax_passes_avx512.c`).
            let wide = if part == 0 {
                _mm512_unpacklo_epi32(bits, zero)
            } else {
                _mm512_unpackhi_epi32(bits, zero)
            };
            _mm512_castsi512_pd(_mm512_slli_epi64::<29>(wide))
        }
    }
    #[inline(always)]
    fn natural_lanes(self, parts: &mut [__m512d]) {
        unsafe {
            let (a, b) = (parts[0], parts[1]);
            // Pairs of lanes back in order: `a` holds lanes 0, 1, 4, 5, 8, 9, 12, 13 (indices
            // 0–7 below), `b` lanes 2, 3, 6, 7, 10, 11, 14, 15 (indices 8–15).
            parts[0] = _mm512_permutex2var_pd(a, _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), b);
            parts[1] = _mm512_permutex2var_pd(a, _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15), b);
        }
    }
    #[inline(always)]
    unsafe fn fload(self, p: *const f32) -> __m512 {
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn fstore(self, p: *mut f32, v: __m512) {
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn load_f64_first(self, p: *const f64, count: usize, fill: f64) -> __m512d {
        // Masked-off lanes are neither read nor able to fault.
        unsafe { _mm512_mask_loadu_pd(_mm512_set1_pd(fill), first_lanes(count) as __mmask8, p) }
    }
    #[inline(always)]
    unsafe fn fload_first(self, p: *const f32, count: usize, fill: f32) -> __m512 {
        // Masked-off lanes are neither read nor able to fault.
        unsafe { _mm512_mask_loadu_ps(_mm512_set1_ps(fill), first_lanes(count), p) }
    }
    #[inline(always)]
    unsafe fn load_f64(self, p: *const f64) -> __m512d {
        unsafe { _mm512_loadu_pd(p) }
    }
    #[inline(always)]
    unsafe fn load_f32(self, p: *const f32) -> __m512d {
        unsafe { _mm512_cvtps_pd(_mm256_loadu_ps(p)) }
    }
    #[inline(always)]
    unsafe fn store_f64(self, p: *mut f64, v: __m512d) {
        unsafe { _mm512_storeu_pd(p, v) }
    }
    #[inline(always)]
    unsafe fn store_f32(self, p: *mut f32, v: __m512d) {
        unsafe { _mm256_storeu_ps(p, _mm512_cvtpd_ps(v)) }
    }
    #[inline(always)]
    unsafe fn transpose8_f32(self, src: &[*const f32; 8], dst: &[*mut f32; 8]) {
        // 8 × 8 blocks fit AVX registers; the column tiles' blocks are no larger.
        unsafe { super::x86_avx2::transpose8_f32(src, dst) }
    }
    #[inline(always)]
    unsafe fn transpose4_f64(self, src: &[*const f64; 4], dst: &[*mut f64; 4]) {
        unsafe { super::x86_avx2::transpose4_f64(src, dst) }
    }
}

/// The first `count` of 16 lanes (`count ≤ 16`).
#[inline(always)]
fn first_lanes(count: usize) -> __mmask16 {
    ((1u32 << count) - 1) as __mmask16
}
