//! A small SIMD abstraction over `f64` and `f32` lanes, the instruction sets it runs on, and the
//! runtime dispatch between them.
//!
//! One trait covers both lane types and the conversions between them (f32 terms reach their
//! exact f64 sums through [`Simd::widen_scaled`]; f32 arrays load into f64 lanes and store
//! back from them). A kernel is written once as a
//! generic function over [`Simd`] and run through [`dispatch`], which picks the instruction set
//! detected at run time (or forced with `SMOOTHMAX_SIMD`). The scalar implementation uses the
//! same operations with the same rounding (`mul_add` is a fused multiply-add), and kernels
//! accumulate into [`VLANES`] virtual lanes whatever the hardware width, so **every path returns
//! bit-identical results**; tests compare them exactly.
//!
//! Why not `pulp`: its dispatch needs an opt-in feature for AVX-512 and it has no widening
//! f32→f64 conversions or exponent construction from a rounded magic sum; the few dozen
//! operations needed here are short enough to state directly over `std::arch`.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

pub mod scalar;
#[cfg(target_arch = "x86_64")]
pub mod x86_avx2;
#[cfg(target_arch = "x86_64")]
pub mod x86_avx512;

/// Ask the cache for the line holding `p`: a hint, which never faults whatever `p` points at,
/// so it may be any address (a no-op off x86-64).
#[inline(always)]
pub fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is SSE, part of x86-64's baseline, and reads nothing architecturally.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Number of virtual accumulator lanes every kernel uses, whatever the hardware width.
///
/// Element `i` of a row always lands in virtual lane `i % VLANES`, and the lanes are combined by
/// the same fixed tree, so sums do not depend on the instruction set.
pub const VLANES: usize = 16;

/// Element types the kernels read and write: `f32` and `f64`, both computed in `f64` lanes.
pub trait Element: Copy + Send + Sync + 'static {
    /// Load [`Simd::LANES`] elements from `ptr`, widened to `f64`.
    ///
    /// # Safety
    /// `ptr` must be valid for reading `S::LANES` elements.
    unsafe fn load<S: Simd>(s: S, ptr: *const Self) -> S::V;
    /// Store [`Simd::LANES`] lanes to `ptr`, rounded to nearest for `f32`.
    ///
    /// # Safety
    /// `ptr` must be valid for writing `S::LANES` elements.
    unsafe fn store<S: Simd>(s: S, ptr: *mut Self, v: S::V);
    /// Widen to `f64` (exact).
    fn to_f64(self) -> f64;
    /// Round from `f64` to nearest.
    fn from_f64(x: f64) -> Self;
    /// `true` for `f64`: sums need compensation and `x - max` needs its rounding error carried.
    const IS_F64: bool;
    /// The row passes' work per element in float32 elements (what the threads' threshold
    /// counts): float64 softmax, log_softmax and logsumexp take 3.0–3.4× float32's time per
    /// element on the AVX2 development VM (`benches/threads.py` prints both).
    const WORK: usize;
}

impl Element for f32 {
    #[inline(always)]
    unsafe fn load<S: Simd>(s: S, ptr: *const f32) -> S::V {
        // SAFETY: forwarded contract.
        unsafe { s.load_f32(ptr) }
    }
    #[inline(always)]
    unsafe fn store<S: Simd>(s: S, ptr: *mut f32, v: S::V) {
        // SAFETY: forwarded contract.
        unsafe { s.store_f32(ptr, v) }
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn from_f64(x: f64) -> f32 {
        x as f32
    }
    const IS_F64: bool = false;
    const WORK: usize = 1;
}

impl Element for f64 {
    #[inline(always)]
    unsafe fn load<S: Simd>(s: S, ptr: *const f64) -> S::V {
        // SAFETY: forwarded contract.
        unsafe { s.load_f64(ptr) }
    }
    #[inline(always)]
    unsafe fn store<S: Simd>(s: S, ptr: *mut f64, v: S::V) {
        // SAFETY: forwarded contract.
        unsafe { s.store_f64(ptr, v) }
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_f64(x: f64) -> f64 {
        x
    }
    const IS_F64: bool = true;
    const WORK: usize = 3;
}

/// `2⁸⁹⁶`: the factor that undoes [`Simd::widen_scaled`]'s scaling (exact while the result is
/// finite).
pub const WIDEN_SCALE: f64 = f64::from_bits((1023 + 896) << 52);

/// Operations on a vector of `LANES` `f64` values.
///
/// Semantics are those of the x86 instructions, reproduced exactly by [`scalar::Scalar`]:
/// `max`/`min` return the **second** operand when either is NaN; `fma` rounds once.
pub trait Simd: Copy + Send + Sync + 'static {
    /// Number of `f64` lanes in [`Simd::V`]; divides [`VLANES`].
    const LANES: usize;
    /// A vector of `LANES` doubles.
    type V: Copy;
    /// A per-lane boolean mask.
    type M: Copy;

