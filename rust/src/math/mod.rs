//! Vector elementary functions, each with its accuracy contract in its module docs.
//!
//! | function | dtypes | max error | notes |
//! |---|---|---|---|
//! | [`exp::exp_f32`] | f32 | ≤ 1 ULP (measured ≤ 0.501) | exhaustive test over all 2³² inputs |
//! | [`exp::exp_f64`] | f64 | ≤ 1 ULP | sampled against mpmath in the Python suite |
//! | [`exp32::exp32_f32`] (f32 lanes; its reduction and polynomial serve the float32 kernels) | f32 | ≤ 1 ULP (measured 0.914) | exhaustive test over all 2³² inputs |
//! | [`log::log1p_v`] (f64 lanes; the float32 kernels' `log S` per line) | f64 | ≤ 2⁻⁵⁰ relative | `−0.5 ≤ z < 2⁶⁴` |

pub mod exp;
pub mod exp32;
pub mod log;
#[cfg(test)]
mod sweep;
