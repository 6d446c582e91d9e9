//! Kernel tests: every ISA against the scalar path (bit for bit), against a plain reference,
//! at awkward lengths and scales, on strided layouts, with special values and thread counts.

use ndarray::{s, Array2, Array3, ArrayView3, ShapeBuilder};
use rand::{Rng, SeedableRng};

use super::*;
use crate::simd::{Isa, WIDEN_SCALE};

const LENGTHS: [usize; 14] = [0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 1023, 100_000];

fn rng() -> rand::rngs::SmallRng {
    rand::rngs::SmallRng::seed_from_u64(0x5eed)
}

fn row(n: usize, scale: f64, rng: &mut impl Rng) -> Vec<f64> {
    (0..n)
        .map(|_| (rng.random::<f64>() * 2.0 - 1.0) * scale)
        .collect()
}

fn as_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

fn bits<E: Element>(v: &[E]) -> Vec<u64> {
    v.iter().map(|x| x.to_f64().to_bits()).collect()
}

/// Plain reference in f64 (libm exp), for float32 results.
fn ref_softmax(x: &[f64], log: bool) -> Vec<f64> {
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let s: f64 = x.iter().map(|v| (v - m).exp()).sum();
    // log S = log1p(S − 1), with S − 1 summed apart: it may be far below f64's ulp(1).
    let below: f64 = x.iter().filter(|&&v| v < m).map(|v| (v - m).exp()).sum();
    let ties = x.iter().filter(|&&v| v == m).count() as f64;
    let log_s = (ties - 1.0 + below).ln_1p();
    x.iter()
        .map(|v| {
            if log {
                (v - m) - log_s
            } else {
                (v - m).exp() / s
            }
        })
        .collect()
}

fn ulps_f32(got: f32, exact: f64) -> f64 {
    if got as f64 == exact {
        return 0.0;
    }
    let e = exact as f32;
    let a = e.abs().max(f32::from_bits(1));
    let ulp = (f32::from_bits(a.to_bits() + 1) - a) as f64;
    (got as f64 - exact).abs() / ulp
}