    /// All lanes set to `x`.
    fn splat(self, x: f64) -> Self::V;
    /// `a + b`.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a - b`.
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b`.
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a / b`, correctly rounded.
    fn div(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b + c`, rounded once.
    fn fma(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `if a > b { a } else { b }`: returns `b` when either is NaN.
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    /// `if a < b { a } else { b }`: returns `b` when either is NaN.
    fn min(self, a: Self::V, b: Self::V) -> Self::V;
    /// Lanes where `v` is NaN.
    fn is_nan(self, v: Self::V) -> Self::M;
    /// Lanes where `a == b` (false for NaN).
    fn eq(self, a: Self::V, b: Self::V) -> Self::M;
    /// Lanes where `a >= b` (false for NaN).
    fn ge(self, a: Self::V, b: Self::V) -> Self::M;
    /// Lane-wise `m1 | m2`.
    fn or(self, a: Self::M, b: Self::M) -> Self::M;
    /// No lane set.
    fn none(self) -> Self::M;
    /// Whether any lane is set.
    fn any(self, m: Self::M) -> bool;
    /// `if m { a } else { b }` per lane.
    fn select(self, m: Self::M, a: Self::V, b: Self::V) -> Self::V;
    /// `2^k` for lanes holding `t = k + MAGIC` (see [`crate::math::exp::MAGIC`]) with
    /// `-1022 <= k <= 1023`: the exponent field is built from the low bits of `t`.
    fn pow2_from_magic(self, t: Self::V) -> Self::V;
    /// `(2^{k/16}, c_j)` for lanes holding `t = k + MAGIC` with `k = 16e + j`,
    /// `−1023 ≤ e ≤ 1023`: `2^e·T_j`, `T_j` = `2^{j/16}` rounded (the entry `j` of
    /// [`POW2_SIXTEENTHS`], with `j` added back and `e` added to the exponent field by an
    /// integer add of `t`'s low bits, shifted), and the correction
    /// [`POW2_SIXTEENTHS_CORRECTION`]`[j]`. The low four bits of `t` index both tables: two
    /// two-register permutes on AVX-512, a 16-byte load per lane on AVX2. At `e = −1023` the
    /// exponent field is 0 and the first result is `(T_j − 1)·2⁻¹⁰²²` (0 for `j = 0`), not
    /// `2^{k/16}`.
    fn pow2_sixteenths_from_magic(self, t: Self::V) -> (Self::V, Self::V);
    /// `(k, f)` with `v = 2^k · f`, `f ∈ [1, 2)` and `k` exact, for lanes holding a positive
    /// normal `v`: its exponent and significand fields (integer operations only).
    fn split_exponent(self, v: Self::V) -> (Self::V, Self::V);

    /// Number of `f32` lanes in [`Simd::F`]: `LANES` or `2 · LANES`; divides [`VLANES`].
    const LANES32: usize;
    /// A vector of `LANES32` floats.
    type F: Copy;
    /// A per-lane boolean mask for [`Simd::F`].
    type FM: Copy;

    /// All f32 lanes set to `x`.
    fn fsplat(self, x: f32) -> Self::F;
    /// `a + b` (f32).
    fn fadd(self, a: Self::F, b: Self::F) -> Self::F;
    /// `a - b` (f32).
    fn fsub(self, a: Self::F, b: Self::F) -> Self::F;
    /// `a * b` (f32).
    fn fmul(self, a: Self::F, b: Self::F) -> Self::F;
    /// `a * b + c`, rounded once (f32).
    fn ffma(self, a: Self::F, b: Self::F, c: Self::F) -> Self::F;
    /// `if a > b { a } else { b }` (f32): `b` when either is NaN.
    fn fmax(self, a: Self::F, b: Self::F) -> Self::F;
    /// `if a < b { a } else { b }` (f32): `b` when either is NaN.
    fn fmin(self, a: Self::F, b: Self::F) -> Self::F;
    /// Lanes where `v` is NaN.
    fn fis_nan(self, v: Self::F) -> Self::FM;
    /// Lanes where `a == b`.
    fn feq(self, a: Self::F, b: Self::F) -> Self::FM;
    /// Lanes where `a < b`.
    fn flt(self, a: Self::F, b: Self::F) -> Self::FM;
    /// Lanes where `a >= b`.
    fn fge(self, a: Self::F, b: Self::F) -> Self::FM;
    /// Lane-wise `a & b`.
    fn fmand(self, a: Self::FM, b: Self::FM) -> Self::FM;
    /// Lane-wise `a | b`.
    fn fmor(self, a: Self::FM, b: Self::FM) -> Self::FM;
    /// No lane set.
    fn fmnone(self) -> Self::FM;
    /// Whether any lane is set.
    fn fmany(self, m: Self::FM) -> bool;
    /// `if m { v } else { 0 }` per lane.
    fn fkeep(self, m: Self::FM, v: Self::F) -> Self::F;
    /// `if m { 0 } else { v }` per lane.
    fn fdrop(self, m: Self::FM, v: Self::F) -> Self::F;
    /// Whether [`Simd::ffma_drop`] and [`Simd::fadd_keep`] cost one instruction (AVX-512's
    /// masked forms); elsewhere they take an `and` besides, so callers that can drop an
    /// operand once for several operations do that instead.
    const FREE_MASKS: bool;
    /// `if m { 0 } else { a·b + c }` per lane, rounded once.
    #[inline(always)]
    fn ffma_drop(self, m: Self::FM, a: Self::F, b: Self::F, c: Self::F) -> Self::F {
        self.fdrop(m, self.ffma(a, b, c))
    }
    /// `if m { a + b } else { a }` per lane (`a + 0` where the mask is clear, which is `a` but
    /// for `a = −0`).
    #[inline(always)]
    fn fadd_keep(self, m: Self::FM, a: Self::F, b: Self::F) -> Self::F {
        self.fadd(a, self.fkeep(m, b))
    }
    /// `2^(k + bias)` for lanes holding `t = k + MAGIC32` (see [`crate::math::exp32`]), valid
    /// while `k + bias` is in [−126, 127].
    fn fpow2_from_magic(self, t: Self::F, bias: i32) -> Self::F;
    /// [`Simd::fpow2_from_magic`] with a bias per lane: the exponent field is the low 9 bits of
    /// the integer sum of the bit patterns of `t` and `bias`, so `bias` may hold
    /// `MAGIC32 + 127 + bias_lane` (its bits end in `127 + bias_lane`; integer operations only).
    fn fpow2_from_magic_lanes(self, t: Self::F, bias: Self::F) -> Self::F;
    /// Non-negative float lanes of `v` times [`WIDEN_SCALE`]⁻¹ = 2⁻⁸⁹⁶ as doubles, exactly (zero
    /// and subnormals included: a float's bits shifted into a double's place are that float
    /// times 2⁻⁸⁹⁶), `part < LANES32 / LANES`. Which lanes a part holds is the ISA's (in-lane
    /// unpacks: AVX2 lanes 0, 1, 4, 5 and 2, 3, 6, 7, AVX-512 the same pattern over 16 lanes);
    /// [`Simd::natural_lanes`] puts per-lane sums of the parts back in lane order. On AVX2 this
    /// is 4 integer operations per 8 floats where widening by conversion takes 2 `vcvtps2pd`,
    /// which one port runs (the float32 sum passes ran 9% faster in a C probe,
    /// `benches/probes/exp_sum_passes.c`); on AVX-512, 4 per 16 floats, against 5 for a
    /// zero-extension in lane order, which needs the upper half extracted first, and the 3 of
    /// an extract and two `vcvtps2pd`, which measured as slow as the zero-extension there
    /// (`benches/probes/softmax_passes_avx512.c`).
    fn widen_scaled(self, v: Self::F, part: usize) -> Self::V;
    /// Per-lane sums of the parts `0 .. LANES32 / LANES` of [`Simd::widen_scaled`] of the same
    /// float lanes (`parts`, in part order), rearranged in place so that part `p` holds lanes
    /// `p·LANES .. (p+1)·LANES`.
    fn natural_lanes(self, parts: &mut [Self::V]);
    /// Load `LANES32` floats.
    ///
    /// # Safety
    /// `p` must be valid for reading `LANES32` floats.
    unsafe fn fload(self, p: *const f32) -> Self::F;
    /// Store `LANES32` floats.
    ///
    /// # Safety
    /// `p` must be valid for writing `LANES32` floats.
    unsafe fn fstore(self, p: *mut f32, v: Self::F);
    /// The first `count` floats at `p` (`1 ≤ count ≤ LANES32`), the other lanes `fill`; the
    /// floats past `count` are not read. A row's last partial vector, read in place: copying
    /// the tail into a padded buffer made the vector loads wait for the copy's narrower
    /// stores (store forwarding fails), up to ~2× the time of 33–129-element rows.
    ///
    /// # Safety
    /// `p` must be valid for reading `count` floats.
    unsafe fn fload_first(self, p: *const f32, count: usize, fill: f32) -> Self::F;

    /// Load `LANES` doubles.
    ///
    /// # Safety
    /// `p` must be valid for reading `LANES` doubles.
    unsafe fn load_f64(self, p: *const f64) -> Self::V;
    /// Load `LANES` floats, widened.
    ///
    /// # Safety
    /// `p` must be valid for reading `LANES` floats.
    unsafe fn load_f32(self, p: *const f32) -> Self::V;
    /// The first `count` doubles at `p` (`1 ≤ count ≤ LANES`), the other lanes `fill`; the
    /// doubles past `count` are not read (see [`Simd::fload_first`]).
    ///
    /// # Safety
    /// `p` must be valid for reading `count` doubles.
    unsafe fn load_f64_first(self, p: *const f64, count: usize, fill: f64) -> Self::V;
    /// Store `LANES` doubles.
    ///
    /// # Safety
    /// `p` must be valid for writing `LANES` doubles.
    unsafe fn store_f64(self, p: *mut f64, v: Self::V);
    /// Store `LANES` floats, each rounded to nearest.
    ///
    /// # Safety
    /// `p` must be valid for writing `LANES` floats.
    unsafe fn store_f32(self, p: *mut f32, v: Self::V);

    /// Copy an 8 × 8 block of floats transposed: float `k` of `src[j]` goes to float `j` of
    /// `dst[k]`. Data movement only, so every ISA gives the same result; this default is the
    /// scalar path's, vector ISAs shuffle in registers (the column tiles of short rows).
    ///
    /// # Safety
    /// Each `src[j]` must be readable and each `dst[k]` writable for 8 floats, and the two
    /// sides must not overlap.
    #[inline(always)]
    unsafe fn transpose8_f32(self, src: &[*const f32; 8], dst: &[*mut f32; 8]) {
        for (k, d) in dst.iter().enumerate() {
            for (j, p) in src.iter().enumerate() {
                // SAFETY: the caller's contract.
                unsafe { *d.add(j) = *p.add(k) };
            }
        }
    }

    /// [`Simd::transpose8_f32`] for a 4 × 4 block of doubles.
    ///
    /// # Safety
    /// Each `src[j]` must be readable and each `dst[k]` writable for 4 doubles, and the two
    /// sides must not overlap.
    #[inline(always)]
    unsafe fn transpose4_f64(self, src: &[*const f64; 4], dst: &[*mut f64; 4]) {
        for (k, d) in dst.iter().enumerate() {
            for (j, p) in src.iter().enumerate() {
                // SAFETY: the caller's contract.
                unsafe { *d.add(j) = *p.add(k) };
            }
        }
    }
}

/// `2^{j/16}` rounded to the nearest double (`T_j`), with `j·2⁴⁸` taken from its bits, for
/// [`Simd::pow2_sixteenths_from_magic`]: adding `k·2⁴⁸` (`k = 16e + j`) to entry `j` puts `j`
/// back and adds `e` to the exponent field. The test `pow2_sixteenths_are_rounded_powers`
/// checks every entry against `2^{j/16}` in 50 digits.
pub const POW2_SIXTEENTHS: [f64; 16] = [
    f64::from_bits(0x3FF0_0000_0000_0000),
    f64::from_bits(0x3FEF_B558_6CF9_890F),
    f64::from_bits(0x3FEF_72B8_3C7D_517B),
    f64::from_bits(0x3FEF_387A_6E75_6238),
    f64::from_bits(0x3FEF_06FE_0A31_B715),
    f64::from_bits(0x3FEE_DEA6_4C12_3422),
    f64::from_bits(0x3FEE_BFDA_D536_2A27),
    f64::from_bits(0x3FEE_AB07_DD48_5429),
    f64::from_bits(0x3FEE_A09E_667F_3BCD),
    f64::from_bits(0x3FEE_A114_73EB_0187),
    f64::from_bits(0x3FEE_ACE5_422A_A0DB),
    f64::from_bits(0x3FEE_C491_82A3_F090),
    f64::from_bits(0x3FEE_E89F_995A_D3AD),
    f64::from_bits(0x3FEF_199B_DD85_529C),
    f64::from_bits(0x3FEF_5818_DCFB_A487),
    f64::from_bits(0x3FEF_A4AF_A2A4_90DA),
];

/// `(2^{j/16} − T_j)/T_j` rounded to double, `T_j` = `2^{j/16}` rounded (up to 0.74 ULP):
/// the second result of [`Simd::pow2_sixteenths_from_magic`].
pub const POW2_SIXTEENTHS_CORRECTION: [f64; 16] = [
    0.0,
    8.189_317_638_195_515e-17,
    -2.793_911_485_951_573_3e-17,
    7.826_573_258_636_076e-17,
    3.348_462_333_625_152_4e-17,
    3.750_854_201_303_127e-17,
    1.957_258_529_311_203_6e-17,
    5.686_480_957_911_74e-17,
    -6.835_808_657_661_922e-17,
    -2.359_109_477_085_005_3e-17,
    5.154_830_117_078_678_3e-17,
    1.534_141_005_360_372_3e-17,
    4.875_160_526_227_062e-17,
    1.685_487_290_628_973e-17,
    1.790_126_907_604_513e-17,
    -5.545_065_618_639_427e-17,
];

/// [`POW2_SIXTEENTHS`] and [`POW2_SIXTEENTHS_CORRECTION`] side by side, for one 16-byte load
/// per lane.
pub(crate) const POW2_SIXTEENTHS_PAIRS: [[f64; 2]; 16] = {
    let mut pairs = [[0.0; 2]; 16];
    let mut j = 0;
    while j < 16 {
        pairs[j] = [POW2_SIXTEENTHS[j], POW2_SIXTEENTHS_CORRECTION[j]];
        j += 1;
    }
    pairs
};

/// The bits of `2⁵²`: or-ed with a biased exponent `e < 2¹¹`, they spell `2⁵² + e`.
pub(crate) const TWO_52_BITS: i64 = 0x4330_0000_0000_0000;
/// `2⁵² + 1023`: subtracted from `2⁵² + e`, it leaves the unbiased exponent.
pub(crate) const TWO_52_PLUS_BIAS: f64 = 4_503_599_627_370_496.0 + 1023.0;
/// The significand field of an f64.
pub(crate) const SIGNIFICAND: i64 = 0x000F_FFFF_FFFF_FFFF;
/// The bits of `1.0`.
pub(crate) const ONE_BITS: i64 = 0x3FF0_0000_0000_0000;

/// A computation to run with the best available [`Simd`] implementation.
pub trait WithSimd {
    /// What the computation returns.
    type Output;
    /// Run the computation with `s`. Implementations should be `#[inline(always)]` so that the
    /// whole kernel is compiled inside the target-feature entry point of each ISA.
    fn with_simd<S: Simd>(self, s: S) -> Self::Output;
}

/// An instruction set a kernel can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable Rust; the reference every other path must match bit for bit.
    Scalar,
    /// x86-64 AVX2 + FMA (4 `f64` lanes).
    Avx2,
    /// x86-64 AVX-512F (8 `f64` lanes).
    Avx512,
}

impl Isa {
    /// Every ISA, fastest last.
    pub const ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2, Isa::Avx512];

