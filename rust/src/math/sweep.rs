//! Test support: ULP errors of float32 kernels against libm's f64 `exp`, swept over bit patterns.

use rayon::prelude::*;

/// `|got − exact|` in ULPs of `exact` rounded to f32 (the definition the Python suite uses);
/// overflow counts as exact when `exact` rounds to the same infinity.
pub(crate) fn ulp_err_f32(got: f32, exact: f64) -> f64 {
    if got as f64 == exact || (got.is_nan() && exact.is_nan()) {
        return 0.0;
    }
    if got.is_infinite() || exact > f32::MAX as f64 {
        return if (exact as f32) == got {
            0.0
        } else {
            f64::INFINITY
        };
    }
    let a = (exact as f32).abs().max(f32::from_bits(1));
    let ulp = (f32::from_bits(a.to_bits() + 1) - a) as f64;
    (got as f64 - exact).abs() / ulp
}

/// The worst ULP error of `kernel` (an `exp` over a slice) on every `stride`-th f32 bit pattern,
/// and the bits of the input where it occurs. libm's `exp` in f64 is within 2⁻⁵² relative:
/// far below an f32 ULP.
pub(crate) fn sweep_exp_f32(stride: u64, kernel: impl Fn(&[f32], &mut [f32]) + Sync) -> (f64, u32) {
    let starts: Vec<u64> = (0..(1u64 << 32))
        .step_by((1 << 20) * stride as usize)
        .collect();
    starts
        .par_iter()
        .map(|&start| {
            let xs: Vec<f32> = (0..(1u64 << 20))
                .map(|k| start + k * stride)
                .filter(|&b| b < (1u64 << 32))
                .map(|b| f32::from_bits(b as u32))
                .collect();
            let mut out = vec![0.0f32; xs.len()];
            kernel(&xs, &mut out);
            let mut worst = (0.0f64, 0u32);
            for (x, y) in xs.iter().zip(&out) {
                let e = ulp_err_f32(*y, (*x as f64).exp());
                if e > worst.0 || e.is_nan() {
                    worst = (e, x.to_bits());
                }
            }
            worst
        })
        .reduce(|| (0.0, 0), |a, b| if b.0 > a.0 { b } else { a })
}