#[test]
fn every_isa_matches_scalar_bit_for_bit() {
    let mut rng = rng();
    for &n in &LENGTHS {
        for scale in [1.0, 30.0, 1e4] {
            let x = row(n, scale, &mut rng);
            let x32 = as_f32(&x);
            for isa in Isa::supported() {
                assert_eq!(
                    logsumexp_slice_on(Isa::Scalar, &x).to_bits(),
                    logsumexp_slice_on(isa, &x).to_bits(),
                    "lse f64 n={n} {isa:?}"
                );
                assert_eq!(
                    logsumexp_slice_on(Isa::Scalar, &x32).to_bits(),
                    logsumexp_slice_on(isa, &x32).to_bits(),
                    "lse f32 n={n} {isa:?}"
                );
                for (t, log) in [(1.0, false), (1.0, true), (0.37, false), (3.0, true)] {
                    let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
                    softmax_slice_on(Isa::Scalar, &x, &mut a, t, log);
                    softmax_slice_on(isa, &x, &mut b, t, log);
                    assert_eq!(
                        bits(&a),
                        bits(&b),
                        "softmax f64 n={n} t={t} log={log} {isa:?}"
                    );
                    let (mut a, mut b) = (vec![0.0f32; n], vec![0.0f32; n]);
                    softmax_slice_on(Isa::Scalar, &x32, &mut a, t, log);
                    softmax_slice_on(isa, &x32, &mut b, t, log);
                    assert_eq!(
                        bits(&a),
                        bits(&b),
                        "softmax f32 n={n} t={t} log={log} {isa:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn float32_results_within_contract_of_f64_reference() {
    let mut rng = rng();
    for &n in &LENGTHS[1..] {
        // 6e4: the f32-lane path near its |max| limit (large exponents K); 1e6: beyond it.
        for scale in [1.0, 10.0, 100.0, 1e4, 6e4, 1e6] {
            let x32 = as_f32(&row(n, scale, &mut rng));
            let x: Vec<f64> = x32.iter().map(|&v| v as f64).collect();
            for log in [false, true] {
                let mut out = vec![0.0f32; n];
                softmax_slice(&x32, &mut out, 1.0, log).unwrap();
                let r = ref_softmax(&x, log);
                let worst = out
                    .iter()
                    .zip(&r)
                    .map(|(g, e)| ulps_f32(*g, *e))
                    .fold(0.0, f64::max);
                // The f64 reference itself is good to ~1e-13 relative here: far below f32 ULPs.
                // Contract (rows32 module docs): softmax ≤ 4 ULP (y rounded once before the
                // division), log_softmax ≤ 2.
                let bound = if log { 2.0 } else { 4.0 };
                assert!(worst <= bound, "n={n} scale={scale} log={log}: {worst} ULP");
            }
            let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + x.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            let got = logsumexp_slice(&x32).unwrap();
            assert!(ulps_f32(got, lse) <= 1.0, "lse n={n} scale={scale}");
        }
    }
}

#[test]
fn float64_softmax_sums_to_one_and_matches_reference() {
    let mut rng = rng();
    for &n in &LENGTHS[1..] {
        let x = row(n, 20.0, &mut rng);
        let mut out = vec![0.0; n];
        softmax_slice(&x, &mut out, 1.0, false).unwrap();
        let sum: f64 = out.iter().sum();
        assert!(
            (sum - 1.0).abs() <= 1e-15 * (n as f64).sqrt().max(1.0) * 4.0,
            "n={n} sum={sum}"
        );
        let r = ref_softmax(&x, false);
        for (g, e) in out.iter().zip(&r) {
            // The libm reference is only good to a few ULP; the strict bound is in Python.
            assert!(
                (g - e).abs() <= 1e-13 * e.abs() + 1e-300,
                "n={n}: {g} vs {e}"
            );
        }
    }
}

#[test]
fn log1p_form_keeps_tiny_terms() {
    // SciPy issue 18295: logsumexp([0, -40]) must be 4.25e-18, not 0.
    let got = logsumexp_slice(&[0.0f64, -40.0]).unwrap();
    let exact = (-40.0f64).exp().ln_1p();
    assert!(
        (got - exact).abs() <= exact * 4.0 * f64::EPSILON,
        "{got} vs {exact}"
    );
    let mut out = [0.0f64; 2];
    softmax_slice(&[0.0, -40.0], &mut out, 1.0, true).unwrap();
    assert!(
        (out[0] + exact).abs() <= exact * 4.0 * f64::EPSILON,
        "{}",
        out[0]
    );
    // A subnormal-sized term next to 0: exp(-720) survives in the sum.
    let got = logsumexp_slice(&[0.0f64, -720.0]).unwrap();
    assert!(got > 0.0 && (got - (-720.0f64).exp()).abs() <= 1e-320);
}

#[test]
fn float32_log_softmax_of_the_max_keeps_relative_accuracy() {
    // Σ_{i≠argmax} e^{x_i − m} ≈ 1.8e-12: next to the max's exact 1 an f64 sum keeps only four
    // digits of it, so the terms below the max are summed apart (BHH).
    let x: Vec<f32> = vec![43.6, 43.6 - 27.0, 43.6 - 28.0, 43.6 - 30.0];
    let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let rest: f64 = xd[1..].iter().map(|v| (v - xd[0]).exp()).sum();
    let mut out = vec![0.0f32; 4];
    for isa in Isa::supported() {
        softmax_slice_on(isa, &x, &mut out, 1.0, true);
        assert!(
            ulps_f32(out[0], -rest.ln_1p()) <= 0.5,
            "{isa:?}: {} vs {}",
            out[0],
            -rest
        );
        let lse = logsumexp_slice_on(isa, &x);
        assert!(ulps_f32(lse, xd[0] + rest.ln_1p()) <= 0.5, "{isa:?}");
    }
}

#[test]
fn special_values() {
    let inf = f64::INFINITY;
    let nan = f64::NAN;
    for isa in Isa::supported() {
        assert_eq!(logsumexp_slice_on::<f64>(isa, &[]), -inf);
        assert_eq!(logsumexp_slice_on(isa, &[-inf, -inf]), -inf);
        assert_eq!(logsumexp_slice_on(isa, &[inf, 1.0, -inf]), inf);
        assert!(logsumexp_slice_on(isa, &[nan, inf, 1.0]).is_nan());
        assert_eq!(logsumexp_slice_on(isa, &[3.0, -inf]), 3.0);
        let mut out = [9.0; 4];
        softmax_slice_on(isa, &[inf, 1.0, inf, -inf], &mut out, 1.0, false);
        assert_eq!(out, [0.5, 0.0, 0.5, 0.0]);
        softmax_slice_on(isa, &[inf, 1.0, inf, -inf], &mut out, 1.0, true);
        assert_eq!(out, [-(2.0f64.ln()), -inf, -(2.0f64.ln()), -inf]);
        softmax_slice_on(isa, &[-inf; 4], &mut out, 1.0, false);
        assert_eq!(out, [0.0; 4]);
        softmax_slice_on(isa, &[-inf; 4], &mut out, 1.0, true);
        assert_eq!(out, [-inf; 4]);
        softmax_slice_on(isa, &[1.0, nan, 2.0, 3.0], &mut out, 1.0, false);
        assert!(out.iter().all(|v| v.is_nan()));
        softmax_slice_on(isa, &[1.0, -inf, 1.0, -inf], &mut out, 1.0, false);
        assert_eq!(out, [0.5, 0.0, 0.5, 0.0]);
        softmax_slice_on(isa, &[1.0, -inf, 1.0, -inf], &mut out, 1.0, true);
        assert_eq!(out, [-(2.0f64.ln()), -inf, -(2.0f64.ln()), -inf]);
        // Huge magnitudes: the shift by the max prevents overflow, x − m overflow gives 0.
        softmax_slice_on(isa, &[1e308, -1e308, 1e308, 0.0], &mut out, 1.0, false);
        assert_eq!(out, [0.5, 0.0, 0.5, 0.0]);
    }
}

#[test]
fn weighted_logsumexp_signs_and_cancellation() {
    let x = Array3::from_shape_vec((1, 2, 1), vec![1.0f64, 2.0]).unwrap();
    let w = Array3::from_shape_vec((1, 2, 1), vec![1.0f64, -1.0]).unwrap();
    let (mut out, mut sign) = (Array2::zeros((1, 1)), Array2::zeros((1, 1)));
    logsumexp_weighted(x.view(), w.view(), out.view_mut(), sign.view_mut()).unwrap();
    let exact = ((2.0f64).exp() - (1.0f64).exp()).ln();
    assert!(
        (out[[0, 0]] - exact).abs() < 4e-16 * exact,
        "{}",
        out[[0, 0]]
    );
    assert_eq!(sign[[0, 0]], -1.0);
    // Exact cancellation gives log 0 = -inf with sign 0.
    let w = Array3::from_shape_vec((1, 2, 1), vec![1.0f64, -1.0]).unwrap();
    let x = Array3::from_shape_vec((1, 2, 1), vec![1.0f64, 1.0]).unwrap();
    logsumexp_weighted(x.view(), w.view(), out.view_mut(), sign.view_mut()).unwrap();
    assert_eq!((out[[0, 0]], sign[[0, 0]]), (f64::NEG_INFINITY, 0.0));
}

fn lse_3d(x: ArrayView3<f64>) -> Array2<f64> {
    let mut out = Array2::zeros((x.shape()[0], x.shape()[2]));
    logsumexp(x, out.view_mut()).unwrap();
    out
}

#[test]
fn strided_layouts_match_contiguous_rows() {
    let mut rng = rng();
    let data: Vec<f64> = row(6 * 37 * 5, 10.0, &mut rng);
    let a = Array3::from_shape_vec((6, 37, 5), data).unwrap();
    // Reference: each row copied out and reduced as a contiguous slice.
    let expect = |v: ArrayView3<f64>| -> Array2<f64> {
        Array2::from_shape_fn((v.shape()[0], v.shape()[2]), |(o, j)| {
            let r: Vec<f64> = v.slice(s![o, .., j]).iter().cloned().collect();
            logsumexp_slice_on(Isa::Scalar, &r)
        })
    };
    for v in [
        a.view(),
        a.slice(s![..;-1, .., ..]),
        a.slice(s![.., ..;-2, ..]),
        a.slice(s![1..;2, 3.., ..;-1]),
    ] {
        assert_eq!(lse_3d(v), expect(v));
        // softmax into a differently strided output, and in place.
        let mut out = Array3::<f64>::zeros(v.raw_dim());
        let mut out_t = Array3::<f64>::zeros((v.shape()[2], v.shape()[1], v.shape()[0]));
        let out_t = {
            let mut view = out_t.view_mut();
            view.swap_axes(0, 2);
            softmax(v, view, 1.0, false).unwrap();
            out_t
        };
        softmax(v, out.view_mut(), 1.0, false).unwrap();
        let mut inplace = v.to_owned();
        softmax_inplace(inplace.view_mut(), 1.0, false).unwrap();
        for o in 0..v.shape()[0] {
            for j in 0..v.shape()[2] {
                let r: Vec<f64> = v.slice(s![o, .., j]).iter().cloned().collect();
                let mut e = vec![0.0; r.len()];
                softmax_slice_on(Isa::Scalar, &r, &mut e, 1.0, false);
                let got: Vec<f64> = out.slice(s![o, .., j]).iter().cloned().collect();
                let got_t: Vec<f64> = out_t.slice(s![j, .., o]).iter().cloned().collect();
                let got_i: Vec<f64> = inplace.slice(s![o, .., j]).iter().cloned().collect();
                assert_eq!(got, e);
                assert_eq!(got_t, e);
                assert_eq!(got_i, e);
            }
        }
    }
}

/// The last axis of a Fortran-ordered array (rows one element apart, one `inner` index) goes
/// to the column kernels as rows adjacent in memory; weights and outputs in other layouts,
/// including a unit `inner` dimension whose stride is 1 (as if adjacent), follow the same rows.
#[test]
fn fortran_rows_match_rows_in_any_other_layout() {
    let mut rng = rng();
    let (rows, n) = (70, 300);
    let data: Vec<f64> = row(rows * n, 30.0, &mut rng);
    let c = Array3::from_shape_vec((rows, n, 1), data).unwrap();
    let mut f = Array3::<f64>::zeros((1, n, rows));
    f.assign(&c.view().permuted_axes([2, 1, 0]));
    let x = f.view().permuted_axes([2, 1, 0]); // (rows, n, 1), strides (1, rows, rows·n)
    assert_eq!(x.strides(), &[1, rows as isize, (rows * n) as isize]);
    let unit_stride_one = |a: &mut Array3<f64>| unsafe {
        ndarray::ArrayViewMut3::from_shape_ptr((rows, n, 1).strides((n, 1, 1)), a.as_mut_ptr())
    };
    let expect_lse = lse_3d(c.view());
    assert_eq!(lse_3d(x), expect_lse);
    let w_data = Array3::from_shape_fn((rows, n, 1), |(r, i, _)| ((r + i) % 3) as f64 - 0.5);
    let mut w = w_data.clone();
    let w = unit_stride_one(&mut w);
    let (mut got, mut sign) = (Array2::zeros((rows, 1)), Array2::zeros((rows, 1)));
    let (mut want, mut want_sign) = (Array2::zeros((rows, 1)), Array2::zeros((rows, 1)));
    logsumexp_weighted(x, w.view(), got.view_mut(), sign.view_mut()).unwrap();
    logsumexp_weighted(
        c.view(),
        w_data.view(),
        want.view_mut(),
        want_sign.view_mut(),
    )
    .unwrap();
    assert_eq!(got, want);
    assert_eq!(sign, want_sign);
    for (t, log) in [(1.0, false), (1.0, true), (0.7, false)] {
        let mut expect = Array3::<f64>::zeros((rows, n, 1));
        softmax(c.view(), expect.view_mut(), t, log).unwrap();
        let mut out = Array3::<f64>::zeros((rows, n, 1));
        softmax(x, unit_stride_one(&mut out), t, log).unwrap();
        assert_eq!(out, expect);
        let mut out_f = f.clone();
        softmax(x, out_f.view_mut().permuted_axes([2, 1, 0]), t, log).unwrap();
        assert_eq!(out_f.view().permuted_axes([2, 1, 0]), expect);
        let mut inplace = f.clone();
        softmax_inplace(inplace.view_mut().permuted_axes([2, 1, 0]), t, log).unwrap();
        assert_eq!(inplace.view().permuted_axes([2, 1, 0]), expect);
    }
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let mut rng = rng();
    let a = Array3::from_shape_vec((300, 700, 1), row(300 * 700, 10.0, &mut rng)).unwrap();
    let run = |threads: usize| {
        crate::threads::set_num_threads(threads).unwrap();
        let mut out = Array3::<f64>::zeros(a.raw_dim());
        softmax(a.view(), out.view_mut(), 1.0, false).unwrap();
        (lse_3d(a.view()), out)
    };
    let one = run(1);
    for t in [2, 3] {
        assert_eq!(run(t), one, "threads={t}");
    }
    crate::threads::set_num_threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
        .unwrap();
}

/// Contiguous rows ask for the row about 8 KB on: two rows on for float32 rows of 1000, four
/// at most, the next one for rows of 8 KB or more (and never the row itself).
#[test]
fn rows_ahead_cover_the_fetch_lead() {
    use rows::fetch_rows_ahead;
    for (row_bytes, ahead) in [
        (4000, 2),
        (2000, 4),
        (400, 4),
        (0, 4),
        (8000, 1),
        (1 << 20, 1),
    ] {
        assert_eq!(
            fetch_rows_ahead(row_bytes),
            ahead,
            "rows of {row_bytes} bytes"
        );
    }
}

/// The next-row hint is only ever prefetched: the row passes return the same bits whether it
/// is absent, the real next row, or an address nothing is mapped at.
#[test]
fn next_row_hint_changes_no_result() {
    struct Rows<'a, E> {
        x: &'a [E],
        n: usize,
        next: NextRow,
    }
    impl<E: Element> WithSimd for Rows<'_, E> {
        type Output = Vec<u64>;
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) -> Vec<u64> {
            let (x, n) = (self.x, self.n);
            let mut got = Vec::new();
            let mut stash = Vec::new();
            for log in [false, true] {
                let mut out = x[..n].to_vec();
                let mut in_place = x[..n].to_vec();
                // SAFETY: each buffer holds n elements; `in_place` is both input and output.
                unsafe {
                    let sc = Scaling::NONE;
                    let (p, o) = (x.as_ptr(), out.as_mut_ptr());
                    rows::softmax_row::<S, E>(s, p, o, n, sc, log, &mut stash, self.next);
                    let q = in_place.as_mut_ptr();
                    rows::softmax_row::<S, E>(s, q, q, n, sc, log, &mut stash, self.next);
                }
                got.extend(bits(&out));
                got.extend(bits(&in_place));
            }
            // SAFETY: x holds at least n elements.
            let lse = unsafe { rows::lse_row::<S, E>(s, x.as_ptr(), n, self.next) };
            got.push(lse.to_bits());
            got
        }
    }
    fn check<E: Element>(x: &[E], n: usize) {
        for isa in Isa::supported() {
            let run = |next| dispatch(isa, Rows { x, n, next });
            let plain = run(NextRow::NONE);
            // SAFETY: n < x.len(), so the second row starts inside the buffer.
            let second = NextRow::strided(unsafe { x.as_ptr().add(n) }, 1);
            assert_eq!(run(second), plain, "{isa:?} n={n}: next row");
            // SAFETY: as above; the strided hint runs past the buffer, which is allowed.
            let strided = NextRow::strided(unsafe { x.as_ptr().add(n) }, 3);
            assert_eq!(run(strided), plain, "{isa:?} n={n}: strided next row");
            let unmapped = NextRow::strided(std::ptr::without_provenance::<u8>(16), 1);
            assert_eq!(run(unmapped), plain, "{isa:?} n={n}: unmapped");
        }
    }
    let mut rng = rng();
    for n in [1, 33, 300, 1000, 20_000] {
        let x = row(2 * n, 10.0, &mut rng);
        check::<f64>(&x, n);
        check::<f32>(&as_f32(&x), n);
    }
}

#[test]
fn rows_of_ten_million() {
    let mut rng = rng();
    let x = row(10_000_000, 10.0, &mut rng);
    let x32 = as_f32(&x);
    for isa in Isa::supported() {
        assert_eq!(
            logsumexp_slice_on(Isa::Scalar, &x).to_bits(),
            logsumexp_slice_on(isa, &x).to_bits()
        );
        assert_eq!(
            logsumexp_slice_on(Isa::Scalar, &x32).to_bits(),
            logsumexp_slice_on(isa, &x32).to_bits()
        );
    }
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    // Pairwise-free reference: Kahan sum of libm exps.
    let (mut s, mut c) = (0.0f64, 0.0f64);
    for v in &x {
        let y = (v - m).exp() - c;
        let t = s + y;
        c = (t - s) - y;
        s = t;
    }
    let lse = m + s.ln();
    assert!((logsumexp_slice(&x).unwrap() - lse).abs() <= 4.0 * f64::EPSILON * lse.abs());
}

#[test]
fn bad_arguments_are_errors() {
    let x = Array3::<f64>::zeros((2, 3, 4));
    let mut wrong = Array2::<f64>::zeros((2, 3));
    assert!(matches!(
        logsumexp(x.view(), wrong.view_mut()),
        Err(KernelError::ShapeMismatch { arg: "out", .. })
    ));
    let mut out = Array3::<f64>::zeros((2, 3, 4));
    for t in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            softmax(x.view(), out.view_mut(), t, false),
            Err(KernelError::InvalidValue {
                arg: "temperature",
                ..
            })
        ));
    }
}

