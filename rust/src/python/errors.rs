//! The one place kernel errors become Python exceptions, and the one helper that releases the
//! GIL around kernel work.

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::error::KernelError;

impl From<KernelError> for PyErr {
    fn from(e: KernelError) -> PyErr {
        match e {
            KernelError::ShapeMismatch { .. } | KernelError::InvalidValue { .. } => {
                PyValueError::new_err(e.to_string())
            }
            KernelError::Simd(msg) => PyRuntimeError::new_err(msg),
        }
    }
}

/// Run `work` with the GIL released and map its error.
pub(crate) fn detached<T: Send>(
    py: Python<'_>,
    work: impl FnOnce() -> Result<T, KernelError> + Send,
) -> PyResult<T> {
    py.detach(work).map_err(PyErr::from)
}
