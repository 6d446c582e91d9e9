//! smoothmax: accurate and fast softmax-family numerics.
//!
//! The crate is plain Rust over slices and strided `ndarray` views; the PyO3 bindings (feature
//! `python`, on by default) are a thin layer in `python/`. Build and test the kernels without
//! Python with `cargo test --no-default-features`.
//!
//! # Accuracy policy
//! Every kernel carries the rounding error of `x − max` into `exp` (TwoSum), keeps
//! `e^x = 2^k(1 + t)` unrounded until after the division by the sum, sums exactly enough
//! (float32 terms widened to f64; float64 with per-lane compensation) and uses the `log1p` form
//! for logsumexp and log_softmax. float32 data without a temperature runs in f32 lanes
//! ([`math::exp32`], twice the lanes); everything else in f64 lanes. The contracts (max error per function and dtype) are stated
//! in [`math`] and [`kernels`] and proven by the tests.
//!
//! [`class_stats`](mod@class_stats) holds the one-pass per-class statistics (weights, means,
//! centred scatter) behind the closed-form logistic regression of `smoothmax.linear_model`.
//!
//! # SIMD
//! Kernels are written once over [`simd::Simd`] and dispatched at run time ([`simd::Isa`]:
//! scalar, AVX2+FMA, AVX-512F; forced with `SMOOTHMAX_SIMD`). All paths return bit-identical
//! results.

pub mod class_stats;
pub mod error;
pub mod kernels;
pub mod math;
pub mod simd;
pub mod threads;

#[cfg(feature = "python")]
mod python;

pub use class_stats::{class_stats, standardized_fourth_moments, ClassStats};
pub use error::KernelError;
pub use kernels::{
    logsumexp, logsumexp_on, logsumexp_slice, logsumexp_slice_on, logsumexp_weighted, softmax,
    softmax_inplace, softmax_inplace_on, softmax_slice, softmax_slice_on,
};
pub use simd::{active_isa, force_isa, Isa};
pub use threads::{get_num_threads, set_num_threads};