#[test]
#[ignore = "timing probe: cargo test --release --no-default-features lse32_timing -- --ignored --nocapture"]
fn lse32_timing() {
    let mut rng = rng();
    let x: Vec<f32> = as_f32(&row(4096 * 1000, 10.0, &mut rng));
    let a = Array3::from_shape_vec((4096, 1000, 1), x).unwrap();
    crate::threads::set_num_threads(1).unwrap();
    for isa in Isa::supported() {
        let mut out = Array2::<f32>::zeros((4096, 1));
        let mut best = f64::INFINITY;
        for _ in 0..15 {
            let t = std::time::Instant::now();
            logsumexp_on(isa, a.view(), out.view_mut()).unwrap();
            best = best.min(t.elapsed().as_secs_f64());
        }
        let mut sm = Array3::<f32>::zeros(a.raw_dim());
        let mut best_sm = f64::INFINITY;
        for _ in 0..15 {
            let t = std::time::Instant::now();
            softmax(a.view(), sm.view_mut(), 1.0, false).unwrap();
            best_sm = best_sm.min(t.elapsed().as_secs_f64());
        }
        println!(
            "{}: lse {:.3} ns/el, softmax(active isa) {:.3} ns/el",
            isa.name(),
            best * 1e9 / 4.096e6,
            best_sm * 1e9 / 4.096e6
        );
        // In cache: one 2048-element row, many times.
        let row32: Vec<f32> = a.as_slice().unwrap()[..2048].to_vec();
        let mut o = vec![0.0f32; 2048];
        let reps = 2000;
        let mut times = [f64::INFINITY; 3];
        for _ in 0..5 {
            let t = std::time::Instant::now();
            for _ in 0..reps {
                std::hint::black_box(logsumexp_slice_on(isa, std::hint::black_box(&row32)));
            }
            times[0] = times[0].min(t.elapsed().as_secs_f64());
            for (k, log) in [(1, false), (2, true)] {
                let t = std::time::Instant::now();
                for _ in 0..reps {
                    softmax_slice_on(isa, std::hint::black_box(&row32), &mut o, 1.0, log);
                }
                times[k] = times[k].min(t.elapsed().as_secs_f64());
            }
        }
        let per = |t: f64| t * 1e9 / (reps as f64 * 2048.0);
        println!(
            "{} in cache: lse {:.3}, softmax {:.3}, log_softmax {:.3} ns/el",
            isa.name(),
            per(times[0]),
            per(times[1]),
            per(times[2])
        );
    }
}

