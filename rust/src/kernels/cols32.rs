//! float32 kernels across 16 rows at once ("columns"): for reductions along a non-contiguous
//! axis (axis 0 of a C array, say) and for many short rows, where a per-row kernel pays its
//! horizontal reductions and fixed costs for every few elements.
//!
//! A tile of up to 16 rows of length `n` is laid out as `n × 16` (element `i` of row `b` at
//! `i·16 + b`, padded rows hold `−inf`), so each vector holds the same element of 16 rows and
//! every pass is elementwise. The numerics are those of [`super::rows32`] (TwoSum shift,
//! [`exp32_parts`], exact `2^(k+64)(1 + t)` summed in f64, max entries counted apart, one
//! rounding per output); each row's sum runs over `i` in order, the same on every ISA.

// Kernels index several per-lane arrays with one lane index; iterators would hide that.
#![allow(clippy::needless_range_loop)]

use super::rows::ExpSum;
use super::rows32::{nf, ratio, SCALE};
use crate::math::exp32::{exp32_parts, X_LOW};
use crate::simd::{Element, Simd, VLANES};

/// What to compute for a tile.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColOp {
    /// logsumexp of each row into `lse[b]`.
    Lse,
    /// softmax in place.
    Softmax,
    /// log_softmax in place.
    LogSoftmax,
}

/// Process one `n × 16` tile in place (`tile[i·16 + b]`). For [`ColOp::Lse`] the 16 results go
/// to `lse`. `stash` is scratch for softmax (resized as needed).
///
/// # Safety
/// `tile` must hold `n · 16` floats.
#[inline(always)]
pub(crate) unsafe fn tile<S: Simd>(
    s: S,
    tile: *mut f32,
    n: usize,
    op: ColOp,
    lse: &mut [f64; VLANES],
    stash: &mut Vec<f64>,
) {
    // Pass 1: per-lane max and NaN flags.
    let mut m = [s.fsplat(f32::NEG_INFINITY); VLANES];
    let mut nan = [s.fmnone(); VLANES];
    for i in 0..n {
        for j in 0..nf::<S>() {
            // SAFETY: i·16 + j·LANES32 + LANES32 <= n·16.
            let v = unsafe { s.fload(tile.add(i * VLANES + j * S::LANES32)) };
            m[j] = s.fmax(v, m[j]);
            nan[j] = s.fmor(nan[j], s.fis_nan(v));
        }
    }
    let mut ms = [0.0f32; VLANES];
    let mut special = [false; VLANES];
    for j in 0..nf::<S>() {
        // SAFETY: ms holds VLANES floats.
        unsafe { s.fstore(ms.as_mut_ptr().add(j * S::LANES32), m[j]) };
        if s.fmany(nan[j]) {
            let mut flags = [0.0f32; VLANES];
            // SAFETY: flags holds VLANES floats; a NaN lane stores a NaN there.
            unsafe { s.fstore(flags.as_mut_ptr(), s.fkeep(nan[j], s.fsplat(f32::NAN))) };
            for l in 0..S::LANES32 {
                special[j * S::LANES32 + l] |= flags[l].is_nan();
            }
        }
    }
    for b in 0..VLANES {
        special[b] |= !ms[b].is_finite();
        if special[b] {
            // Give the lane a finite max so the vector passes stay well defined; its results
            // are overwritten below.
            ms[b] = 0.0;
        }
    }
    for j in 0..nf::<S>() {
        // SAFETY: ms holds VLANES floats.
        m[j] = unsafe { s.fload(ms.as_ptr().add(j * S::LANES32)) };
    }
    // Rows with a NaN or no finite maximum follow the row kernels' rules at the end, from
    // their original values (rare: a copy is fine).
    // SAFETY: forwarded contract.
    let saved = unsafe { save_special_lanes(tile, n, &special) };

    // Pass 2: per-lane sums of 2^(k+64)(1 + t), max entries counted apart (except softmax,
    // which keeps every term in the stash).
    let keep = op == ColOp::Softmax;
    if keep {
        stash.resize(n * VLANES, 0.0);
    }
    let sp = stash.as_mut_ptr();
    let zero = s.fsplat(0.0);
    let mut acc = [s.splat(0.0); VLANES];
    let mut ties = [s.fsplat(0.0); VLANES];
    for i in 0..n {
        for j in 0..nf::<S>() {
            // SAFETY: as in pass 1.
            let x = unsafe { s.fload(tile.add(i * VLANES + j * S::LANES32)) };
            let d = s.fsub(x, m[j]);
            let bb = s.fsub(d, x);
            let lo = s.fadd(s.fsub(x, s.fsub(d, bb)), s.fsub(s.fsub(zero, m[j]), bb));
            let p = exp32_parts(s, d, s.fmax(lo, s.fsplat(-1.0)));
            let t = p.t(s);
            let mut p2 = s.fpow2_from_magic(p.k_magic, 64);
            if !keep {
                ties[j] = s.fadd(ties[j], s.fkeep(s.feq(d, zero), s.fsplat(1.0)));
                p2 = s.fkeep(s.fmand(s.fge(d, s.fsplat(X_LOW)), s.flt(d, zero)), p2);
            }
            for r in 0..ratio::<S>() {
                let pw = s.widen(p2, r);
                let e = s.fma(s.widen(t, r), pw, pw);
                let a = j * ratio::<S>() + r;
                acc[a] = s.add(acc[a], e);
                if keep {
                    // SAFETY: the stash holds n·16 doubles.
                    unsafe { s.store_f64(sp.add(i * VLANES + a * S::LANES), e) };
                }
            }
        }
    }
    let mut sums = [0.0f64; VLANES];
    let mut counts = [0.0f32; VLANES];
    for a in 0..VLANES / S::LANES {
        // SAFETY: sums holds VLANES doubles.
        unsafe { s.store_f64(sums.as_mut_ptr().add(a * S::LANES), acc[a]) };
    }
    for j in 0..nf::<S>() {
        // SAFETY: counts holds VLANES floats.
        unsafe { s.fstore(counts.as_mut_ptr().add(j * S::LANES32), ties[j]) };
    }
    let mut logs = [0.0f64; VLANES];
    for b in 0..VLANES {
        if keep {
            logs[b] = 1.0 / sums[b]; // stash and sum are both scaled by 2⁶⁴
        } else {
            let others = sums[b] / SCALE;
            let count = counts[b] as f64;
            let (hi, lo) = super::rows::two_sum(count, others);
            let sum = ExpSum {
                hi,
                lo,
                below_single_max: (count == 1.0).then_some(others),
            };
            logs[b] = sum.ln();
        }
    }

    // Pass 3.
    match op {
        ColOp::Lse => {
            for b in 0..VLANES {
                lse[b] = ms[b] as f64 + logs[b];
            }
        }
        ColOp::Softmax => {
            let mut inv = [s.splat(0.0); VLANES];
            for a in 0..VLANES / S::LANES {
                // SAFETY: logs holds VLANES doubles.
                inv[a] = unsafe { s.load_f64(logs.as_ptr().add(a * S::LANES)) };
            }
            for i in 0..n {
                for j in 0..nf::<S>() {
                    // SAFETY: stash and tile hold n·16 elements.
                    unsafe {
                        let a0 = j * ratio::<S>();
                        let lo = s.mul(s.load_f64(sp.add(i * VLANES + a0 * S::LANES)), inv[a0]);
                        let hi = if ratio::<S>() > 1 {
                            let a1 = a0 + 1;
                            s.mul(s.load_f64(sp.add(i * VLANES + a1 * S::LANES)), inv[a1])
                        } else {
                            lo
                        };
                        s.fstore(tile.add(i * VLANES + j * S::LANES32), s.narrow(lo, hi));
                    }
                }
            }
        }
        ColOp::LogSoftmax => {
            let (mut m64, mut l64) = ([s.splat(0.0); VLANES], [s.splat(0.0); VLANES]);
            let ms64: [f64; VLANES] = std::array::from_fn(|b| ms[b] as f64);
            for a in 0..VLANES / S::LANES {
                // SAFETY: both arrays hold VLANES doubles.
                unsafe {
                    m64[a] = s.load_f64(ms64.as_ptr().add(a * S::LANES));
                    l64[a] = s.load_f64(logs.as_ptr().add(a * S::LANES));
                }
            }
            for i in 0..n {
                for j in 0..nf::<S>() {
                    // SAFETY: the tile holds n·16 floats.
                    unsafe {
                        let p = tile.add(i * VLANES + j * S::LANES32);
                        let x = s.fload(p);
                        let a0 = j * ratio::<S>();
                        let lo = s.sub(s.sub(s.widen(x, 0), m64[a0]), l64[a0]);
                        let hi = if ratio::<S>() > 1 {
                            s.sub(s.sub(s.widen(x, 1), m64[a0 + 1]), l64[a0 + 1])
                        } else {
                            lo
                        };
                        s.fstore(p, s.narrow(lo, hi));
                    }
                }
            }
        }
    }

    // SAFETY: forwarded contract.
    unsafe { finish_special_lanes(tile, n, op, saved, lse) };
}