    /// The name used by `SMOOTHMAX_SIMD` and `smoothmax.simd_level()`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Parse a name accepted by `SMOOTHMAX_SIMD`.
    pub fn from_name(name: &str) -> Option<Isa> {
        match name.trim().to_ascii_lowercase().as_str() {
            "scalar" => Some(Isa::Scalar),
            "avx2" => Some(Isa::Avx2),
            "avx512" => Some(Isa::Avx512),
            _ => None,
        }
    }

    /// Whether this CPU can run the ISA.
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Every ISA this CPU supports.
    pub fn supported() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.is_supported()).collect()
    }

    /// The fastest ISA this CPU supports.
    pub fn best() -> Isa {
        *Isa::supported().last().unwrap_or(&Isa::Scalar)
    }

    fn code(self) -> u8 {
        self as u8 + 1
    }

    fn from_code(c: u8) -> Option<Isa> {
        Isa::ALL.into_iter().find(|i| i.code() == c)
    }
}

/// The ISA in use; 0 = not chosen yet.
static ACTIVE: AtomicU8 = AtomicU8::new(0);
/// The outcome of reading `SMOOTHMAX_SIMD` once.
static FROM_ENV: OnceLock<Result<Isa, String>> = OnceLock::new();

/// Name of the environment variable that forces an ISA.
pub const SIMD_ENV: &str = "SMOOTHMAX_SIMD";