/// Reductions along axis 1 of (3, n, 21): the inner axis is contiguous, so rows go to a column
/// kernel (f32 lanes for float32, f64 lanes for float64 or with a temperature); lanes 0..3
/// hold a NaN, a +inf pair and all −inf.
fn check_columns<E: Element + PartialEq + std::fmt::Debug>(temperature: f64, eps: f64) {
    let mut rng = rng();
    for n in [1usize, 2, 7, 16, 37] {
        let vals: Vec<E> = row(3 * n * 21, 30.0, &mut rng)
            .into_iter()
            .map(E::from_f64)
            .collect();
        let mut a = Array3::from_shape_vec((3, n, 21), vals).unwrap();
        a[[0, n / 2, 0]] = E::from_f64(f64::NAN);
        a[[1, 0, 1]] = E::from_f64(f64::INFINITY);
        a[[1, n - 1, 1]] = E::from_f64(f64::INFINITY);
        for i in 0..n {
            a[[2, i, 2]] = E::from_f64(f64::NEG_INFINITY);
        }
        let mut results = Vec::new();
        for isa in Isa::supported() {
            let mut lse = Array2::<E>::from_elem((3, 21), E::from_f64(0.0));
            logsumexp_on(isa, a.view(), lse.view_mut()).unwrap();
            let mut sm = a.clone();
            softmax_inplace_on(isa, sm.view_mut(), temperature, false).unwrap();
            let mut lsm = a.clone();
            softmax_inplace_on(isa, lsm.view_mut(), temperature, true).unwrap();
            results.push((isa, lse, sm, lsm));
        }
        let (_, lse0, sm0, lsm0) = &results[0];
        for (isa, lse, sm, lsm) in &results[1..] {
            let same = |x: &[E], y: &[E]| bits(x) == bits(y);
            assert!(
                same(lse.as_slice().unwrap(), lse0.as_slice().unwrap()),
                "{isa:?} lse"
            );
            assert!(
                same(sm.as_slice().unwrap(), sm0.as_slice().unwrap()),
                "{isa:?} softmax"
            );
            assert!(
                same(lsm.as_slice().unwrap(), lsm0.as_slice().unwrap()),
                "{isa:?} log"
            );
        }
        let close = |g: f64, w: f64| {
            (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= 4.0 * w.abs() * eps
        };
        for o in 0..3 {
            for j in 0..21 {
                let r: Vec<E> = a.slice(s![o, .., j]).to_vec();
                let (mut e, mut le) = (r.clone(), r.clone());
                softmax_slice_on(Isa::Scalar, &r, &mut e, temperature, false);
                softmax_slice_on(Isa::Scalar, &r, &mut le, temperature, true);
                for i in 0..n {
                    let (g, w) = (sm0[[o, i, j]].to_f64(), e[i].to_f64());
                    assert!(close(g, w), "softmax n={n} ({o},{i},{j}): {g} vs {w}");
                    let (g, w) = (lsm0[[o, i, j]].to_f64(), le[i].to_f64());
                    assert!(close(g, w), "log n={n} ({o},{i},{j}): {g} vs {w}");
                }
                let (g, w) = (
                    lse0[[o, j]].to_f64(),
                    logsumexp_slice_on(Isa::Scalar, &r).to_f64(),
                );
                assert!(close(g, w), "lse n={n} ({o},{j}): {g} vs {w}");
            }
        }
    }
}

#[test]
fn column_kernels_match_rows_and_are_isa_independent() {
    check_columns::<f32>(1.0, 1.2e-7);
    check_columns::<f32>(0.7, 1.2e-7);
    check_columns::<f64>(1.0, 2.3e-16);
    check_columns::<f64>(2.5, 2.3e-16);
}

#[test]
fn float32_lane_path_edges_clamp_and_range_limit() {
    // Entries around the clamp (~132 below the max) and maxima on both sides of the f32-lane
    // range limit (|m| ≤ 65536; beyond it the f64-lane path): all within contract.
    for m in [0.0f32, -3.5, 40.0, 65_536.0, -65_536.0, 65_540.0, -1e6, 3e7] {
        let x32: Vec<f32> = [0.0f32, -1.0, -87.0, -104.0, -120.0, -131.0, -133.0, -200.0]
            .iter()
            .map(|d| m + d)
            .collect();
        let x: Vec<f64> = x32.iter().map(|&v| v as f64).collect();
        for isa in Isa::supported() {
            for log in [false, true] {
                let mut out = vec![0.0f32; x.len()];
                softmax_slice_on(isa, &x32, &mut out, 1.0, log);
                let r = ref_softmax(&x, log);
                for (g, e) in out.iter().zip(&r) {
                    let bound = if log { 2.0 } else { 4.0 };
                    assert!(
                        ulps_f32(*g, *e) <= bound,
                        "m={m} log={log} {isa:?}: {g} vs {e}"
                    );
                }
            }
            let lse = logsumexp_slice_on(isa, &x32);
            let want = x[0] + x[1..].iter().map(|v| (v - x[0]).exp()).sum::<f64>().ln_1p();
            assert!(ulps_f32(lse, want) <= 1.0, "m={m} {isa:?}: {lse} vs {want}");
        }
    }
}

/// Each ISA's 8 × 8 (float) and 4 × 4 (double) register transposes, between blocks inside
/// larger rows, move exactly the block's elements.
#[test]
fn register_transposes_move_exactly_the_block() {
    struct Transposes;
    impl WithSimd for Transposes {
        type Output = (Vec<f32>, Vec<f64>);
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) -> Self::Output {
            // Source rows 11 apart starting at element 2; destination rows 13 apart at 1.
            let src32: Vec<f32> = (0..8 * 11).map(|v| v as f32).collect();
            let mut dst32 = vec![-1.0f32; 8 * 13];
            let src64: Vec<f64> = (0..4 * 11).map(|v| v as f64).collect();
            let mut dst64 = vec![-1.0f64; 4 * 13];
            let (p32, q32) = (src32.as_ptr(), dst32.as_mut_ptr());
            let (p64, q64) = (src64.as_ptr(), dst64.as_mut_ptr());
            // SAFETY: every block row lies inside its buffer (2 + 8 <= 11, 1 + 8 <= 13).
            unsafe {
                let src = std::array::from_fn(|j| p32.add(j * 11 + 2));
                s.transpose8_f32(&src, &std::array::from_fn(|k| q32.add(k * 13 + 1)));
                let src = std::array::from_fn(|j| p64.add(j * 11 + 2));
                s.transpose4_f64(&src, &std::array::from_fn(|k| q64.add(k * 13 + 1)));
            }
            (dst32, dst64)
        }
    }
    for isa in Isa::supported() {
        let (d32, d64) = dispatch(isa, Transposes);
        for (i, &v) in d32.iter().enumerate() {
            let (k, j) = (i / 13, (i % 13).wrapping_sub(1));
            let expected = if j < 8 { (j * 11 + 2 + k) as f32 } else { -1.0 };
            assert_eq!(v, expected, "{isa:?} f32 at {i}");
        }
        for (i, &v) in d64.iter().enumerate() {
            let (k, j) = (i / 13, (i % 13).wrapping_sub(1));
            let expected = if j < 4 { (j * 11 + 2 + k) as f64 } else { -1.0 };
            assert_eq!(v, expected, "{isa:?} f64 at {i}");
        }
    }
}

