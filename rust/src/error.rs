//! Errors the kernels report (no Python types here; `python::errors` maps them).

use std::fmt;

/// Why a kernel call was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelError {
    /// Two arrays that must agree in shape do not.
    ShapeMismatch {
        /// The argument at fault.
        arg: &'static str,
        /// Its shape.
        got: Vec<usize>,
        /// The shape it must have.
        expected: Vec<usize>,
    },
    /// An argument's value is out of its domain.
    InvalidValue {
        /// The argument at fault.
        arg: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The SIMD path requested with `SMOOTHMAX_SIMD` cannot run here.
    Simd(String),
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelError::ShapeMismatch { arg, got, expected } => {
                write!(f, "{arg} has shape {got:?}, expected {expected:?}")
            }
            KernelError::InvalidValue { arg, message } => write!(f, "{arg}: {message}"),
            KernelError::Simd(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for KernelError {}
