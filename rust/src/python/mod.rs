//! The `smoothmax._core` extension module: thin wrappers that extract arrays, release the GIL,
//! call a kernel and map its error. Shapes, axes and dtype policy are decided in Python
//! (`python/smoothmax/_api.py`); these functions take 3-D views of native float32/float64 data.

mod errors;
mod functions;
mod stats;

use pyo3::prelude::*;

#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "build_profile",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    )?;
    m.add_function(wrap_pyfunction!(functions::logsumexp_3d, m)?)?;
    m.add_function(wrap_pyfunction!(functions::logsumexp_weighted_3d, m)?)?;
    m.add_function(wrap_pyfunction!(functions::softmax_3d, m)?)?;
    m.add_function(wrap_pyfunction!(functions::softmax_axis, m)?)?;
    m.add_function(wrap_pyfunction!(functions::logsumexp_axis, m)?)?;
    m.add_function(wrap_pyfunction!(functions::exp_1d, m)?)?;
    m.add_function(wrap_pyfunction!(functions::simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(functions::supported_simd, m)?)?;
    m.add_function(wrap_pyfunction!(functions::force_simd, m)?)?;
    m.add_function(wrap_pyfunction!(functions::set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(functions::get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(stats::class_stats, m)?)?;
    m.add_function(wrap_pyfunction!(stats::merge_class_stats, m)?)?;
    m.add_function(wrap_pyfunction!(stats::standardized_fourth_moments, m)?)?;
    Ok(())
}