/// `widen_scaled` then `natural_lanes` gives each non-negative float times 2⁻⁸⁹⁶ exactly, in
/// lane order, on every ISA: zero, subnormals, the extremes and ordinary values, and sums of
/// such parts (which `natural_lanes` rearranges) match the lane-by-lane sums.
#[test]
fn widen_scaled_is_exact_in_lane_order() {
    struct Widen(Vec<f32>);
    impl WithSimd for Widen {
        type Output = Vec<f64>;
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) -> Self::Output {
            let parts = S::LANES32 / S::LANES;
            let mut out = vec![0.0f64; self.0.len()];
            for (chunk, got) in self.0.chunks(S::LANES32).zip(out.chunks_mut(S::LANES32)) {
                // SAFETY: each chunk holds LANES32 floats (the input is a multiple of it).
                let v = unsafe { s.fload(chunk.as_ptr()) };
                // Sums of two parts of the same lanes (v + v) exercise the rearrangement of sums.
                let mut acc: Vec<S::V> = (0..parts)
                    .map(|p| s.add(s.widen_scaled(v, p), s.widen_scaled(v, p)))
                    .collect();
                s.natural_lanes(&mut acc);
                for (p, a) in acc.iter().enumerate() {
                    // SAFETY: `got` has room for LANES32 = parts · LANES doubles.
                    unsafe { s.store_f64(got.as_mut_ptr().add(p * S::LANES), *a) };
                }
            }
            out
        }
    }
    let mut values = vec![
        0.0f32,
        f32::from_bits(1),
        f32::from_bits(0x007f_ffff),
        f32::MIN_POSITIVE,
        1.0,
        1.5,
        f32::MAX,
        2.0f32.powi(65),
        3.0e-39,
    ];
    let mut rng = rng();
    while values.len() % VLANES != 0 || values.len() < 4 * VLANES {
        values.push(f32::from_bits(rng.random_range(0..0x7f80_0000u32)));
    }
    for isa in Isa::supported() {
        let got = dispatch(isa, Widen(values.clone()));
        for (g, v) in got.iter().zip(&values) {
            assert_eq!(g * WIDEN_SCALE, 2.0 * *v as f64, "{isa:?}: {v:e}");
        }
    }
}