fn isa_from_env() -> Result<Isa, String> {
    match std::env::var(SIMD_ENV) {
        Err(_) => Ok(Isa::best()),
        Ok(v) if v.trim().is_empty() => Ok(Isa::best()),
        Ok(v) if v.trim().eq_ignore_ascii_case("neon") => Err(format!(
            "{SIMD_ENV}=neon: this build has no NEON path yet (aarch64 runs the scalar path, \
             which uses hardware FMA); use 'scalar' or unset {SIMD_ENV}"
        )),
        Ok(v) => {
            let isa = Isa::from_name(&v).ok_or_else(|| {
                format!("{SIMD_ENV}={v:?} is not one of 'scalar', 'avx2', 'avx512' (or unset)")
            })?;
            check_supported(isa)?;
            Ok(isa)
        }
    }
}

fn check_supported(isa: Isa) -> Result<(), String> {
    if isa.is_supported() {
        Ok(())
    } else {
        let have: Vec<&str> = Isa::supported().iter().map(|i| i.name()).collect();
        Err(format!(
            "this CPU does not support the '{}' SIMD path (supported: {})",
            isa.name(),
            have.join(", ")
        ))
    }
}

/// The ISA kernels run on: `SMOOTHMAX_SIMD` if set (read once), else the best the CPU supports;
/// [`force_isa`] overrides both.
pub fn active_isa() -> Result<Isa, String> {
    if let Some(isa) = Isa::from_code(ACTIVE.load(Ordering::Relaxed)) {
        return Ok(isa);
    }
    let isa = FROM_ENV.get_or_init(isa_from_env).clone()?;
    ACTIVE.store(isa.code(), Ordering::Relaxed);
    Ok(isa)
}

/// Select the ISA for all later calls (tests use this to run every path in one process).
pub fn force_isa(isa: Isa) -> Result<(), String> {
    check_supported(isa)?;
    ACTIVE.store(isa.code(), Ordering::Relaxed);
    Ok(())
}

/// Run `op` on `isa`.
///
/// # Panics
/// If `isa` is not supported by this CPU (callers get ISAs from [`active_isa`], which checks).
#[inline]
pub fn dispatch<W: WithSimd>(isa: Isa, op: W) -> W::Output {
    assert!(isa.is_supported(), "SIMD path {} not supported", isa.name());
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: FMA support was just checked.
        Isa::Scalar if is_x86_feature_detected!("fma") => unsafe { scalar::run_with_fma(op) },
        Isa::Scalar => op.with_simd(scalar::Scalar),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: support for AVX2 and FMA was checked above.
        Isa::Avx2 => unsafe { x86_avx2::run(op) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: support for AVX-512F was checked above.
        Isa::Avx512 => unsafe { x86_avx512::run(op) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!(),
    }
}
