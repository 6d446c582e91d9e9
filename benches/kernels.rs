//! Kernel benchmarks per SIMD path, without Python: `cargo bench --no-default-features`.
//!
//! Each benchmark runs once per ISA the CPU supports (scalar, AVX2, AVX-512), on rows of
//! `N(0, 1)·10`, one thread. Throughput is reported in elements per second.

use divan::counter::ItemsCount;
use divan::{black_box, Bencher};
use ndarray::{Array2, Array3};
use smoothmax::math::{exp::exp_slice_on, exp32::exp32_on};
use smoothmax::{logsumexp_on, softmax_inplace_on, Isa};

fn main() {
    smoothmax::set_num_threads(1).expect("one thread");
    divan::main();
}

fn isas() -> Vec<Isa> {
    Isa::supported()
}

fn data(len: usize) -> Vec<f64> {
    // A fixed pseudo-random N(0,1)·10-like sequence (a xorshift; no RNG crate needed here).
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 34.6
        })
        .collect()
}

const SIZES: [usize; 4] = [16, 1000, 32_000, 1_000_000];

#[divan::bench(args = isas(), consts = SIZES)]
fn exp32_f32<const N: usize>(bencher: Bencher, isa: Isa) {
    let x: Vec<f32> = data(N).iter().map(|&v| v as f32 - 10.0).collect();
    let mut out = vec![0.0f32; N];
    bencher
        .counter(ItemsCount::new(N))
        .bench_local(|| exp32_on(isa, black_box(&x), &mut out));
}

#[divan::bench(args = isas(), consts = SIZES)]
fn exp_f64<const N: usize>(bencher: Bencher, isa: Isa) {
    let x: Vec<f64> = data(N).iter().map(|&v| v - 10.0).collect();
    let mut out = vec![0.0f64; N];
    bencher
        .counter(ItemsCount::new(N))
        .bench_local(|| exp_slice_on(isa, black_box(&x), &mut out));
}

/// `rows × n` with `rows · n ≈ 4·10⁶` (fewer for short rows).
fn shape(n: usize) -> (usize, usize) {
    ((4_000_000 / n).clamp(1, 4096), n)
}

/// logsumexp of rows of [`data`] scaled by `$scale`, for each row length in `$lens`.
macro_rules! lse_bench {
    ($t:ty, $name:ident, $scale:expr, $lens:expr) => {
        #[divan::bench(args = isas(), consts = $lens)]
        fn $name<const N: usize>(bencher: Bencher, isa: Isa) {
            let (rows, n) = shape(N);
            let x = Array3::from_shape_vec(
                (rows, n, 1),
                data(rows * n)
                    .into_iter()
                    .map(|v| (v * $scale) as $t)
                    .collect(),
            )
            .unwrap();
            let mut out = Array2::<$t>::zeros((rows, 1));
            bencher
                .counter(ItemsCount::new(rows * n))
                .bench_local(|| logsumexp_on(isa, black_box(x.view()), out.view_mut()).unwrap());
        }
    };
}

macro_rules! row_benches {
    ($t:ty, $lse:ident, $softmax:ident, $log_softmax:ident) => {
        lse_bench!($t, $lse, 1.0, [10, 1000, 32_000]);

        #[divan::bench(args = isas(), consts = [10, 1000, 32_000])]
        fn $softmax<const N: usize>(bencher: Bencher, isa: Isa) {
            let (rows, n) = shape(N);
            let x = Array3::from_shape_vec(
                (rows, n, 1),
                data(rows * n).into_iter().map(|v| v as $t).collect(),
            )
            .unwrap();
            bencher
                .counter(ItemsCount::new(rows * n))
                .with_inputs(|| x.clone())
                .bench_local_refs(|y| softmax_inplace_on(isa, y.view_mut(), 1.0, false).unwrap());
        }

        #[divan::bench(args = isas(), consts = [10, 1000, 32_000])]
        fn $log_softmax<const N: usize>(bencher: Bencher, isa: Isa) {
            let (rows, n) = shape(N);
            let x = Array3::from_shape_vec(
                (rows, n, 1),
                data(rows * n).into_iter().map(|v| v as $t).collect(),
            )
            .unwrap();
            bencher
                .counter(ItemsCount::new(rows * n))
                .with_inputs(|| x.clone())
                .bench_local_refs(|y| softmax_inplace_on(isa, y.view_mut(), 1.0, true).unwrap());
        }
    };
}

row_benches!(f32, logsumexp_f32, softmax_f32, log_softmax_f32);
row_benches!(f64, logsumexp_f64, softmax_f64, log_softmax_f64);

// logsumexp of rows whose result may be near 0 (entries within ±0.9: maxima below 2), which
// keep the exact sums; the rows above (maxima near 17) take the rounded sums.
lse_bench!(f32, logsumexp_exact_f32, 0.05, [1000, 32_000]);
lse_bench!(f64, logsumexp_exact_f64, 0.05, [1000, 32_000]);

/// Reductions along axis 0 of a C-ordered (1000, 4096) float32 array: the strip kernel.
const AXIS0: (usize, usize) = (1000, 4096);

#[divan::bench(args = isas())]
fn softmax_axis0_f32(bencher: Bencher, isa: Isa) {
    let (n, inner) = AXIS0;
    let x = Array3::from_shape_vec(
        (1, n, inner),
        data(n * inner).into_iter().map(|v| v as f32).collect(),
    )
    .unwrap();
    bencher
        .counter(ItemsCount::new(n * inner))
        .with_inputs(|| x.clone())
        .bench_local_refs(|y| softmax_inplace_on(isa, y.view_mut(), 1.0, false).unwrap());
}

#[divan::bench(args = isas())]
fn logsumexp_axis0_f32(bencher: Bencher, isa: Isa) {
    let (n, inner) = AXIS0;
    let x = Array3::from_shape_vec(
        (1, n, inner),
        data(n * inner).into_iter().map(|v| v as f32).collect(),
    )
    .unwrap();
    let mut out = Array2::<f32>::zeros((1, inner));
    bencher
        .counter(ItemsCount::new(n * inner))
        .bench_local(|| logsumexp_on(isa, black_box(x.view()), out.view_mut()).unwrap());
}
