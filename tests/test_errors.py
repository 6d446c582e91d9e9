"""Bad arguments raise TypeError/ValueError (AxisError for axes) naming the argument, and leave
nothing half-done."""

from __future__ import annotations

import numpy as np
import pytest

import smoothmax
from smoothmax import _core

X = np.arange(6.0).reshape(2, 3)
FUNCS = {
    "logsumexp": smoothmax.logsumexp,
    "softmax": smoothmax.softmax,
    "log_softmax": smoothmax.log_softmax,
}
NORMS = {"softmax": smoothmax.softmax, "log_softmax": smoothmax.log_softmax}
ARG = {"logsumexp": "a", "softmax": "x", "log_softmax": "x"}


# --------------------------------------------------------------------------- data


@pytest.mark.parametrize("name", list(FUNCS))
@pytest.mark.parametrize(
    "bad",
    [
        ["a", "b"],
        "abc",
        np.array([1, None], dtype=object),
        [object()],
        [[1.0, 2.0], [3.0]],
        np.array([b"x"]),
        np.array(["2020-01-01"], dtype="datetime64[D]"),
        np.zeros(2, dtype=[("f", "f8")]),
    ],
    ids=["str-list", "str", "object", "object-list", "ragged", "bytes", "datetime", "record"],
)
def test_non_numeric_input(name, bad):
    with pytest.raises(TypeError, match=rf"^{ARG[name]}\b"):
        FUNCS[name](bad)


@pytest.mark.parametrize("name", list(FUNCS))
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_input(name, dtype):
    with pytest.raises(TypeError, match=rf"^{ARG[name]} is complex"):
        FUNCS[name](np.array([1.0, 2.0], dtype=dtype))


@pytest.mark.parametrize("bad", [["a", "b", "c"], np.array([1j, 1, 1]), [object()] * 3])
def test_bad_weights(bad):
    with pytest.raises(TypeError, match=r"^b\b"):
        smoothmax.logsumexp([1.0, 2.0, 3.0], b=bad)


def test_unbroadcastable_weights():
    with pytest.raises(ValueError, match=r"^b with shape \(2,\)"):
        smoothmax.logsumexp(X, b=np.ones(2))
    with pytest.raises(ValueError, match=r"^b\b"):
        smoothmax.logsumexp(X, axis=1, b=np.ones((3, 3)))


# --------------------------------------------------------------------------- axis


@pytest.mark.parametrize("name", list(FUNCS))
@pytest.mark.parametrize("axis", [2, -3, (0, 2), (5,)])
def test_axis_out_of_range(name, axis):
    with pytest.raises(np.exceptions.AxisError):
        FUNCS[name](X, axis=axis)


@pytest.mark.parametrize("name", list(FUNCS))
def test_axis_error_is_a_value_error(name):
    with pytest.raises(ValueError):
        FUNCS[name](X, axis=7)


@pytest.mark.parametrize("name", list(FUNCS))
def test_axis_out_of_range_on_zero_d(name):
    with pytest.raises(np.exceptions.AxisError):
        FUNCS[name](np.float64(1.0), axis=1)


@pytest.mark.parametrize("name", list(FUNCS))
@pytest.mark.parametrize("axis", [(0, 0), (1, -1), (0, 1, 0)])
def test_duplicate_axes(name, axis):
    with pytest.raises(ValueError, match=r"duplicate.*axis"):
        FUNCS[name](X, axis=axis)


@pytest.mark.parametrize("name", list(FUNCS))
@pytest.mark.parametrize("axis", [1.0, "a", [0], (0, 1.5), np.float64(0)])
def test_non_integer_axis(name, axis):
    with pytest.raises(TypeError, match="axis"):
        FUNCS[name](X, axis=axis)


@pytest.mark.parametrize("name", list(FUNCS))
def test_numpy_integer_axis_is_accepted(name):
    np.testing.assert_array_equal(FUNCS[name](X, axis=np.int64(1)), FUNCS[name](X, axis=1))
    np.testing.assert_array_equal(
        FUNCS[name](X, axis=(np.int32(0), 1)), FUNCS[name](X, axis=(0, 1))
    )


# --------------------------------------------------------------------------- temperature


@pytest.mark.parametrize("name", list(NORMS))
@pytest.mark.parametrize("t", [0, 0.0, -0.0, -1, np.nan, np.inf, -np.inf])
def test_bad_temperature_value(name, t):
    with pytest.raises(ValueError, match="temperature"):
        NORMS[name](X, temperature=t)