/// `fload_first` / `load_f64_first` (a row's last partial vector) read the first `count`
/// elements and fill the rest, for every count on every ISA, from the very end of a buffer.
#[test]
fn partial_loads_fill_the_rest() {
    struct Partial;
    impl WithSimd for Partial {
        type Output = (Vec<Vec<f32>>, Vec<Vec<f64>>);
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) -> Self::Output {
            let data: Vec<f32> = (1..=S::LANES32).map(|v| v as f32).collect();
            let mut loads = Vec::new();
            for count in 1..=S::LANES32 {
                let mut lanes = vec![0.0f32; S::LANES32];
                // SAFETY: the last `count` floats of `data` are readable; `lanes` holds a vector.
                unsafe {
                    let p = data.as_ptr().add(S::LANES32 - count);
                    let v = s.fload_first(p, count, f32::NEG_INFINITY);
                    s.fstore(lanes.as_mut_ptr(), v);
                }
                loads.push(lanes);
            }
            let data: Vec<f64> = (1..=S::LANES).map(|v| v as f64).collect();
            let mut loads64 = Vec::new();
            for count in 1..=S::LANES {
                let mut lanes = vec![0.0f64; S::LANES];
                // SAFETY: as above, for doubles.
                unsafe {
                    let p = data.as_ptr().add(S::LANES - count);
                    let v = s.load_f64_first(p, count, f64::NEG_INFINITY);
                    s.store_f64(lanes.as_mut_ptr(), v);
                }
                loads64.push(lanes);
            }
            (loads, loads64)
        }
    }
    /// Lane `l` of a load of the last `count` of `lanes` values 1, 2, …: the value, or `−inf`.
    fn expected(lanes: usize, count: usize) -> Vec<f64> {
        (0..lanes)
            .map(|l| {
                if l < count {
                    (lanes - count + l + 1) as f64
                } else {
                    f64::NEG_INFINITY
                }
            })
            .collect()
    }
    for isa in Isa::supported() {
        let (loads, loads64) = dispatch(isa, Partial);
        for (c, got) in loads.iter().enumerate() {
            let got: Vec<f64> = got.iter().map(|&v| v as f64).collect();
            assert_eq!(
                got,
                expected(loads.len(), c + 1),
                "{isa:?}, f32 count {}",
                c + 1
            );
        }
        for (c, got) in loads64.iter().enumerate() {
            assert_eq!(
                got,
                &expected(loads64.len(), c + 1),
                "{isa:?}, f64 count {}",
                c + 1
            );
        }
    }
}

