//! The float32 row passes in f32 lanes (twice the lanes of the f64 path), used for float32 data
//! without a temperature or weights.
//!
//! Accuracy is kept by the same means as the f64 path, in f32 arithmetic where it is exact:
//! `x − m` is carried as a TwoSum pair into [`exp32_parts`]; the sum takes `e = 2^k(1 + t)`
//! widened to f64 before anything is rounded (scaled by 2⁶⁴ so every `2^k` is a normal f32);
//! the max entries are counted apart, so `S − 1` keeps its relative accuracy for `log1p`.
//! softmax keeps each exact `e` in an f64 stash and rounds `e / S` once; log_softmax rounds
//! `(x − m) − log S`, computed in f64, once.
//!
//! Elements map to the same 16 virtual lanes as the f64 path (`i % 16`), so every ISA returns
//! bit-identical results.

// Kernels index several per-lane arrays with one virtual-lane index; iterators would hide that.
#![allow(clippy::needless_range_loop)]

use super::rows::{tree, two_sum, ExpSum};
use crate::math::exp32::{exp32_parts, X_LOW};
use crate::simd::{Simd, VLANES};

/// `2⁶⁴`: sums are scaled by it so that `2^(k+64)` is a normal float for every kept `k`.
pub(crate) const SCALE: f64 = 18_446_744_073_709_551_616.0;

/// f32 vectors per chunk of [`VLANES`] elements.
#[inline(always)]
pub(crate) fn nf<S: Simd>() -> usize {
    VLANES / S::LANES32
}

/// f64 vectors per f32 vector.
#[inline(always)]
pub(crate) fn ratio<S: Simd>() -> usize {
    S::LANES32 / S::LANES
}

/// Load one chunk of `VLANES` floats as `VLANES / LANES32` vectors.
///
/// # Safety
/// `p` must be valid for reading `VLANES` floats.
#[inline(always)]
unsafe fn load_chunk<S: Simd>(s: S, p: *const f32) -> [S::F; VLANES] {
    let mut v = [s.fsplat(0.0); VLANES];
    for j in 0..nf::<S>() {
        // SAFETY: j·LANES32 + LANES32 <= VLANES floats are readable.
        v[j] = unsafe { s.fload(p.add(j * S::LANES32)) };
    }
    v
}

/// The last `len < VLANES` floats, padded with `pad`.
///
/// # Safety
/// `p` must be valid for reading `len` floats.
#[inline(always)]
unsafe fn tail_chunk(p: *const f32, len: usize, pad: f32) -> [f32; VLANES] {
    let mut buf = [pad; VLANES];
    // SAFETY: `len` floats readable; `buf` holds VLANES >= len.
    unsafe { std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), len) };
    buf
}

/// The work on one chunk of 16 elements. A trait rather than a closure: a closure is compiled
/// as its own function, outside the ISA's target features, and would not inline intrinsics.
trait ChunkOp<S: Simd> {
    /// Process `v`; `out` (if non-null) has room for a whole chunk of results.
    ///
    /// # Safety
    /// A non-null `out` must be writable for `VLANES` floats.
    unsafe fn chunk(&mut self, s: S, v: &[S::F; VLANES], out: *mut f32);
}