/// The original values of the lanes marked `special` (a NaN or no finite maximum), which
/// [`finish_special_lanes`] handles by the row kernels' rules once the vector passes are done.
///
/// # Safety
/// `tile` must hold `n · 16` elements.
pub(crate) unsafe fn save_special_lanes<E: Element>(
    tile: *const E,
    n: usize,
    special: &[bool; VLANES],
) -> Vec<(usize, Vec<E>)> {
    (0..VLANES)
        .filter(|&b| special[b])
        // SAFETY: i·16 + b < n·16.
        .map(|b| {
            (
                b,
                (0..n)
                    .map(|i| unsafe { *tile.add(i * VLANES + b) })
                    .collect(),
            )
        })
        .collect()
}

/// Overwrite the results of the saved lanes by the row kernels' rules for rows with a NaN or
/// no finite maximum (NaN; mass shared among `+inf`; zeros / `−inf`).
///
/// # Safety
/// `tile` must hold `n · 16` elements.
pub(crate) unsafe fn finish_special_lanes<E: Element>(
    tile: *mut E,
    n: usize,
    op: ColOp,
    saved: Vec<(usize, Vec<E>)>,
    lse: &mut [f64; VLANES],
) {
    for (b, mut row) in saved {
        let (mx, has_nan) = row.iter().fold((f64::NEG_INFINITY, false), |(m, nan), v| {
            let v = v.to_f64();
            (if v > m { v } else { m }, nan | v.is_nan())
        });
        match op {
            ColOp::Lse => lse[b] = if has_nan { f64::NAN } else { mx },
            ColOp::Softmax | ColOp::LogSoftmax => {
                let p = row.as_mut_ptr();
                // SAFETY: row holds n elements; in place is allowed.
                unsafe { super::rows::special_row(p, p, n, mx, has_nan, op == ColOp::LogSoftmax) };
                for (i, v) in row.into_iter().enumerate() {
                    // SAFETY: i·16 + b < n·16.
                    unsafe { *tile.add(i * VLANES + b) = v };
                }
            }
        }
    }
}
