//! The portable one-lane implementation of [`Simd`]: the reference every vector path matches.

use super::{Simd, ONE_BITS, POW2_SIXTEENTHS_PAIRS, SIGNIFICAND, TWO_52_BITS, TWO_52_PLUS_BIAS};

/// One `f64` lane, plain Rust. `fma` is `f64::mul_add` (correctly rounded on every target).
#[derive(Clone, Copy, Debug, Default)]
pub struct Scalar;

impl Simd for Scalar {
    const LANES: usize = 1;
    type V = f64;
    type M = bool;

    #[inline(always)]
    fn splat(self, x: f64) -> f64 {
        x
    }
    #[inline(always)]
    fn add(self, a: f64, b: f64) -> f64 {
        a + b
    }
    #[inline(always)]
    fn sub(self, a: f64, b: f64) -> f64 {
        a - b
    }
    #[inline(always)]
    fn mul(self, a: f64, b: f64) -> f64 {
        a * b
    }
    #[inline(always)]
    fn div(self, a: f64, b: f64) -> f64 {
        a / b
    }
    #[inline(always)]
    fn fma(self, a: f64, b: f64, c: f64) -> f64 {
        a.mul_add(b, c)
    }
    #[inline(always)]
    fn max(self, a: f64, b: f64) -> f64 {
        // Same operand order as MAXPD: NaN in either operand yields `b`.
        if a > b {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    fn min(self, a: f64, b: f64) -> f64 {
        if a < b {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    fn is_nan(self, v: f64) -> bool {
        v.is_nan()
    }
    #[inline(always)]
    fn eq(self, a: f64, b: f64) -> bool {
        a == b
    }
    #[inline(always)]
    fn ge(self, a: f64, b: f64) -> bool {
        a >= b
    }
    #[inline(always)]
    fn or(self, a: bool, b: bool) -> bool {
        a | b
    }
    #[inline(always)]
    fn none(self) -> bool {
        false
    }
    #[inline(always)]
    fn any(self, m: bool) -> bool {
        m
    }
    #[inline(always)]
    fn select(self, m: bool, a: f64, b: f64) -> f64 {
        if m {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    fn pow2_from_magic(self, t: f64) -> f64 {
        f64::from_bits(t.to_bits().wrapping_add(1023) << 52)
    }
    #[inline(always)]
    fn pow2_sixteenths_from_magic(self, t: f64) -> (f64, f64) {
        let [entry, correction] = POW2_SIXTEENTHS_PAIRS[(t.to_bits() & 15) as usize];
        let pow = f64::from_bits(entry.to_bits().wrapping_add(t.to_bits() << 48));
        (pow, correction)
    }
    #[inline(always)]
    fn split_exponent(self, v: f64) -> (f64, f64) {
        let bits = v.to_bits() as i64;
        let k = f64::from_bits(((bits >> 52) | TWO_52_BITS) as u64) - TWO_52_PLUS_BIAS;
        (k, f64::from_bits(((bits & SIGNIFICAND) | ONE_BITS) as u64))
    }
    const LANES32: usize = 1;
    type F = f32;
    type FM = bool;

    #[inline(always)]
    fn fsplat(self, x: f32) -> f32 {
        x
    }
    #[inline(always)]
    fn fadd(self, a: f32, b: f32) -> f32 {
        a + b
    }
    #[inline(always)]
    fn fsub(self, a: f32, b: f32) -> f32 {
        a - b
    }
    #[inline(always)]
    fn fmul(self, a: f32, b: f32) -> f32 {
        a * b
    }
    #[inline(always)]
    fn ffma(self, a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
    #[inline(always)]
    fn fmax(self, a: f32, b: f32) -> f32 {
        if a > b {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    fn fmin(self, a: f32, b: f32) -> f32 {
        if a < b {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    fn fis_nan(self, v: f32) -> bool {
        v.is_nan()
    }
    #[inline(always)]
    fn feq(self, a: f32, b: f32) -> bool {
        a == b
    }
    #[inline(always)]
    fn flt(self, a: f32, b: f32) -> bool {
        a < b
    }
    #[inline(always)]
    fn fge(self, a: f32, b: f32) -> bool {
        a >= b
    }
    #[inline(always)]
    fn fmand(self, a: bool, b: bool) -> bool {
        a & b
    }
    #[inline(always)]
    fn fmor(self, a: bool, b: bool) -> bool {
        a | b
    }
    #[inline(always)]
    fn fmnone(self) -> bool {
        false
    }
    #[inline(always)]
    fn fmany(self, m: bool) -> bool {
        m
    }
    #[inline(always)]
    fn fkeep(self, m: bool, v: f32) -> f32 {
        if m {
            v
        } else {
            0.0
        }
    }
    #[inline(always)]
    fn fdrop(self, m: bool, v: f32) -> f32 {
        self.fkeep(!m, v)
    }
    const FREE_MASKS: bool = false;
    #[inline(always)]
    fn fpow2_from_magic(self, t: f32, bias: i32) -> f32 {
        f32::from_bits(t.to_bits().wrapping_add((127 + bias) as u32) << 23)
    }
    #[inline(always)]
    fn fpow2_from_magic_lanes(self, t: f32, bias: f32) -> f32 {
        f32::from_bits(t.to_bits().wrapping_add(bias.to_bits()) << 23)
    }
    #[inline(always)]
    fn widen_scaled(self, v: f32, _part: usize) -> f64 {
        f64::from_bits((v.to_bits() as u64) << 29)
    }
    #[inline(always)]
    fn natural_lanes(self, _parts: &mut [f64]) {}
    #[inline(always)]
    unsafe fn fload(self, p: *const f32) -> f32 {
        // SAFETY: caller guarantees one readable element.
        unsafe { p.read_unaligned() }
    }
    #[inline(always)]
    unsafe fn fstore(self, p: *mut f32, v: f32) {
        // SAFETY: caller guarantees one writable element.
        unsafe { p.write_unaligned(v) }
    }
    #[inline(always)]
    unsafe fn load_f64_first(self, p: *const f64, _count: usize, _fill: f64) -> f64 {
        // SAFETY: count is 1 here; the caller guarantees it is readable.
        unsafe { p.read_unaligned() }
    }
    #[inline(always)]
    unsafe fn fload_first(self, p: *const f32, _count: usize, _fill: f32) -> f32 {
        // SAFETY: count is 1 here; the caller guarantees it is readable.
        unsafe { p.read_unaligned() }
    }
    #[inline(always)]
    unsafe fn load_f64(self, p: *const f64) -> f64 {
        // SAFETY: caller guarantees one readable element.
        unsafe { p.read_unaligned() }
    }
    #[inline(always)]
    unsafe fn load_f32(self, p: *const f32) -> f64 {
        // SAFETY: caller guarantees one readable element.
        unsafe { p.read_unaligned() as f64 }
    }
    #[inline(always)]
    unsafe fn store_f64(self, p: *mut f64, v: f64) {
        // SAFETY: caller guarantees one writable element.
        unsafe { p.write_unaligned(v) }
    }
    #[inline(always)]
    unsafe fn store_f32(self, p: *mut f32, v: f64) {
        // SAFETY: caller guarantees one writable element.
        unsafe { p.write_unaligned(v as f32) }
    }
}

/// Run `op` on the scalar path compiled with FMA enabled, so `mul_add` is one instruction
/// instead of a call to libm's software `fma` (the results are identical: both round once).
///
/// # Safety
/// The CPU must support FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
pub unsafe fn run_with_fma<W: super::WithSimd>(op: W) -> W::Output {
    op.with_simd(Scalar)
}