/// Visit the row chunk by chunk; the tail is padded with `−inf` and written back partially.
///
/// # Safety
/// `x` readable and `out` (if non-null) writable for `n` floats; they may be equal.
#[inline(always)]
unsafe fn for_chunks<S: Simd, Op: ChunkOp<S>>(
    s: S,
    x: *const f32,
    out: *mut f32,
    n: usize,
    op: &mut Op,
) {
    let full = n - n % VLANES;
    let mut i = 0;
    while i < full {
        // SAFETY: i + VLANES <= n for x and out.
        unsafe {
            let v = load_chunk::<S>(s, x.add(i));
            let o = if out.is_null() { out } else { out.add(i) };
            op.chunk(s, &v, o);
        }
        i += VLANES;
    }
    if i < n {
        // SAFETY: n − i floats remain; results go to a chunk-sized buffer first.
        unsafe {
            let buf = tail_chunk(x.add(i), n - i, f32::NEG_INFINITY);
            let v = load_chunk::<S>(s, buf.as_ptr());
            let mut res = [0.0f32; VLANES];
            op.chunk(s, &v, if out.is_null() { out } else { res.as_mut_ptr() });
            if !out.is_null() {
                std::ptr::copy_nonoverlapping(res.as_ptr(), out.add(i), n - i);
            }
        }
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

/// Spill f64 vectors to the 16 virtual lanes.
#[inline(always)]
fn spill64<S: Simd>(s: S, acc: &[S::V; VLANES]) -> [f64; VLANES] {
    let mut out = [0.0f64; VLANES];
    for j in 0..VLANES / S::LANES {
        // SAFETY: out has room for VLANES doubles.
        unsafe { s.store_f64(out.as_mut_ptr().add(j * S::LANES), acc[j]) };
    }
    out
}

struct MaxOp<S: Simd> {
    acc: [S::F; VLANES],
    nan: S::FM,
}

impl<S: Simd> ChunkOp<S> for MaxOp<S> {
    #[inline(always)]
    unsafe fn chunk(&mut self, s: S, v: &[S::F; VLANES], _out: *mut f32) {
        for j in 0..nf::<S>() {
            // fmax(v, acc) returns acc when v is NaN: the NaN is tracked in `nan` instead.
            self.acc[j] = s.fmax(v[j], self.acc[j]);
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
        acc: [s.fsplat(f32::NEG_INFINITY); VLANES],
        nan: s.fmnone(),
    };
    // SAFETY: forwarded contract.
    unsafe { for_chunks(s, x, std::ptr::null_mut(), n, &mut op) };
    let (acc, nan) = (op.acc, op.nan);
    let m = tree(spill32(s, &acc), |a, b| if a > b { a } else { b });
    (m, s.fmany(nan))
}

/// `x − m` as an exact pair `(hi, lo)`; `lo` is −1 (harmless: the argument is clamped) where
/// `x = −inf` made it NaN.
#[inline(always)]
fn shifted<S: Simd>(s: S, x: S::F, m: S::F, neg_m: S::F) -> (S::F, S::F) {
    let d = s.fsub(x, m);
    let bb = s.fsub(d, x);
    let lo = s.fadd(s.fsub(x, s.fsub(d, bb)), s.fsub(neg_m, bb));
    (d, s.fmax(lo, s.fsplat(-1.0)))
}

/// `STASH`: softmax (keep every `2^(k+64)(1 + t)`); else logsumexp / log_softmax (max entries
/// counted apart). A compile-time switch keeps the branch out of the hot loop.
struct SumOp<S: Simd, const STASH: bool> {
    m: S::F,
    neg_m: S::F,
    acc: [S::V; VLANES],
    ties: [S::F; VLANES],
    /// Where the next chunk's `2^(k+64)(1 + t)` go (`STASH` only).
    stash: *mut f64,
}

impl<S: Simd, const STASH: bool> ChunkOp<S> for SumOp<S, STASH> {
    #[inline(always)]
    unsafe fn chunk(&mut self, s: S, v: &[S::F; VLANES], _out: *mut f32) {
        let zero = s.fsplat(0.0);
        for j in 0..nf::<S>() {
            let (d_hi, d_lo) = shifted(s, v[j], self.m, self.neg_m);
            let p = exp32_parts(s, d_hi, d_lo);
            let t = p.t(s);
            let mut p2 = s.fpow2_from_magic(p.k_magic, 64);
            if !STASH {
                // Max entries (d = 0) are counted, not summed; clamped ones contribute 0.
                let at_max = s.feq(d_hi, zero);
                self.ties[j] = s.fadd(self.ties[j], s.fkeep(at_max, s.fsplat(1.0)));
                p2 = s.fkeep(s.fmand(s.fge(d_hi, s.fsplat(X_LOW)), s.flt(d_hi, zero)), p2);
            }
            for i in 0..ratio::<S>() {
                let pw = s.widen(p2, i);
                // 2^(k+64)·(1 + t), exact in f64.
                let e = s.fma(s.widen(t, i), pw, pw);
                let a = j * ratio::<S>() + i;
                self.acc[a] = s.add(self.acc[a], e);
                if STASH {
                    // SAFETY: the stash is padded to hold whole chunks (see `row_sum`).
                    unsafe { s.store_f64(self.stash.add(a * S::LANES), e) };
                }
            }
        }
        if STASH {
            // SAFETY: as above; the next chunk starts VLANES doubles later.
            self.stash = unsafe { self.stash.add(VLANES) };
        }
    }
}

/// Pass 2: `S = Σ e^{x_i − m}`. With `STASH` (softmax), `2⁶⁴·e^{x_i − m}` is also
/// written to `stash[i]`, exactly as summed, and the returned sum is scaled by 2⁶⁴ too;
/// otherwise the max entries are counted apart for the `log1p` form.
///
/// # Safety
/// `x` readable for `n` floats; with `STASH`, `stash` writable for `n + VLANES` doubles;
/// `m` finite.
#[inline(always)]
pub(crate) unsafe fn row_sum<S: Simd, const STASH: bool>(
    s: S,
    x: *const f32,
    n: usize,
    m: f32,
    stash: *mut f64,
) -> ExpSum {
    let mut op = SumOp::<S, STASH> {
        m: s.fsplat(m),
        neg_m: s.fsplat(-m),
        acc: [s.splat(0.0); VLANES],
        ties: [s.fsplat(0.0); VLANES],
        stash,
    };
    // SAFETY: forwarded contract.
    unsafe { for_chunks(s, x, std::ptr::null_mut(), n, &mut op) };
    let (acc, ties) = (op.acc, op.ties);
    let total = tree(spill64(s, &acc), |a, b| a + b);
    if STASH {
        return ExpSum {
            hi: total,
            lo: 0.0,
            below_single_max: None,
        };
    }
    let total = total / SCALE;
    let count = tree(spill32(s, &ties), |a, b| a + b) as f64;
    let (hi, lo) = two_sum(count, total);
    ExpSum {
        hi,
        lo,
        below_single_max: (count == 1.0).then_some(total),
    }
}

/// Pass 3 for log_softmax: `out_i = (x_i − m) − log S`, in f64 (where `x − m` is exact), rounded
/// once.
///
/// # Safety
/// `x` readable and `out` writable for `n` floats; they may be equal.
#[inline(always)]
pub(crate) unsafe fn write_log_softmax<S: Simd>(
    s: S,
    x: *const f32,
    out: *mut f32,
    n: usize,
    m: f32,
    log_s: f64,
) {
    let mut op = LogSoftmaxOp::<S> {
        m: s.splat(m as f64),
        log_s: s.splat(log_s),
    };
    // SAFETY: forwarded contract.
    unsafe { for_chunks(s, x, out, n, &mut op) }
}

struct LogSoftmaxOp<S: Simd> {
    m: S::V,
    log_s: S::V,
}

impl<S: Simd> ChunkOp<S> for LogSoftmaxOp<S> {
    #[inline(always)]
    unsafe fn chunk(&mut self, s: S, v: &[S::F; VLANES], out: *mut f32) {
        for j in 0..nf::<S>() {
            let lo = s.sub(s.sub(s.widen(v[j], 0), self.m), self.log_s);
            let hi = if ratio::<S>() > 1 {
                s.sub(s.sub(s.widen(v[j], 1), self.m), self.log_s)
            } else {
                lo
            };
            // SAFETY: `out` has room for a whole chunk (the trait's contract).
            unsafe { s.fstore(out.add(j * S::LANES32), s.narrow(lo, hi)) };
        }
    }
}

/// logsumexp of a float32 row (`−inf` when empty).
///
/// # Safety
/// `x` readable for `n` floats.
#[inline(always)]
pub(crate) unsafe fn lse_row<S: Simd>(s: S, x: *const f32, n: usize) -> f64 {
    // SAFETY (both blocks): forwarded contract.
    let (m, nan) = unsafe { row_max(s, x, n) };
    if nan {
        return f64::NAN;
    }
    if !m.is_finite() {
        return m as f64; // +inf, or -inf for empty / all -inf rows
    }
    let sum = unsafe { row_sum::<S, false>(s, x, n, m, std::ptr::null_mut()) };
    m as f64 + sum.ln()
}

/// softmax (or log_softmax when `log`) of a float32 row into `out` (which may equal `x`).
///
/// # Safety
/// `x` readable and `out` writable for `n` floats.
#[inline(always)]
pub(crate) unsafe fn softmax_row<S: Simd>(
    s: S,
    x: *const f32,
    out: *mut f32,
    n: usize,
    log: bool,
    stash: &mut Vec<f64>,
) {
    if n == 0 {
        return;
    }
    // SAFETY (all blocks): forwarded contract.
    let (m, nan) = unsafe { row_max(s, x, n) };
    if !m.is_finite() || nan {
        unsafe { super::rows::special_row(x, out, n, m as f64, nan, log) };
        return;
    }
    if log {
        let sum = unsafe { row_sum::<S, false>(s, x, n, m, std::ptr::null_mut()) };
        unsafe { write_log_softmax(s, x, out, n, m, sum.ln()) };
    } else {
        // The exact exponentials wait in the stash; each output is rounded once.
        stash.resize(n + VLANES, 0.0);
        let sp = stash.as_mut_ptr();
        let sum = unsafe { row_sum::<S, true>(s, x, n, m, sp) };
        unsafe { super::rows::write_scaled::<S, f32>(s, sp, out, n, 1.0 / sum.hi) };
    }
}
