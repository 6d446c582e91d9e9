//! The column kernel (16 rows per vector pass, see [`super::cols32`]) in f64 lanes: float64
//! data, and float32 data with a temperature. The numerics are those of the f64 row passes:
//! TwoSum shift (and exact division by the temperature), `2^k(1 + t)` summed with per-lane
//! compensation, `log1p` near 1, one rounding per output.

// Kernels index several per-lane arrays with one lane index; iterators would hide that.
#![allow(clippy::needless_range_loop)]

use super::cols32::ColOp;
use super::rows::{shifted, two_sum, ExpSum, Scaling};
use crate::math::exp::{exp_parts, Degree};
use crate::simd::{Element, Simd, VLANES};

#[inline(always)]
fn nv<S: Simd>() -> usize {
    VLANES / S::LANES
}

/// Process one `n × 16` tile of `E` in place (`tile[i·16 + b]`), as [`super::cols32::tile`].
///
/// # Safety
/// `tile` must hold `n · 16` elements.
#[inline(always)]
pub(crate) unsafe fn tile<S: Simd, E: Element>(
    s: S,
    tile: *mut E,
    n: usize,
    op: ColOp,
    sc: Scaling,
    lse: &mut [f64; VLANES],
    stash: &mut Vec<f64>,
) {
    let degree = if E::IS_F64 {
        Degree::Full
    } else {
        Degree::Short
    };
    let at = |i: usize, j: usize| i * VLANES + j * S::LANES;
    // Pass 1: per-lane max and NaN flags.
    let mut m = [s.splat(f64::NEG_INFINITY); VLANES];
    let mut nan = [s.none(); VLANES];
    for i in 0..n {
        for j in 0..nv::<S>() {
            // SAFETY: at(i, j) + LANES <= n·16.
            let v = unsafe { E::load(s, tile.add(at(i, j))) };
            m[j] = s.max(v, m[j]);
            nan[j] = s.or(nan[j], s.is_nan(v));
        }
    }
    let mut ms = [0.0f64; VLANES];
    let mut special = [false; VLANES];
    for j in 0..nv::<S>() {
        let mut flags = [0.0f64; VLANES];
        // SAFETY: both arrays hold VLANES doubles.
        unsafe {
            s.store_f64(ms.as_mut_ptr().add(j * S::LANES), m[j]);
            s.store_f64(
                flags.as_mut_ptr(),
                s.select(nan[j], s.splat(f64::NAN), s.splat(0.0)),
            );
        }
        for l in 0..S::LANES {
            special[j * S::LANES + l] = flags[l].is_nan();
        }
    }
    for b in 0..VLANES {
        special[b] |= !ms[b].is_finite();
        if special[b] {
            ms[b] = 0.0; // a finite stand-in; the lane's results are rewritten at the end
        }
    }
    for j in 0..nv::<S>() {
        // SAFETY: ms holds VLANES doubles.
        m[j] = unsafe { s.load_f64(ms.as_ptr().add(j * S::LANES)) };
    }
    // SAFETY: forwarded contract.
    let saved = unsafe { super::cols32::save_special_lanes(tile, n, &special) };

    // Pass 2: compensated per-lane sums; softmax keeps t and 2^k.
    let keep = op == ColOp::Softmax;
    if keep {
        stash.resize(2 * n * VLANES, 0.0);
    }
    let sp = stash.as_mut_ptr();
    let one = s.splat(1.0);
    let mut hi = [s.splat(0.0); VLANES];
    let mut lo = [s.splat(0.0); VLANES];
    for i in 0..n {
        for j in 0..nv::<S>() {
            // SAFETY: as in pass 1; the stash holds 2·n·16 doubles.
            unsafe {
                let v = E::load(s, tile.add(at(i, j)));
                let (d_hi, d_lo) = shifted::<S, E>(s, v, m[j], sc);
                let p = exp_parts(s, d_hi, d_lo, degree);
                if keep {
                    s.store_f64(sp.add(2 * at(i, j)), p.t);
                    s.store_f64(sp.add(2 * at(i, j) + S::LANES), s.mul(p.pow_a, p.pow_b));
                }
                let h = s.add(one, p.t);
                let l = s.sub(p.t, s.sub(h, one));
                let (eh, el) = (p.scale(s, h), p.scale(s, l));
                let sum = s.add(hi[j], eh);
                let bb = s.sub(sum, hi[j]);
                let err = s.add(s.sub(hi[j], s.sub(sum, bb)), s.sub(eh, bb));
                hi[j] = sum;
                lo[j] = s.add(lo[j], s.add(err, el));
            }
        }
    }
    let (mut his, mut los) = ([0.0f64; VLANES], [0.0f64; VLANES]);
    for j in 0..nv::<S>() {
        // SAFETY: both arrays hold VLANES doubles.
        unsafe {
            s.store_f64(his.as_mut_ptr().add(j * S::LANES), hi[j]);
            s.store_f64(los.as_mut_ptr().add(j * S::LANES), lo[j]);
        }
    }
    let sums: [ExpSum; VLANES] = std::array::from_fn(|b| {
        let (h, l) = two_sum(his[b], los[b]);
        ExpSum {
            hi: h,
            lo: l,
            below_single_max: None,
        }
    });

    // Pass 3.
    match op {
        ColOp::Lse => {
            for b in 0..VLANES {
                lse[b] = ms[b] + sums[b].ln();
            }
        }
        ColOp::Softmax => {
            let (mut ih, mut il) = ([0.0f64; VLANES], [0.0f64; VLANES]);
            for b in 0..VLANES {
                let (h, l) = (sums[b].hi, sums[b].lo);
                ih[b] = 1.0 / h;
                il[b] = ih[b] * (ih[b].mul_add(-h, 1.0) - l * ih[b]);
            }
            let (mut ihv, mut ilv) = ([s.splat(0.0); VLANES], [s.splat(0.0); VLANES]);
            for j in 0..nv::<S>() {
                // SAFETY: both arrays hold VLANES doubles.
                unsafe {
                    ihv[j] = s.load_f64(ih.as_ptr().add(j * S::LANES));
                    ilv[j] = s.load_f64(il.as_ptr().add(j * S::LANES));
                }
            }
            for i in 0..n {
                for j in 0..nv::<S>() {
                    // SAFETY: as in pass 2.
                    unsafe {
                        let t = s.load_f64(sp.add(2 * at(i, j)));
                        let p = s.load_f64(sp.add(2 * at(i, j) + S::LANES));
                        let low = s.fma(ilv[j], t, ilv[j]);
                        let y = s.mul(s.add(ihv[j], s.fma(ihv[j], t, low)), p);
                        E::store(s, tile.add(at(i, j)), y);
                    }
                }
            }
        }
        ColOp::LogSoftmax => {
            let logs: [f64; VLANES] = std::array::from_fn(|b| sums[b].ln());
            let mut lv = [s.splat(0.0); VLANES];
            for j in 0..nv::<S>() {
                // SAFETY: logs holds VLANES doubles.
                lv[j] = unsafe { s.load_f64(logs.as_ptr().add(j * S::LANES)) };
            }
            for i in 0..n {
                for j in 0..nv::<S>() {
                    // SAFETY: as in pass 1.
                    unsafe {
                        let p = tile.add(at(i, j));
                        let (d_hi, d_lo) = shifted::<S, E>(s, E::load(s, p), m[j], sc);
                        E::store(s, p, s.add(s.sub(d_hi, lv[j]), d_lo));
                    }
                }
            }
        }
    }

    // Rows with a NaN or no finite maximum: the row kernels' rules, from the originals.
    // SAFETY: forwarded contract.
    unsafe { super::cols32::finish_special_lanes(tile, n, op, saved, lse) };
}