@pytest.mark.parametrize("name", list(NORMS))
@pytest.mark.parametrize("t", ["a", None, 1j, np.array([1.0, 2.0]), [1.0]])
def test_bad_temperature_type(name, t):
    with pytest.raises(TypeError, match="temperature"):
        NORMS[name](X, temperature=t)


def test_logsumexp_has_no_temperature():
    with pytest.raises(TypeError):
        smoothmax.logsumexp(X, temperature=2.0)


# --------------------------------------------------------------------------- out


@pytest.mark.parametrize("name", list(NORMS))
def test_out_wrong_shape(name):
    for out in (np.empty((3, 2)), np.empty(6), np.empty((2, 3, 1)), np.empty(())):
        with pytest.raises(ValueError, match="out"):
            NORMS[name](X, out=out)


@pytest.mark.parametrize("name", list(NORMS))
def test_out_wrong_dtype(name):
    for out in (
        np.empty((2, 3), np.float32),
        np.empty((2, 3), np.int64),
        np.empty((2, 3), np.float16),
        np.empty((2, 3), np.complex128),
    ):
        with pytest.raises(TypeError, match="out"):
            NORMS[name](X, out=out)
    with pytest.raises(TypeError, match="out"):  # int input computes float64
        NORMS[name](np.arange(6).reshape(2, 3), out=np.empty((2, 3), np.int64))
    with pytest.raises(TypeError, match="out"):  # float16 input returns float16
        NORMS[name](X.astype(np.float16), out=np.empty((2, 3), np.float32))


@pytest.mark.parametrize("name", list(NORMS))
def test_out_read_only(name):
    ro = np.empty((2, 3))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"out.*read-only"):
        NORMS[name](X, out=ro)
    with pytest.raises(ValueError, match="out"):
        NORMS[name](X, out=np.broadcast_to(np.empty(3), (2, 3)))
    x = X.copy()
    x.flags.writeable = False
    with pytest.raises(ValueError, match="out"):
        NORMS[name](x, out=x)


@pytest.mark.parametrize("name", list(NORMS))
@pytest.mark.parametrize("out", [[[0.0] * 3] * 2, (1, 2), 3.0, "out"])
def test_out_not_an_array(name, out):
    with pytest.raises(TypeError, match="out"):
        NORMS[name](X, out=out)


@pytest.mark.parametrize("name", list(NORMS))
def test_failed_call_leaves_out_untouched(name):
    out = np.full((2, 3), 7.0)
    with pytest.raises(TypeError):
        NORMS[name](X, out=out, where=np.ones((2, 3)))
    with pytest.raises(ValueError):
        NORMS[name](X, out=out, temperature=0)
    with pytest.raises(np.exceptions.AxisError):
        NORMS[name](X, out=out, axis=3)
    np.testing.assert_array_equal(out, 7.0)


# --------------------------------------------------------------------------- where


@pytest.mark.parametrize("name", list(FUNCS))
@pytest.mark.parametrize(
    "where",
    [[1, 0, 1], np.ones((2, 3)), "abc", np.ones((2, 3), dtype=np.uint8), [None, None, None]],
)
def test_non_bool_where(name, where):
    with pytest.raises(TypeError, match="where"):
        FUNCS[name](X, where=where)


@pytest.mark.parametrize("name", list(FUNCS))
@pytest.mark.parametrize("shape", [(2,), (3, 3), (2, 3, 2), (4, 1)])
def test_unbroadcastable_where(name, shape):
    with pytest.raises(ValueError, match="where"):
        FUNCS[name](X, where=np.ones(shape, dtype=bool))


@pytest.mark.parametrize("name", list(FUNCS))
def test_where_does_not_broadcast_the_input(name):
    """The mask broadcasts to the input, never the other way round."""
    with pytest.raises(ValueError, match="where"):
        FUNCS[name](np.ones(3), where=np.ones((2, 3), dtype=bool))


# --------------------------------------------------------------------------- private kernels


def test_exp_kernel_rejects_bad_arrays():
    with pytest.raises(TypeError):
        _core.exp_1d(np.ones(3), np.empty(3, np.float32))
    with pytest.raises(TypeError):
        _core.exp_1d(np.ones(3, np.int64), np.empty(3, np.int64))
    with pytest.raises(TypeError):
        _core.exp_1d(np.ones(6)[::2], np.empty(3))


def test_exp_kernel_length_mismatch_is_a_value_error():
    try:
        _core.exp_1d(np.ones(3), np.empty(2))
    except ValueError:
        return
    except BaseException as exc:  # PanicException derives from BaseException
        raise AssertionError(f"raised {type(exc).__name__}") from None
    raise AssertionError("no error")