/// The masked operations of [`Simd`] on every ISA, lane by lane against their definitions:
/// [`Simd::ffma_drop`] gives `+0` where the mask is set and the once-rounded `a·b + c`
/// elsewhere (a case whose double rounding would differ is included), and
/// [`Simd::fadd_keep`] adds only where it is set.
#[test]
fn masked_operations_match_their_definitions_on_every_isa() {
    struct Masked<'a>(&'a [f32; VLANES], &'a [f32; VLANES], &'a [f32; VLANES]);
    impl crate::simd::WithSimd for Masked<'_> {
        type Output = ([f32; VLANES], [f32; VLANES]);
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) -> Self::Output {
            let (mut fma, mut add) = ([0.0f32; VLANES], [0.0f32; VLANES]);
            for at in (0..VLANES).step_by(S::LANES32) {
                // SAFETY: at + LANES32 <= VLANES for every array.
                unsafe {
                    let (a, b, c) = (
                        s.fload(self.0.as_ptr().add(at)),
                        s.fload(self.1.as_ptr().add(at)),
                        s.fload(self.2.as_ptr().add(at)),
                    );
                    // Lanes whose `a` is negative are masked.
                    let m = s.flt(a, s.fsplat(0.0));
                    s.fstore(fma.as_mut_ptr().add(at), s.ffma_drop(m, a, b, c));
                    s.fstore(add.as_mut_ptr().add(at), s.fadd_keep(m, c, b));
                }
            }
            (fma, add)
        }
    }
    let mut rng = rng();
    let eps = f32::EPSILON;
    for round in 0..50 {
        let mut a: [f32; VLANES] = std::array::from_fn(|_| rng.random::<f32>() * 4.0 - 2.0);
        let mut b: [f32; VLANES] = std::array::from_fn(|_| rng.random::<f32>() * 4.0 - 2.0);
        let mut c: [f32; VLANES] = std::array::from_fn(|_| rng.random::<f32>() * 4.0 - 2.0);
        if round == 0 {
            // (1 + ε)(1 − ε) − 1 = −ε²: zero if the product were rounded first.
            (a[3], b[3], c[3]) = (1.0 + eps, 1.0 - eps, -1.0);
            a[5] = -(1.0 + eps);
        }
        for isa in Isa::supported() {
            let (fma, add) = dispatch(isa, Masked(&a, &b, &c));
            for i in 0..VLANES {
                let masked = a[i] < 0.0;
                let want = if masked {
                    0.0
                } else {
                    a[i].mul_add(b[i], c[i])
                };
                assert_eq!(
                    fma[i].to_bits(),
                    want.to_bits(),
                    "{isa:?} ffma_drop lane {i}"
                );
                let want = if masked { c[i] + b[i] } else { c[i] };
                assert_eq!(
                    add[i].to_bits(),
                    want.to_bits(),
                    "{isa:?} fadd_keep lane {i}"
                );
            }
            if round == 0 {
                assert_eq!(fma[3], -eps * eps, "{isa:?}");
            }
        }
    }
}
