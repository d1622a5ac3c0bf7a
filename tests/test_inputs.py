"""Every public function fed the inputs that break numerical kernels.

Each row of the tables below is one call and its expected outcome:

- ``Ok(ref)``: the result agrees with ``ref(*args, **kwargs)``, a plain
  reference (a loop, einsum in long double, or the documented NumPy
  replay of a Monte Carlo run), within a bound derived from rounding;
  NaN and inf must sit where the reference has them.
- ``Err(exception, pattern)``: the call raises that exception with a
  message matching the pattern, which names the parameter at fault.

Whatever the outcome, an array the caller passed is unchanged afterwards,
unless it was named in ``out=`` by a call that succeeded. The arguments
are built afresh for every case, so no case sees another's leftovers.
"""
import collections
import copy
import math
import warnings
from typing import Any, Callable, NamedTuple

import mpmath
import numpy as np
import pytest
import scipy.linalg

import sgdprob
from sgdprob import analytic, gufuncs, linear
from reference import running_nd, tolerance, U32, U64
from test_analytic_sgd import exact_sgd_least_squares_cov
from test_linear import (U_REF, ld, noise_scale_ref, per_sample_ref,
                         sum_bound, unit, variance_bound)

F2, F4, F8 = np.float16, np.float32, np.float64
BELOW_ONE = float(np.nextafter(1.0, 0.0))
HUGE = 2 ** 62          # a count whose products with anything overflow


# ------------------------------------------------------------ the harness


class Ok(NamedTuple):
    """The call returns what ref returns: (value, bound) for one output,
    a list of such pairs for several. dtype: of every output, if given.
    warns: a warning category the call must emit."""
    ref: Callable
    dtype: Any = None
    warns: Any = None


class Err(NamedTuple):
    exc: Any
    match: str


class Case(NamedTuple):
    id: str
    func: Callable
    make: Callable          # () -> (args, kwargs), built afresh
    expect: Any


def args_of(*args, **kwargs):
    return args, kwargs


def arrays_in(obj):
    """The ndarrays in nested tuples, lists and dicts."""
    if isinstance(obj, np.ndarray):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [a for o in obj for a in arrays_in(o)]
    if isinstance(obj, dict):
        return [a for o in obj.values() for a in arrays_in(o)]
    return []


def assert_value(got, want, bound, dtype):
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    if dtype is not None:
        assert got.dtype == np.dtype(dtype), got.dtype
    g, w = got.astype(np.longdouble), want.astype(np.longdouble)
    nan, inf = np.isnan(w), np.isinf(w)
    np.testing.assert_array_equal(np.isnan(g), nan, err_msg="NaN")
    np.testing.assert_array_equal(g[inf], w[inf], err_msg="inf")
    fin = ~(nan | inf)
    err = np.abs(g[fin] - w[fin])
    bound = np.broadcast_to(np.asarray(bound, np.longdouble), w.shape)[fin]
    bad = ~(err <= bound)
    assert not bad.any(), (
        f"{bad.sum()} of {bad.size} beyond the rounding bound; worst "
        f"error {err[bad].max()} against bound {bound[bad].min()}")


def run(case):
    args, kwargs = case.make()
    # read-only arrays (such as huge broadcast views) cannot be written
    arrays = [a for a in arrays_in((args, kwargs)) if a.flags.writeable]
    before = [a.copy() for a in arrays]
    outs = arrays_in(kwargs.get("out"))
    gens = [g for g in kwargs.values() if isinstance(g, np.random.Generator)]
    states = [g.bit_generator.state for g in gens]
    expect = case.expect
    if isinstance(expect, Err):
        with pytest.raises(expect.exc, match=expect.match):
            case.func(*args, **kwargs)
        written = []
        for g, state in zip(gens, states):
            assert g.bit_generator.state == state, "a refused run drew"
    else:
        ref_kwargs = {k: v for k, v in kwargs.items() if k != "out"}
        with np.errstate(all="ignore"):     # NaN and inf are on purpose
            wanted = expect.ref(*copy.deepcopy(args),
                                **copy.deepcopy(ref_kwargs))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = case.func(*args, **kwargs)
        if expect.warns is not None:
            assert any(issubclass(w.category, expect.warns)
                       for w in caught), "the expected warning"
        if isinstance(wanted, tuple):
            wanted = [wanted]
        got = list(got) if len(wanted) > 1 else [got]
        assert len(got) == len(wanted)
        for g, (w, bound) in zip(got, wanted):
            assert_value(g, w, bound, expect.dtype)
        for o, g in zip(outs, got):
            assert g is o or np.shares_memory(g, o), "result not in out"
        written = outs
    for a, b in zip(arrays, before):
        if any(np.shares_memory(a, o) for o in written):
            continue
        np.testing.assert_array_equal(a, b, err_msg="an input changed")


def check(cases):
    """pytest parameters with readable ids, checked unique."""
    ids = [c.id for c in cases]
    dup = {i for i, k in collections.Counter(ids).items() if k > 1}
    assert not dup, dup
    return pytest.mark.parametrize("case", cases, ids=ids)


def fresh(value):
    """A module-level array copied, so that no case can spoil another;
    arrays built for one case (views with their own strides) as they
    are."""
    if any(value is v for v in SHARED):
        return value.copy()
    return value


def seeded(shape, seed=0, dtype=F8):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def huge_view(shape):
    """A float64 array of the given shape in 8 bytes of memory. NumPy
    makes no array of 2**63 bytes or more, even a view: the overflow
    is in products of sizes, such as the B * J * I of per-sample
    gradients, or a broadcast of two such views."""
    return np.broadcast_to(np.ones(1), shape)


def readonly(a):
    a = np.array(a)
    a.flags.writeable = False
    return a


def strided(a, step=3):
    """A copy of a whose last axis has a gap between elements."""
    a = np.asarray(a)
    big = np.zeros(a.shape[:-1] + (step * max(a.shape[-1], 1),), a.dtype)
    view = big[..., ::step][..., :a.shape[-1]]
    view[...] = a
    return view


def reversed_copy(a):
    """A copy of a with negative strides on every axis."""
    a = np.asarray(a)
    if a.ndim == 0:
        return a.copy()
    flip = tuple(slice(None, None, -1) for _ in range(a.ndim))
    return np.ascontiguousarray(a[flip])[flip]


def fortran(a):
    """A copy of a whose last two axes are transposed in memory."""
    return np.swapaxes(np.ascontiguousarray(np.swapaxes(a, -1, -2)), -1, -2)


def odd_unit_strides(a):
    """A view of a copy of a whose size-1 axes have strides that no
    packed array has (negative and huge)."""
    a = np.ascontiguousarray(a)
    strides = [(-8 * 12345 if n == 1 else s)
               for n, s in zip(a.shape, a.strides)]
    return np.lib.stride_tricks.as_strided(a, a.shape, strides)


def swapped(a):
    """a byte-swapped: same values, the other byte order."""
    a = np.asarray(a)
    return a.astype(a.dtype.newbyteorder())


NON_REAL = {                       # values of each kind that are refused
    "complex": lambda a: np.asarray(a) + 0j,
    "object_str": lambda a: np.full(np.shape(a), "1", dtype=object),
    "str": lambda a: np.full(np.shape(a), "1"),
}
TOO_BIG = r"too big|too large|maximum|[Mm]emory|allocate"


SHARED = []        # the module-level arrays, filled in below


# -------------------------------------------------- the running averages
#
# Reference: tests/reference.py, the defining loop in float64 with its
# rounding bound; the result dtype follows the documented casting rule.

KINDS = ["leaky_sum", "ema", "warmup_mean"]
X_RUN = seeded((3, 40), 1)      # 40 steps: several blocks of the kernel
SHARED.append(X_RUN)


def ref_running(kind):
    def ref(x, N, *, axis=-1, initial=0.0, start=0):
        x = np.asarray(x)
        dtype = F4 if np.can_cast(x.dtype, F4) else F8
        y, A = running_nd(kind, x, np.asarray(N, F8),
                          np.asarray(initial, F8),
                          np.asarray(start, np.int64), axis)
        return y, tolerance(y, A, dtype)
    return ref


def ref_running_raw(kind):
    def ref(x, N, initial, *start, axes=None):
        axis, out_axis = (axes[0][0], axes[-1][0]) if axes else (-1, -1)
        y, bound = ref_running(kind)(x, N, axis=axis, initial=initial,
                                     start=start[0] if start else 0)
        return np.moveaxis(y, axis, out_axis), np.moveaxis(bound, axis,
                                                           out_axis)
    return ref


def nan_series(x, *rest, **kw):
    return np.full(np.shape(x), np.nan), 0.0


def running_cases():
    cases = []
    for kind in KINDS:
        f = getattr(sgdprob, kind)
        ok = Ok(ref_running(kind))
        extra = {"start": 2} if kind == "warmup_mean" else {}

        def row(name, x=X_RUN, N=3.0, expect=ok, **kw):
            kw = {"initial": 0.5, **extra, **kw}
            cases.append(Case(f"{kind}-{name}", f,
                              lambda x=x, N=N, kw=kw: args_of(
                                  fresh(x), N, **kw), expect))

        # data types of x
        for dt, out_dt in [(F2, F4), (F4, F4), (F8, F8), (np.int8, F4),
                           (np.uint16, F4), (np.int64, F8), (bool, F4)]:
            x = (X_RUN * 10).astype(dt)
            row(f"x-{np.dtype(dt).name}", x, expect=Ok(ref_running(kind),
                                                        out_dt))
        for name, make in NON_REAL.items():
            row(f"x-{name}", make(X_RUN), expect=Err(TypeError, r"\bx\b"))
        row("x-longdouble", X_RUN.astype(np.longdouble),
            expect=Err(TypeError, r"\bx\b"))
        row("x-byteswapped-f8", swapped(X_RUN),
            expect=Ok(ref_running(kind), F8))
        row("x-byteswapped-f4", swapped(X_RUN.astype(F4)),
            expect=Ok(ref_running(kind), F4))
        # data types of the parameters
        for p in ["N", "initial"] + (["start"] if extra else []):
            base = {"N": 3.0, "initial": 0.5, "start": 2}[p]
            for name, make in NON_REAL.items():
                row(f"{p}-{name}", **{p: make(base)},
                    expect=Err(TypeError, rf"\b{p}\b"))
            row(f"{p}-byteswapped", **{p: swapped(np.asarray(base))})
            row(f"{p}-float16", **{p: np.float16(base)})
            row(f"{p}-object-of-numbers",
                **{p: np.array(base, dtype=object)})
        row("N-bool-true-is-1", N=True)
        row("N-int", N=3)
        row("initial-bool", initial=True)
        # 0-d and zero sizes
        row("x-0d", np.float64(1.5), expect=Err(ValueError, r"\bx\b"))
        row("x-0-series", np.ones((0, 40)))
        row("x-empty-series", np.ones((3, 0)))
        row("x-empty-1d", np.ones(0))
        row("x-empty-with-N-sweep", np.ones((3, 0)), N=np.array([[2.0],
                                                                  [5.0]]))
        # layouts
        row("x-transposed-axis0", X_RUN.T, axis=0)
        row("x-fortran-axis1", np.asfortranarray(X_RUN))
        row("x-negative-strides", reversed_copy(X_RUN))
        row("x-negative-strides-axis0", reversed_copy(X_RUN.T), axis=0)
        row("x-strided", strided(X_RUN))
        row("x-zero-stride-rows", np.broadcast_to(X_RUN[0], (3, 40)))
        row("x-zero-stride-along-time",
            np.broadcast_to(X_RUN[:, :1], (3, 40)))
        row("x-zero-stride-axis0", np.broadcast_to(X_RUN[:, :1], (3, 40)),
            axis=0)
        row("x-size1-axes-odd-strides", odd_unit_strides(X_RUN[:1, None]))
        row("x-size1-time-axis", odd_unit_strides(X_RUN[:, :1]))
        row("N-sweep-broadcast", N=np.array([[1.0], [2.0], [np.inf]]))
        row("initial-per-series-reversed",
            initial=reversed_copy(np.array([0.5, -1.0, 2.0])))
        # out=
        row("out-strided", out=strided(np.empty((3, 40))))
        row("out-negative-strides", out=np.empty((3, 40))[::-1, ::-1])
        row("out-byteswapped", out=np.empty((3, 40), ">f8"))
        row("out-float32-for-float64", out=np.empty((3, 40), F4),
            expect=Ok(lambda *a, ref=ref_running(kind), **k: (
                lambda y, b: (y, b + U32 * np.abs(y)))(*ref(*a, **k)), F4))
        row("out-int", out=np.empty((3, 40), np.int64),
            expect=Err(TypeError, r"output|cast"))
        row("out-readonly", out=readonly(np.empty((3, 40))),
            expect=Err(ValueError, "read-only"))
        row("out-zero-stride", out=np.broadcast_to(np.empty(40), (3, 40)),
            expect=Err(ValueError, "read-only"))
        row("out-wrong-shape", out=np.empty((3, 41)),
            expect=Err(ValueError, r"mismatch|shape"))
        cases.append(Case(f"{kind}-out-is-x", f, lambda extra=extra: (
            lambda x: args_of(x, 3.0, initial=0.5, **extra, out=x))(
            X_RUN.copy()), ok))
        cases.append(Case(f"{kind}-out-is-x-axis0", f, lambda extra=extra: (
            lambda x: args_of(x, 3.0, initial=0.5, **extra, axis=0,
                              out=x))(X_RUN.T.copy()), ok))
        cases.append(Case(f"{kind}-out-is-x-reversed", f, lambda extra=extra: (
            lambda x: args_of(x, 3.0, initial=0.5, **extra,
                              out=x[:, ::-1]))(X_RUN.copy()), ok))
        cases.append(Case(f"{kind}-out-overlaps-x-shifted", f,
                          lambda extra=extra: (
            lambda b: args_of(b[:, 1:], 3.0, initial=0.5, **extra,
                              out=b[:, :-1]))(seeded((3, 41), 2)), ok))
        cases.append(Case(f"{kind}-out-is-x-transposed", f,
                          lambda extra=extra: (
            lambda b: args_of(b, 3.0, initial=0.5, **extra, out=b.T.T[
                ::1]))(seeded((40, 40), 3)), ok))
        cases.append(Case(f"{kind}-out-is-x-square-transpose", f,
                          lambda extra=extra: (
            lambda b: args_of(b.T, 3.0, initial=0.5, **extra,
                              out=b))(seeded((40, 40), 3)), ok))
        # values: NaN and inf in the data and in every parameter
        for name, v in [("nan", np.nan), ("inf", np.inf),
                        ("-inf", -np.inf)]:
            x = X_RUN.copy()
            x[1, 5] = v
            row(f"x-{name}", x)
            row(f"initial-{name}", initial=v)
            row(f"N-{name}", N=v, expect=ok if v == np.inf
                else Err(ValueError, r"\bN\b"))
            if extra:
                row(f"start-{name}", start=v,
                    expect=Err(ValueError, r"\bstart\b"))
        x = X_RUN.copy()
        x[0, 3], x[0, 4] = np.inf, -np.inf
        row("x-inf-minus-inf", x)
        row("N-just-below-1", N=BELOW_ONE, expect=Err(ValueError, r"\bN\b"))
        row("N-array-one-nan", N=np.array([2.0, np.nan, 3.0]),
            expect=Err(ValueError, r"\bN\b"))
        row("N-1", N=1.0)
        row("N-huge", N=1e300)
        row("N-python-int-beyond-float64", N=10 ** 400,
            expect=Err(ValueError, r"\bN\b"))
        row("initial-huge", initial=1e300)
        if extra:
            row("start-negative", start=-1,
                expect=Err(ValueError, r"\bstart\b"))
            row("start-fraction", start=2.5,
                expect=Err(ValueError, r"\bstart\b"))
            row("start-int64-max", start=np.int64(2 ** 63 - 1))
            row("start-2**63", start=2 ** 63,
                expect=Err(ValueError, r"\bstart\b"))
        # sizes beyond 64-bit indexing
        row("x-huge-view", huge_view((2 ** 59,)),
            expect=Err((ValueError, MemoryError), TOO_BIG))
        row("x-huge-2d-view", huge_view((2 ** 29, 2 ** 30)), axis=0,
            expect=Err((ValueError, MemoryError), TOO_BIG))
        row("N-and-initial-broadcast-beyond-2**63", np.ones(3),
            N=np.broadcast_to(2.0, (2 ** 40, 1)),
            initial=np.broadcast_to(0.0, (2 ** 40,)),
            expect=Err((ValueError, MemoryError), TOO_BIG))
    return cases


def raw_running_cases():
    cases = []
    for kind in KINDS:
        g = getattr(gufuncs, kind)
        extra = (2,) if kind == "warmup_mean" else ()
        ok = Ok(ref_running_raw(kind))

        def row(name, x=X_RUN, N=3.0, expect=ok, start=None, **kw):
            rest = (start,) if extra and start is not None else extra
            cases.append(Case(f"gufuncs.{kind}-{name}", g,
                              lambda x=x, N=N, kw=kw, rest=rest: args_of(
                                  fresh(x), N, 0.5, *rest, **kw), expect))

        for dt, out_dt in [(F2, F4), (np.int64, F8), (bool, F4)]:
            row(f"x-{np.dtype(dt).name}", (X_RUN * 10).astype(dt),
                expect=Ok(ref_running_raw(kind), out_dt))
        for name, make in NON_REAL.items():
            row(f"x-{name}", make(X_RUN),
                expect=Err(TypeError, rf"ufunc '{kind}'"))
        row("N-complex", N=2.0 + 0j, expect=Err(TypeError, rf"'{kind}'"))
        row("x-byteswapped", swapped(X_RUN))
        row("x-0d", np.float64(1.0),
            expect=Err(ValueError, r"operand 0 .*dimensions"))
        row("x-empty-series", np.ones((3, 0)))
        row("x-0-series", np.ones((0, 40)))
        row("x-transposed-axes", X_RUN.T,
            axes=[(0,), (), ()] + [()] * len(extra) + [(0,)])
        row("x-negative-strides", reversed_copy(X_RUN))
        row("x-zero-stride", np.broadcast_to(X_RUN[0], (3, 40)))
        row("out-readonly", out=readonly(np.empty((3, 40))),
            expect=Err(ValueError, "read-only"))
        for name, N in [("below-1", BELOW_ONE), ("nan", np.nan),
                        ("-inf", -np.inf)]:
            row(f"N-{name}-gives-nan", N=N, expect=Ok(nan_series,
                                                      warns=RuntimeWarning))
        row("N-inf", N=np.inf)
        row("N-huge", N=1e300)
        if extra:
            row("start-negative-gives-nan", start=-1,
                expect=Ok(nan_series, warns=RuntimeWarning))
            row("start-float-refused", start=2.0,
                expect=Err(TypeError, rf"'{kind}'"))
        row("x-huge-view", huge_view((2 ** 59,)),
            expect=Err((ValueError, MemoryError), TOO_BIG))
        # out= the very same array as x, which NumPy does not copy: the
        # same time axis (also with many series side by side), and the
        # time axis of x across the series of the output
        n_par = len(extra)
        for name, shape, ax_in, ax_out in [
                ("out-is-x", (3, 40), 1, 1),
                ("out-is-x-many-series-axis0", (40, 64), 0, 0),
                ("out-is-x-time-axes-swapped", (40, 40), 0, 1),
                ("out-is-x-time-axes-swapped-back", (40, 40), 1, 0)]:
            axes = [(ax_in,), (), ()] + [()] * n_par + [(ax_out,)]

            def make(shape=shape, axes=axes, extra=extra):
                x = seeded(shape, 17)
                return args_of(x, 3.0, 0.5, *extra, axes=axes, out=x)
            cases.append(Case(f"gufuncs.{kind}-{name}", g, make, ok))
    return cases


@check(running_cases() + raw_running_cases())
def test_running_averages(case):
    run(case)


# -------------------------------------------------------- the linear layer
#
# Reference: the definitions in long double on the per-sample array
# W.grad[b, j, i] = ygrad[b, j] x[b, i], with the rounding bounds of
# tests/test_linear.py (a sum of n terms errs by about n u times the sum
# of their magnitudes).

B_, I_, J_ = 5, 3, 2
X_LIN = seeded((B_, I_), 4)
Y_LIN = seeded((B_, J_), 5)
W_LIN = seeded((J_, I_), 6)
SHARED += [X_LIN, Y_LIN, W_LIN]


def out_dtype(*arrays):
    return F4 if all(np.can_cast(np.asarray(a).dtype, F4)
                     for a in arrays) else F8


def ref_forward(W, x):
    terms = np.einsum("...ji,...bi->...bji", ld(W), ld(x))
    y = terms.sum(axis=-1)
    return y, sum_bound(terms.shape[-1], out_dtype(W, x),
                        np.abs(terms).sum(axis=-1))


def ref_input_grad(W, ygrad):
    terms = np.einsum("...ji,...bj->...bij", ld(W), ld(ygrad))
    y = terms.sum(axis=-1)
    return y, sum_bound(terms.shape[-1], out_dtype(W, ygrad),
                        np.abs(terms).sum(axis=-1))


def ref_grad(x, ygrad):
    g = per_sample_ref(x, ygrad)
    B = g.shape[-3]
    return g.mean(axis=-3), sum_bound(B, out_dtype(x, ygrad),
                                      np.abs(g).sum(axis=-3) / B)


def ref_grad2(x, ygrad):
    g2 = per_sample_ref(x, ygrad) ** 2
    B = g2.shape[-3]
    mean = g2.mean(axis=-3)
    return mean, sum_bound(B, out_dtype(x, ygrad), mean, extra=6)


def ref_moments(x, ygrad):
    return [ref_grad(x, ygrad), ref_grad2(x, ygrad)]


def ref_per_sample(x, ygrad):
    g = per_sample_ref(x, ygrad)
    return g, (unit(out_dtype(x, ygrad)) + U_REF) * np.abs(g)


def ref_variance(x, ygrad, ddof=0):
    return variance_bound(x, ygrad, ddof, out_dtype(x, ygrad))


def ref_noise_scale(x, ygrad):
    trace, norm, bound = noise_scale_ref(x, ygrad)
    ratio = trace / norm
    rel = bound / np.abs(trace) + bound / np.abs(norm) + 2 * U64
    return [(ratio, np.abs(ratio) * rel), (trace, bound), (norm, bound)]


def nan_result(shape):
    def ref(*args, **kw):
        return np.full(shape, np.nan), 0.0
    return ref


def empty_grad(x, ygrad, ddof=0):
    return np.zeros(np.shape(ygrad)[-1:] + np.shape(x)[-1:]), 0.0


# name, function, reference, its two inputs, the shape of one result,
# the outputs it writes
LINEAR = [
    ("forward", linear.forward, ref_forward, ("W", "x"), (B_, J_), 1),
    ("input_grad", linear.input_grad, ref_input_grad, ("W", "ygrad"),
     (B_, I_), 1),
    ("grad", linear.grad, ref_grad, ("x", "ygrad"), (J_, I_), 1),
    ("grad2", linear.grad2, ref_grad2, ("x", "ygrad"), (J_, I_), 1),
    ("moments", linear.moments, ref_moments, ("x", "ygrad"), (J_, I_), 2),
    ("per_sample_grad", linear.per_sample_grad, ref_per_sample,
     ("x", "ygrad"), (B_, J_, I_), 1),
    ("variance", linear.variance, ref_variance, ("x", "ygrad"), (J_, I_),
     1),
    ("noise_scale", linear.noise_scale, ref_noise_scale, ("x", "ygrad"),
     (), 0),
]
BASE = {"W": W_LIN, "x": X_LIN, "ygrad": Y_LIN}
AVERAGES = {"grad", "grad2", "moments", "variance", "noise_scale"}


def linear_cases():
    cases = []
    for fname, f, ref, names, shape, n_out in LINEAR:
        ok = Ok(ref)

        def row(name, expect=ok, kw=None, **given):
            def make(given=given, kw=kw or {}, names=names):
                return args_of(*[fresh(given.get(n, BASE[n]))
                                 for n in names], **kw)
            cases.append(Case(f"linear.{fname}-{name}", f, make, expect))

        for p in names:
            for dt in [F2, F4, np.int64, np.int8, bool]:
                a = (BASE[p] * 4).astype(dt)
                other = BASE[names[1] if p == names[0] else names[0]]
                want = F8 if fname == "noise_scale" else out_dtype(a, other)
                row(f"{p}-{np.dtype(dt).name}", Ok(ref, want), **{p: a})
            for name, make in NON_REAL.items():
                row(f"{p}-{name}", Err(TypeError, rf"\b{p}\b"),
                    **{p: make(BASE[p])})
            row(f"{p}-byteswapped", **{p: swapped(BASE[p])})
            row(f"{p}-0d", Err(ValueError, rf"\b{p}\b.*two dimensions"),
                **{p: np.float64(1.0)})
            row(f"{p}-1d", Err(ValueError, rf"\b{p}\b.*two dimensions"),
                **{p: BASE[p][0]})
            # layouts
            row(f"{p}-fortran", **{p: fortran(BASE[p])})
            row(f"{p}-negative-strides", **{p: reversed_copy(BASE[p])})
            row(f"{p}-strided", **{p: strided(BASE[p])})
            row(f"{p}-zero-stride-rows",
                **{p: np.broadcast_to(BASE[p][:1], BASE[p].shape)})
            row(f"{p}-zero-stride-columns",
                **{p: np.broadcast_to(BASE[p][:, :1], BASE[p].shape)})
            row(f"{p}-leading-broadcast",
                **{p: np.broadcast_to(BASE[p], (2, 1) + BASE[p].shape)})
            row(f"{p}-size1-axes-odd-strides",
                **{p: odd_unit_strides(BASE[p][None, :, :])})
            # NaN and inf
            for name, v in [("nan", np.nan), ("inf", np.inf),
                            ("-inf", -np.inf)]:
                a = BASE[p].copy()
                a[1, 0] = v
                row(f"{p}-{name}", **{p: a})
            a = BASE[p].copy()
            a[0, 0], a[1, 0] = np.inf, 0.0
            row(f"{p}-inf-and-zero", **{p: a})
        # zero sizes: B = 0, I = 0, J = 0 and an empty stack
        b0 = {"x": np.ones((0, I_)), "ygrad": np.ones((0, J_))}
        if fname in AVERAGES:
            row("B-0", Err(ValueError, r"\bB\b"), **b0)
        elif fname != "forward" and fname != "input_grad":
            row("B-0", **b0)
        else:
            row("B-0", **{names[1]: b0[names[1]]})
        zero_i = {"W": np.ones((J_, 0)), "x": np.ones((B_, 0))}
        zero_j = {"W": np.ones((0, I_)), "ygrad": np.ones((B_, 0))}
        row("I-0", **{n: zero_i.get(n, BASE[n]) for n in names})
        row("J-0", **{n: zero_j.get(n, BASE[n]) for n in names})
        row("empty-stack", **{n: np.ones((0,) + BASE[n].shape)
                              for n in names})
        one = {"x": X_LIN[:1], "ygrad": Y_LIN[:1]}
        if fname == "noise_scale":
            row("B-1", Err(ValueError, r"\bB >= 2"), **one)
        elif fname != "forward" and fname != "input_grad":
            row("B-1", **{n: one.get(n, BASE[n]) for n in names})
        if n_out:
            linear_out_rows(row, fname, shape, n_out, ok)
        # sizes beyond 64-bit indexing (or the BLAS's 32-bit sizes)
        big, n = 2 ** 28, 2 ** 31 - 1
        huge = {"W": huge_view((big, n)), "x": huge_view((big, n)),
                "ygrad": huge_view((big, big))}
        row("huge-core", Err((ValueError, MemoryError), TOO_BIG),
            **{n_: huge[n_] for n_ in names})
        lead = [(2 ** 30, 1), (1, 2 ** 30)]
        row("huge-stack", Err((ValueError, MemoryError), TOO_BIG),
            **{n_: huge_view(lead[k] + BASE[n_].shape)
               for k, n_ in enumerate(names)})
        # no BLAS behind these two: J as large as I makes J I overflow
        no_blas = fname in ("per_sample_grad", "variance")
        wide = huge_view((2, 2 ** 31 + 1))
        row("I-beyond-the-BLAS", Err((ValueError, MemoryError), TOO_BIG)
            if no_blas else Err(ValueError, r"\bI = .*BLAS"),
            **{n_: wide if n_ != "ygrad" or no_blas else np.ones((2, 2))
               for n_ in names})
    cases += linear_param_cases()
    return cases


def linear_out_rows(row, fname, shape, n_out, ok):
    def outs(make):
        return {"out": make() if n_out == 1 else (make(), make())}

    row("out-strided", kw=outs(lambda: strided(np.empty(shape))))
    row("out-negative-strides",
        kw=outs(lambda: np.empty(shape)[tuple(slice(None, None, -1)
                                              for _ in shape)]))
    row("out-byteswapped", kw=outs(lambda: np.empty(shape, ">f8")))
    row("out-readonly", Err(ValueError, "read-only"),
        kw=outs(lambda: readonly(np.empty(shape))))
    row("out-zero-stride", Err(ValueError, "read-only"),
        kw=outs(lambda: np.broadcast_to(np.empty(shape[-1:]), shape)))
    row("out-wrong-shape", Err(ValueError, r"shape|mismatch"),
        kw=outs(lambda: np.empty(shape + (1,))))
    row("out-int", Err(TypeError, r"cast"),
        kw=outs(lambda: np.empty(shape, np.int64)))
    if n_out == 2:
        row("out-same-array-twice", Err(ValueError, r"out\[0\].*out\[1\]"),
            kw={"out": (lambda o: (o, o))(np.empty(shape))})


def linear_alias_cases():
    """out= that overlaps an input: the result must be as if it did not,
    and a refused call must leave the input alone."""
    def base_x(rows=B_):
        x = np.zeros((rows, I_))
        x[:B_] = X_LIN
        return x

    c = []
    c.append(Case("linear.forward-out-aliases-x", linear.forward,
                  lambda: (lambda x: args_of(W_LIN.copy(), x,
                                             out=x[:, :J_]))(X_LIN.copy()),
                  Ok(ref_forward)))
    c.append(Case("linear.forward-out-is-W", linear.forward,
                  lambda: (lambda w: args_of(w, w[:, :I_], out=w))(
                      seeded((3, 3), 7)), Ok(ref_forward)))

    def input_grad_alias():
        buf = seeded((B_, I_ + J_), 8)
        return args_of(W_LIN.copy(), buf[:, :J_], out=buf[:, 1:1 + I_])
    c.append(Case("linear.input_grad-out-overlaps-ygrad",
                  linear.input_grad, input_grad_alias, Ok(ref_input_grad)))
    for name, f, ref in [("grad", linear.grad, ref_grad),
                         ("grad2", linear.grad2, ref_grad2),
                         ("variance", linear.variance, ref_variance)]:
        c.append(Case(f"linear.{name}-out-aliases-x", f, lambda: (
            lambda x: args_of(x, Y_LIN.copy(), out=x[:J_]))(X_LIN.copy()),
            Ok(ref)))
        c.append(Case(f"linear.{name}-out-aliases-x-reversed", f, lambda: (
            lambda x: args_of(x, Y_LIN.copy(), out=x[J_ - 1::-1, ::-1]))(
                X_LIN.copy()), Ok(ref)))
    c.append(Case("linear.moments-out-aliases-x", linear.moments, lambda: (
        lambda x: args_of(x, Y_LIN.copy(), out=(x[:J_], x[J_:2 * J_])))(
            X_LIN.copy()), Ok(ref_moments)))
    c.append(Case("linear.moments-out-overlapping-each-other",
                  linear.moments, lambda: (lambda o: args_of(
                      X_LIN.copy(), Y_LIN.copy(), out=(o[:J_], o[1:])))(
                          np.empty((J_ + 1, I_))),
                  Err(ValueError, r"out\[0\] and out\[1\] share memory")))
    # refused after computing: out[0] aliases x and out[1] is bad; x must
    # not have been written
    for name, bad, exc, pat in [
            ("readonly", lambda: readonly(np.empty((J_, I_))), ValueError,
             "read-only"),
            ("wrong-shape", lambda: np.empty((J_, I_ + 1)), ValueError,
             "shape|mismatch"),
            ("int", lambda: np.empty((J_, I_), np.int64), TypeError,
             "cast")]:
        c.append(Case(f"linear.moments-out-aliases-x-other-{name}",
                      linear.moments, lambda bad=bad: (
                          lambda x: args_of(x, Y_LIN.copy(),
                                            out=(x[:J_], bad())))(
                              X_LIN.copy()), Err(exc, pat)))

    def per_sample_alias():
        buf = np.zeros(B_ * J_ * I_)
        x = buf[:B_ * I_].reshape(B_, I_)
        x[...] = X_LIN
        return args_of(x, Y_LIN.copy(), out=buf.reshape(B_, J_, I_))
    c.append(Case("linear.per_sample_grad-out-aliases-x",
                  linear.per_sample_grad, per_sample_alias,
                  Ok(ref_per_sample)))
    return c


def linear_param_cases():
    c = []

    def row(name, ddof, expect):
        c.append(Case(f"linear.variance-ddof-{name}", linear.variance,
                      lambda: args_of(X_LIN.copy(), Y_LIN.copy(), ddof),
                      expect))

    row("0", 0, Ok(ref_variance))
    row("1", 1, Ok(ref_variance))
    row("fraction", 2.5, Ok(ref_variance))
    row("float16", np.float16(1), Ok(ref_variance))
    row("byteswapped", np.array(1).astype(">i8"), Ok(ref_variance))
    row("B-minus-a-bit", B_ - 0.5, Ok(ref_variance))
    row("B", B_, Err(ValueError, r"ddof"))
    row("nan", np.nan, Err(ValueError, r"\bddof\b"))
    row("inf", np.inf, Err(ValueError, r"\bddof\b"))
    row("negative", -1, Err(ValueError, r"\bddof\b"))
    row("complex", 1j, Err(TypeError, r"\bddof\b"))
    row("str", "1", Err(TypeError, r"\bddof\b"))
    row("bool", True, Err(TypeError, r"\bddof\b"))
    row("array", np.array([0, 1]), Err(TypeError, r"\bddof\b"))
    c.append(Case("linear.variance-ddof-1-B-1", linear.variance,
                  lambda: args_of(X_LIN[:1].copy(), Y_LIN[:1].copy(), 1),
                  Err(ValueError, r"ddof = 1 needs B > 1")))
    return c


def raw_linear_cases():
    c = []
    gx, gy, gw = X_LIN, Y_LIN, W_LIN
    table = [
        ("linear_forward", (gw, gx), ref_forward),
        ("linear_input_grad", (gw, gy), ref_input_grad),
        ("linear_grad", (gx, gy), ref_grad),
        ("linear_grad2", (gx, gy), ref_grad2),
        ("linear_moments", (gx, gy), ref_moments),
        ("linear_per_sample_grad", (gx, gy), ref_per_sample),
        ("linear_variance", (gx, gy, 1.0), ref_variance),
    ]
    for name, inputs, ref in table:
        g = getattr(gufuncs, name)

        def row(label, expect, make, g=g, name=name):
            c.append(Case(f"gufuncs.{name}-{label}", g, make, expect))

        row("byteswapped", Ok(ref), lambda inputs=inputs: args_of(
            *[swapped(a) for a in inputs]))
        row("negative-strides", Ok(ref), lambda inputs=inputs: args_of(
            *[reversed_copy(a) for a in inputs]))
        row("complex", Err(TypeError, rf"'{name}'"),
            lambda inputs=inputs: args_of(inputs[0] + 0j, *inputs[1:]))
        row("object", Err(TypeError, rf"'{name}'"),
            lambda inputs=inputs: args_of(inputs[0].astype(object),
                                          *inputs[1:]))
        row("0d", Err(ValueError, r"operand 0 .*dimensions"),
            lambda inputs=inputs: args_of(np.float64(1.0), *inputs[1:]))
        if name in ("linear_grad", "linear_grad2", "linear_moments",
                    "linear_variance"):
            n_res = 2 if name == "linear_moments" else 1
            nan = nan_result((J_, I_))
            row("B-0-gives-nan",
                Ok((lambda *a: [nan()] * 2) if n_res > 1 else nan,
                   warns=RuntimeWarning),
                lambda inputs=inputs: args_of(
                    np.ones((0, I_)), np.ones((0, J_)), *inputs[2:]))
    # out= the very same array as an input, which NumPy does not copy.
    # x (260, 3) as W.grad needs J = B = 260: more rows than a block of
    # the kernels (256) and of output rows than a tile of variance (32);
    # otherwise square cores of 40, beyond a tile too
    for name, inputs, ref in table:
        g = getattr(gufuncs, name)
        if name == "linear_per_sample_grad":
            continue            # a (b, j, i) output is never an input
        names = ("W", "x") if name == "linear_forward" else (
            ("W", "ygrad") if name == "linear_input_grad" else
            ("x", "ygrad"))
        for k, which in enumerate(names):
            def make(names=names, k=k, name=name):
                tall = names == ("x", "ygrad") and k == 0
                shapes = {"x": (260, 3), "ygrad": (260, 260)} if tall \
                    else {m: (40, 40) for m in names}
                arrays = [seeded(shapes[m], 14 + j)
                          for j, m in enumerate(names)]
                extra = (1.0,) if name == "linear_variance" else ()
                out = arrays[k]
                if name == "linear_moments":
                    other = np.empty_like(out)
                    out = (out, other) if k == 0 else (other, out)
                return args_of(*arrays, *extra, out=out)
            c.append(Case(f"gufuncs.{name}-out-is-{which}", g, make,
                          Ok(ref)))
    # the very same array, its core on other axes in the output: one
    # core's output lies across the inputs of all the others
    for name, ref in [("linear_grad", ref_grad), ("linear_grad2", ref_grad2),
                      ("linear_variance", ref_variance)]:
        extra = (1.0,) if name == "linear_variance" else ()

        def make(extra=extra):
            x = seeded((5, 5, 5), 18)
            axes = [(1, 2), (0, 1)] + [()] * len(extra) + [(0, 2)]
            return args_of(x, seeded((5, 5), 19), *extra, axes=axes, out=x)

        def moved(x, ygrad, *extra, axes, ref=ref):
            # core t of x is x[t]; its result goes to out[:, t, :]
            value, bound = ref(x, ygrad, *extra)
            return np.moveaxis(value, 0, 1), np.moveaxis(bound, 0, 1)
        c.append(Case(f"gufuncs.{name}-out-is-x-core-axes-moved",
                      getattr(gufuncs, name), make, Ok(moved)))
    for label, ddof in [("nan", np.nan), ("negative", -1.0),
                        ("B", float(B_))]:
        c.append(Case(f"gufuncs.linear_variance-ddof-{label}-gives-nan",
                      gufuncs.linear_variance,
                      lambda ddof=ddof: args_of(X_LIN, Y_LIN, ddof),
                      Ok(nan_result((J_, I_)), warns=RuntimeWarning)))
    return c


@check(linear_cases() + linear_alias_cases() + raw_linear_cases())
def test_linear_layer(case):
    run(case)


# --------------------------------------------------------- the optimisers
#
# Reference: the documented formulas, elementwise in long double from
# the float64 values of the arguments. Each output is a handful of
# operations on the kernel's side, each rounding by u relative to the
# size of its operands: s' = a s + g2 / N errs by at most 4 u (|a s| +
# |g2 / N|) (the coefficient a = 1 - 1/N is itself rounded); the step
# eta g / (sqrt(s') + eps) by 4 u of itself plus half the relative error
# of s'; phi' by u |phi'| on top. A float32 result adds one rounding of
# itself.

PHI = np.array([1.0, -2.0, 0.5, 3.0])
S0 = np.array([0.5, 2.0, 1.0, 0.25])
G = np.array([0.3, -1.0, 2.0, 0.0])
G2 = np.array([1.0, 1.5, 4.5, 0.5])
M0 = np.array([0.1, -0.2, 0.3, 0.0])
SHARED += [PHI, S0, G, G2, M0]


def running_mean(state, new, horizon):
    """(1 - 1/m) state + new / m and its rounding bound."""
    a = 1 - 1 / ld(horizon)
    value = a * state + new / ld(horizon)
    return value, 4 * U64 * (np.abs(a * state) + np.abs(new / horizon))


def step_of(phi, num, s, s_bound, eta, eps):
    root = np.sqrt(s)
    step = ld(eta) * num / (root + ld(eps))
    with np.errstate(invalid="ignore"):     # s' = inf: a step of 0
        rel = np.where(np.isinf(s), 0.0,
                       4 * U64 + s_bound / (2 * s) * root / (root + ld(eps)))
    value = phi - step
    return value, np.abs(step) * rel + U64 * np.abs(value)


def finish(pairs, *data):
    """Bounds of float32 results get one more rounding of the value."""
    if out_dtype(*data) == F4:
        pairs = [(v, b + U32 * np.abs(v)) for v, b in pairs]
    return pairs


def ref_rmsprop(phi, s, g, g2, *, eta, N, eps=1e-8):
    data = (phi, s, g, g2)
    phi, s, g, g2 = (ld(np.asarray(a, F8)) for a in data)
    N = np.asarray(N, F8)
    s1, sb = running_mean(s, g2, N)
    with np.errstate(divide="ignore", invalid="ignore"):
        phi1, pb = step_of(phi, g, s1, sb, eta, eps)
    z = np.zeros(np.broadcast_shapes(phi1.shape, s1.shape))
    return finish([(phi1 + z, pb + z), (s1 + z, sb + z)], *data)


def ref_adam(phi, m, s, g, g2, t, *, eta, N_g, N_s, eps=1e-8):
    data = (phi, m, s, g, g2)
    phi, m, s, g, g2 = (ld(np.asarray(a, F8)) for a in data)
    t = np.asarray(t, F8)
    m1, mb = running_mean(m, g, np.minimum(t, N_g))
    s1, sb = running_mean(s, g2, np.minimum(t, N_s))
    root = np.sqrt(s1)
    step = ld(eta) * m1 / (root + ld(eps))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = (4 * U64 + mb / np.abs(m1) + np.where(
            np.isinf(s1), 0.0, sb / (2 * s1) * root / (root + ld(eps))))
        bound = np.where(m1 == 0, ld(eta) * mb / (root + ld(eps)),
                         np.abs(step) * rel)
    phi1 = phi - step
    z = np.zeros(np.broadcast_shapes(phi1.shape, m1.shape, s1.shape))
    return finish([(phi1 + z, bound + U64 * np.abs(phi1) + z),
                   (m1 + z, mb + z), (s1 + z, sb + z)], *data)


OPTIM = {
    "rmsprop_step": (sgdprob.rmsprop_step, ref_rmsprop,
                     {"phi": PHI, "s": S0, "g": G, "g2": G2},
                     {"eta": 0.1, "N": 3.0, "eps": 1e-8}),
    "adam_step": (sgdprob.adam_step, ref_adam,
                  {"phi": PHI, "m": M0, "s": S0, "g": G, "g2": G2,
                   "t": 3},
                  {"eta": 0.1, "N_g": 2.0, "N_s": 5.0, "eps": 1e-8}),
}


def optim_rows(fname, f, ref, data, params):
    """The cases of one optimiser step; its data and parameters."""
    cases = []
    ok = Ok(ref)
    n_out = 2 if fname == "rmsprop_step" else 3
    names = [n for n in data if n != "t"]

    def row(name, expect=ok, out=None, **given):
        def make(given=given, out=out):
            pos = [fresh(given.get(n, data[n])) for n in data]
            kw = {n: given.get(n, v) for n, v in params.items()}
            if out is not None:
                kw["out"] = out(pos)
            return args_of(*pos, **kw)
        cases.append(Case(f"{fname}-{name}", f, make, expect))

    for p in names:
        for dt in [F2, F4, np.int64, bool]:
            a = (data[p] * 2).astype(dt)
            # the other arrays are float64, and so is the result
            row(f"{p}-{np.dtype(dt).name}", Ok(ref, F8), **{p: a})
        for name, make in NON_REAL.items():
            row(f"{p}-{name}", Err(TypeError, rf"\b{p}\b"),
                **{p: make(data[p])})
        row(f"{p}-byteswapped", **{p: swapped(data[p])})
        row(f"{p}-0d", **{p: np.asarray(data[p][1])})
        row(f"{p}-negative-strides", **{p: data[p][::-1].copy()[::-1]})
        row(f"{p}-zero-stride", **{p: np.broadcast_to(data[p][:1], 4)})
        row(f"{p}-strided", **{p: strided(data[p])})
        for name, v in [("nan", np.nan), ("inf", np.inf),
                        ("-inf", -np.inf)]:
            a = data[p].copy()
            a[1] = v
            row(f"{p}-{name}", **{p: a})
    for dt in [F2, F4, np.int8, bool]:
        row(f"all-data-{np.dtype(dt).name}", Ok(ref, F4),
            **{p: (data[p] * 2 + 1).astype(dt) for p in names})
    row("all-data-int64", Ok(ref, F8),
        **{p: (data[p] * 2).astype(np.int64) for p in names})
    row("all-0d", **{p: np.float64(data[p][2]) for p in names})
    row("all-empty", **{p: np.ones(0) for p in names})
    row("all-empty-2d", **{p: np.ones((2, 0)) for p in names})
    row("transposed-2d", **{p: np.tile(data[p], (3, 1)).T
                            for p in names})
    row("size1-axes-odd-strides",
        **{p: odd_unit_strides(data[p][None, :, None]) for p in names})
    # the scalar parameters
    for p in params:
        for name, make in NON_REAL.items():
            row(f"{p}-{name}", Err(TypeError, rf"\b{p}\b"),
                **{p: make(params[p])})
        row(f"{p}-nan", Err(ValueError, rf"\b{p}\b"), **{p: np.nan})
        row(f"{p}-byteswapped", **{p: swapped(np.asarray(params[p]))})
        row(f"{p}-per-element", **{p: np.full(4, params[p])})
        horizon = p.startswith("N")
        row(f"{p}-inf", ok if horizon else Err(ValueError, rf"\b{p}\b"),
            **{p: np.inf})
        row(f"{p}--inf", Err(ValueError, rf"\b{p}\b"), **{p: -np.inf})
        if horizon:
            row(f"{p}-just-below-1", Err(ValueError, rf"\b{p}\b"),
                **{p: BELOW_ONE})
            row(f"{p}-1", **{p: 1.0})
            row(f"{p}-huge", **{p: 1e300})
    row("eps-negative", Err(ValueError, r"\beps\b"), eps=-1e-8)
    row("eps-0", eps=0.0)
    row("eta-0", eta=0.0)
    row("eta-negative", eta=-0.1)
    row("eta-huge", eta=1e300)
    if fname == "adam_step":
        row("t-1", t=1)
        for name, t in [("0", 0), ("nan", np.nan), ("inf", np.inf),
                        ("fraction", 1.5), ("2**63", 2 ** 63),
                        ("complex", 1j)]:
            exc = TypeError if name == "complex" else ValueError
            row(f"t-{name}", Err(exc, r"\bt\b"), t=t)
        row("t-int64-max", t=np.int64(2 ** 63 - 1))
        row("t-per-element-byteswapped",
            t=np.array([1, 2, 3, 4]).astype(">i8"))
    # out=
    row("out-in-place", out=lambda pos: tuple(pos[:n_out]))
    row("out-the-last-inputs",
        out=lambda pos: tuple(pos[len(names) - n_out:len(names)]))
    row("out-strided",
        out=lambda pos: tuple(strided(np.empty(4)) for _ in
                              range(n_out)))
    row("out-byteswapped",
        out=lambda pos: tuple(np.empty(4, ">f8") for _ in range(n_out)))
    row("out-readonly", Err(ValueError, "read-only"),
        out=lambda pos: (readonly(np.empty(4)),) + tuple(
            np.empty(4) for _ in range(n_out - 1)))
    row("out-zero-stride", Err(ValueError, "read-only"),
        out=lambda pos: tuple(np.broadcast_to(np.empty(1), 4)
                              for _ in range(n_out)))
    row("out-same-array-twice", Err(ValueError, r"share memory"),
        out=lambda pos: (pos[0],) * n_out)
    row("out-overlapping-each-other", Err(ValueError, r"share memory"),
        out=lambda pos: (lambda b: tuple(b[k:k + 4] for k in
                                         range(n_out)))(np.empty(8)))
    row("out-not-a-tuple", Err(ValueError, r"\bout\b.*tuple"),
        out=lambda pos: pos[0])
    row("out-int", Err(TypeError, r"cast"),
        out=lambda pos: tuple(np.empty(4, np.int64)
                              for _ in range(n_out)))
    # inputs overlapping the outputs, shifted by one element: input k
    # is b[4k + 1:4k + 5], output k is b[4k:4k + 4]
    def shifted():
        b = np.abs(seeded(4 * len(data) + 1, 9)) + 0.5
        pos = [b[4 * k + 1:4 * k + 5] if n != "t" else data[n]
               for k, n in enumerate(data)]
        return args_of(*pos, **params, out=tuple(
            b[4 * k:4 * k + 4] for k in range(n_out)))
    cases.append(Case(f"{fname}-out-overlaps-inputs-shifted", f, shifted,
                      ok))
    # sizes beyond 64-bit indexing
    row("huge-view", Err((ValueError, MemoryError), TOO_BIG),
        **{p: huge_view((2 ** 59,)) for p in names})
    row("huge-broadcast", Err((ValueError, MemoryError), TOO_BIG),
        **{p: huge_view((2 ** 40, 1) if p == "phi" else (2 ** 40,))
           for p in names})
    return cases


def raw_step(fname, args):
    """The reference of a raw optimiser ufunc from its positional
    arguments: those of the checked function in the same order."""
    if fname == "rmsprop_step":
        phi, s, g, g2, eta, N, eps = args
        return ref_rmsprop(phi, s, g, g2, eta=eta, N=N, eps=eps)
    phi, m, s, g, g2, t, eta, N_g, N_s, eps = args
    return ref_adam(phi, m, s, g, g2, t, eta=eta, N_g=N_g, N_s=N_s,
                    eps=eps)


def optim_cases():
    cases = []
    for fname, (f, ref, data, params) in OPTIM.items():
        cases += optim_rows(fname, f, ref, data, params)
    for fname, nargs in [("rmsprop_step", 7), ("adam_step", 10)]:
        g = getattr(gufuncs, fname)
        good = ((1.0,) * 5 + (3,) + (0.1, 2.0, 2.0, 1e-8) if nargs == 10
                else (1.0,) * 4 + (0.1, 2.0, 1e-8))
        n_res = 3 if nargs == 10 else 2
        for label, k, v in [("N-below-1", nargs - 2, 0.5),
                            ("N-nan", nargs - 2, np.nan)] + (
                [("t-0", 5, 0), ("t-negative", 5, -4)]
                if nargs == 10 else []):
            bad = list(good)
            bad[k] = v
            cases.append(Case(f"gufuncs.{fname}-{label}-gives-nan", g,
                              lambda bad=bad: args_of(*bad),
                              Ok(lambda *a, n=n_res: [(np.nan, 0.0)] * n,
                                 warns=RuntimeWarning)))
        cases.append(Case(f"gufuncs.{fname}-complex", g,
                          lambda good=good: args_of(1j, *good[1:]),
                          Err(TypeError, rf"'{fname}'")))
        cases.append(Case(f"gufuncs.{fname}-byteswapped", g,
                          lambda f=fname, good=good: args_of(
                              *[swapped(np.asarray(v)) for v in good]),
                          Ok(lambda *a, f=fname, n=n_res: raw_step(f, a))))
        cases.append(Case(f"gufuncs.{fname}-empty", g,
                          lambda good=good: args_of(np.ones((2, 0)),
                                                    *good[1:]),
                          Ok(lambda *a, n=n_res: [(np.ones((2, 0)), 0.0)]
                             * n)))
        cases.append(Case(f"gufuncs.{fname}-out-readonly", g,
                          lambda good=good, n=n_res: args_of(
                              *good, out=(readonly(np.empty(())),)
                              + tuple(np.empty(()) for _ in range(n - 1))),
                          Err(ValueError, "read-only")))
    return cases


@check(optim_cases())
def test_optimiser_steps(case):
    run(case)


# ------------------------------------------------------ the Monte Carlo runs
#
# Reference: the documented replay in NumPy from the same seed (the order
# of the normals and of the rows drawn is part of each docstring), within
# REPLAY_RTOL of the largest state, as in tests/test_simulate.py: each
# step adds a few d eps of relative rounding and |1 - eta lam| < 1 keeps
# old errors from growing.

REPLAY_RTOL = 1e-12
H2 = np.array([[2.0, 0.5], [0.5, 1.0]])
S2 = np.array([[1.0, 0.2], [0.2, 0.5]])
PHI0 = seeded((4, 2), 10)
X_LS = seeded((6, 2), 11)
Y_LS = seeded(6, 12)
G_BN = seeded((8, 2), 13)
SHARED += [H2, S2, PHI0, X_LS, Y_LS, G_BN]


def sym_root(S):
    w, V = np.linalg.eigh(S)
    return (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T


def square(a):
    a = np.asarray(a, F8)
    return a.reshape(1, 1) if a.ndim == 0 else a


def replayed(records, record_every, phi):
    out = np.stack(records) if record_every else phi
    return out, REPLAY_RTOL * max(np.abs(out).max(initial=0.0), 1.0)


def replay_sgd_quadratic(H, Sigma1, *, eta, B, steps, replicas, phi0=0.0,
                         rng=None, record_every=None, progress=False):
    H, S = square(H), square(Sigma1)
    d = H.shape[0]
    B, steps, replicas = int(B), int(steps), int(replicas)
    phi = np.array(np.broadcast_to(np.asarray(phi0, F8), (replicas, d)))
    Z = np.random.default_rng(rng).standard_normal((steps, replicas, B, d))
    root, eta = sym_root(S), float(eta)
    records = [phi]
    for k in range(steps):
        phi = phi - eta * (phi @ H + Z[k].mean(axis=1) @ root)
        if record_every and (k + 1) % record_every == 0:
            records.append(phi)
    return replayed(records, record_every, phi)


def replay_langevin(H, Sigma1, *, eta, B, time, dt, replicas, phi0=0.0,
                    rng=None, record_every=None, progress=False):
    H, S = square(H), square(Sigma1)
    d = H.shape[0]
    steps, replicas = round(float(time) / float(dt)), int(replicas)
    phi = np.array(np.broadcast_to(np.asarray(phi0, F8), (replicas, d)))
    Z = np.random.default_rng(rng).standard_normal((steps, replicas, d))
    root, dt = sym_root(S), float(dt)
    scale = math.sqrt(float(eta) * dt / int(B))
    records = [phi]
    for k in range(steps):
        phi = phi - dt * phi @ H + scale * Z[k] @ root
        if record_every and (k + 1) % record_every == 0:
            records.append(phi)
    return replayed(records, record_every, phi)


def draw_rows(gen, n, B, replace):
    if replace:
        return gen.integers(0, n, size=B)
    perm = np.arange(n)
    for b in range(B):
        j = b + gen.integers(0, n - b)
        perm[b], perm[j] = perm[j], perm[b]
    return perm[:B]


def replay_sgd_least_squares(X, y, *, eta, B, steps, replicas, phi0=None,
                             replace=True, rng=None, record_every=None,
                             progress=False):
    X, y = np.asarray(X, F8), np.asarray(y, F8)
    n, p = X.shape
    B, steps, replicas = int(B), int(steps), int(replicas)
    gen = np.random.default_rng(rng)
    phi = np.array(np.broadcast_to(np.asarray(
        0.0 if phi0 is None else phi0, F8), (replicas, p)))
    records = [phi.copy()]
    for k in range(steps):
        for r in range(replicas):
            rows = draw_rows(gen, n, B, replace)
            xb, yb = X[rows], y[rows]
            phi[r] -= float(eta) * ((xb @ phi[r] - yb)[:, None]
                                    * xb).mean(axis=0)
        if record_every and (k + 1) % record_every == 0:
            records.append(phi.copy())
    return replayed(records, record_every, phi)


def replay_batch_noise_cov(G, B, *, n_batches, replace=True, rng=None):
    G, B, n_batches = np.asarray(G, F8), int(B), int(n_batches)
    gen = np.random.default_rng(rng)
    means = np.array([G[draw_rows(gen, len(G), B, replace)].mean(axis=0)
                      for _ in range(n_batches)])
    dev = means - means.mean(axis=0)
    cov = np.atleast_2d(np.cov(means.T, ddof=1)) if G.shape[1] else \
        np.zeros((0, 0))
    w = dev[:, :, None] * dev[:, None, :]
    se = w.std(axis=0, ddof=1) / math.sqrt(n_batches)
    scale = max(np.abs(cov).max(initial=0.0), 1.0)
    # the kernel's side takes the variance of w as mean(w^2) - mean(w)^2,
    # which errs by about 4 u mean(w^2); through se = sqrt(var / K) that
    # is 4 u mean(w^2) / (2 K se)
    m2 = (w * w).mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        se_bound = np.where(se > 0, 4 * U64 * m2 / (2 * n_batches * se),
                            np.sqrt(4 * U64 * m2 / n_batches))
    return [(cov, REPLAY_RTOL * scale),
            (se, se_bound + REPLAY_RTOL * se + 4 * U64 * scale)]


MONTE_CARLO = {
    "sgd_quadratic": (sgdprob.sgd_quadratic, replay_sgd_quadratic,
                      {"H": H2, "Sigma1": S2},
                      {"eta": 0.1, "B": 2, "steps": 3, "replicas": 4,
                       "phi0": PHI0, "rng": 5}),
    "langevin": (sgdprob.langevin, replay_langevin, {"H": H2, "Sigma1": S2},
                 {"eta": 0.1, "B": 2, "time": 0.375, "dt": 0.125,
                  "replicas": 4, "phi0": PHI0, "rng": 5}),
    "sgd_least_squares": (sgdprob.sgd_least_squares,
                          replay_sgd_least_squares, {"X": X_LS, "y": Y_LS},
                          {"eta": 0.1, "B": 2, "steps": 3, "replicas": 4,
                           "rng": 5}),
    "batch_noise_cov": (sgdprob.batch_noise_cov, replay_batch_noise_cov,
                        {"per_sample_grads": G_BN, "B": 3},
                        {"n_batches": 6, "rng": 5}),
}
COUNTS = {"B", "steps", "replicas", "n_batches"}


def monte_carlo_rows(fname, f, ref, data, params):
    """The cases of one Monte Carlo run: its arrays and its parameters."""
    cases = []
    ok = Ok(ref)
    arrays = [n for n in data if n != "B"] + (
        ["phi0"] if "phi0" in params or fname == "sgd_least_squares"
        else [])

    def row(name, expect=ok, **given):
        def make():
            pos = [fresh(given.get(n, v)) for n, v in data.items()]
            kw = {n: fresh(given.get(n, v)) for n, v in params.items()}
            kw.update({n: v for n, v in given.items()
                       if n not in data and n not in params})
            return args_of(*pos, **kw)
        cases.append(Case(f"{fname}-{name}", f, make, expect))

    for p in arrays:
        base = {**data, **params}.get(p, PHI0[:, :X_LS.shape[1]])
        for dt in [F2, F4, np.int64, bool]:
            row(f"{p}-{np.dtype(dt).name}", **{p: (base * 2).astype(dt)})
        for name, make in NON_REAL.items():
            row(f"{p}-{name}", Err(TypeError, rf"\b{p}\b"),
                **{p: make(base)})
        row(f"{p}-byteswapped", **{p: swapped(base)})
        row(f"{p}-fortran", **{p: fortran(base) if base.ndim > 1
                               else base})
        row(f"{p}-negative-strides", **{p: reversed_copy(base)})
        row(f"{p}-zero-stride", **{p: np.broadcast_to(
            np.abs(base.flat[0]) + 1, base.shape)})
        for name, v in [("nan", np.nan), ("inf", np.inf)]:
            a = base.astype(F8)
            a.flat[1] = v
            if p in ("H", "Sigma1"):
                a.T.flat[1] = v           # still symmetric
            row(f"{p}-{name}", Err(ValueError, rf"\b{p}\b.*finite"),
                **{p: a})
    if "H" in data:
        row("H-0d-Sigma1-0d", H=np.float64(1.5), Sigma1=np.float64(0.5),
            phi0=0.25)
        row("H-0x0", Err(ValueError, r"\bH\b"), H=np.ones((0, 0)),
            Sigma1=np.ones((0, 0)))
        row("H-not-symmetric", Err(ValueError, r"\bH\b.*symmetric"),
            H=np.array([[2.0, 0.5], [0.0, 1.0]]))
        row("Sigma1-0d-against-2d-H", Err(ValueError, r"\bSigma1\b"),
            Sigma1=np.float64(1.0))
        row("Sigma1-negative", Err(ValueError, r"\bSigma1\b"), Sigma1=-S2)
        row("phi0-0d", phi0=np.float64(0.5))
        row("phi0-vector", phi0=np.array([0.5, -1.0]))
        row("phi0-wrong-shape", Err(ValueError, r"\bphi0\b"),
            phi0=np.ones(3))
    # the scalar parameters
    reals = [n for n in ("eta", "time", "dt") if n in params]
    for p in reals:
        for name, v in [("nan", np.nan), ("inf", np.inf), ("0", 0.0),
                        ("negative", -0.1)]:
            row(f"{p}-{name}", Err(ValueError, rf"\b{p}\b"), **{p: v})
        for name, v in [("complex", 0.1j), ("str", "0.1"), ("bool", True),
                        ("array", np.array([0.1, 0.2]))]:
            row(f"{p}-{name}", Err(TypeError, rf"\b{p}\b"), **{p: v})
        row(f"{p}-float32", **{p: np.float32(params[p])})
        row(f"{p}-0d-byteswapped", **{p: swapped(np.asarray(params[p]))})
    counts = [n for n in list(data) + list(params) if n in COUNTS]
    for p in counts:
        least = 2 if p == "n_batches" else 1
        for name, v, exc in [
                ("0", least - 1, ValueError), ("nan", np.nan, ValueError),
                ("inf", np.inf, ValueError), ("fraction", 2.5, ValueError),
                ("2**63", 2 ** 63, ValueError),
                ("2**64", 2 ** 64, ValueError),
                ("bool", True, TypeError), ("str", "2", TypeError),
                ("complex", 2j, TypeError)]:
            row(f"{p}-{name}", Err(exc, rf"\b{p}\b"), **{p: v})
        # phi0 of shape (replicas, d) would not fit other replicas
        vector = {"phi0": PHI0[0]} if p == "replicas" else {}
        row(f"{p}-whole-float", **{p: 2.0 + least - 1}, **vector)
        row(f"{p}-int8", **{p: np.int8(least)}, **vector)
        row(f"{p}-0d-byteswapped", **{p: np.array(least).astype(">i8")},
            **vector)
    if "B" in counts:
        row("B-1", B=1)
        if fname == "langevin":     # B only scales the noise
            row("B-huge", B=HUGE)
        # Elsewhere a huge B is a real run: its batches are drawn in
        # pieces of bounded scratch, a run that Ctrl-C stops
        # (tests/test_resources.py), so no quick case covers it.
    if "replicas" in counts:
        row("replicas-huge", Err((ValueError, MemoryError), TOO_BIG),
            replicas=HUGE, phi0=PHI0[0])
    if "steps" in counts:
        row("steps-huge-recorded", Err((ValueError, MemoryError), TOO_BIG),
            steps=HUGE, record_every=1)
    if "n_batches" in counts:
        row("n_batches-huge", Err((ValueError, MemoryError), TOO_BIG),
            n_batches=HUGE)
    if "time" in params:
        row("time-not-whole-steps", Err(ValueError, r"time / dt"),
            time=0.35)
        row("time-over-dt-beyond-2**63", Err(ValueError, r"time / dt"),
            time=1e300, dt=1e-300)
        row("time-over-dt-2**70", Err(ValueError, r"time / dt"),
            time=2.0 ** 70, dt=1.0)
        row("time-below-dt", Err(ValueError, r"\btime\b"), time=0.01)
    if fname != "batch_noise_cov":
        row("record_every-1", record_every=1)
        row("record_every-2", record_every=2)
        row("record_every-0", Err(ValueError, r"\brecord_every\b"),
            record_every=0)
        row("record_every-fraction", Err(ValueError, r"\brecord_every\b"),
            record_every=1.5)
        row("progress-int", Err(TypeError, r"\bprogress\b"), progress=1)
    for name, v, exc in [("str", "a", TypeError), ("negative", -1,
                                                    ValueError),
                         ("fraction", 1.5, TypeError)]:
        row(f"rng-{name}", Err(exc, r"\brng\b"), rng=v)
    row("rng-generator", rng=np.random.default_rng(5))
    first_count = counts[0]
    row(f"{first_count}-refused-generator-untouched",
        Err(ValueError, rf"\b{first_count}\b"),
        **{first_count: 1 if first_count == "n_batches" else 0},
        rng=np.random.default_rng(5))
    row("rng-seedsequence", rng=np.random.SeedSequence(5))
    if fname in ("sgd_least_squares", "batch_noise_cov"):
        row("replace-false", replace=False)
        row("replace-int", Err(TypeError, r"\breplace\b"), replace=1)
        row("replace-none", Err(TypeError, r"\breplace\b"), replace=None)
        row("B-above-n-without-replacement", Err(ValueError, r"\bB\b"),
            B=9, replace=False)
        row("B-above-n-with-replacement", B=9)
        first = next(iter(data))
        row(f"{first}-no-rows", Err(ValueError, rf"\b{first}\b"),
            **{first: np.ones((0, 2))})
        row(f"{first}-1d", Err(ValueError, rf"\b{first}\b"),
            **{first: np.ones(6)})
    if fname == "sgd_least_squares":
        row("X-no-columns", Err(ValueError, r"\bX\b"), X=np.ones((6, 0)))
        row("y-wrong-length", Err(ValueError, r"\by\b"), y=np.ones(5))
        row("phi0-0d", phi0=np.float64(0.5))
    if fname == "batch_noise_cov":
        row("per_sample_grads-no-columns",
            per_sample_grads=np.ones((8, 0)))
    # a huge view: refused before any work, whatever its shape
    first = next(iter(data))
    row(f"{first}-huge-view", Err((ValueError, MemoryError), TOO_BIG),
        **{first: huge_view((2 ** 29, 2 ** 29))})
    return cases


def monte_carlo_cases():
    cases = []
    for fname, spec in MONTE_CARLO.items():
        cases += monte_carlo_rows(fname, *spec)
    return cases


@check(monte_carlo_cases())
def test_monte_carlo_runs(case):
    run(case)


# ------------------------------------------------------- the closed forms
#
# Reference for the running averages of a constant: the formula in
# 40-digit arithmetic (mpmath). The package evaluates r^t = exp(t log1p
# (-1/N)) and 1 - r^t = -expm1(...): the exponent e errs by 2 u relative,
# so r^t by u + 2 u |e| r^t and 1 - r^t by u (1 - r^t) + 2 u |e| r^t;
# the products and the sum add 4 u of each term.
#
# Reference for the quadratic models: the Lyapunov equations solved
# directly by SciPy (no eigenbasis), and for least squares the
# definitions with np.linalg.lstsq; both sides are backward stable, so
# they agree to d eps times the condition number, here below 1e4 eps.

mpmath.mp.dps = 40
EPS_COND = 1e4 * 2 * U64


def mp_closed(kind):
    def ref(c, N, t, initial=0.0):
        c, N, t, y0 = np.broadcast_arrays(*(np.asarray(v, F8) for v in (
            c, N, t, initial)))
        out, bound = np.empty(c.shape), np.empty(c.shape)
        for k in np.ndindex(c.shape):
            cc, NN, tt, yy = (float(v[k]) for v in (c, N, t, y0))
            # r^t and 1 - r^t through log1p and expm1: 1 - 1/N itself
            # would round to 1 for N beyond 1e40
            if NN == 1.0:
                e, p, q = 0.0, mpmath.mpf(0), mpmath.mpf(1)
            else:
                log_p = int(tt) * mpmath.log1p(-1 / mpmath.mpf(NN))
                e, p, q = abs(float(log_p)), mpmath.exp(log_p), \
                    -mpmath.expm1(log_p)
            if tt == 0:
                p, q = mpmath.mpf(1), mpmath.mpf(0)
            scale = NN if kind == "leaky" else 1.0
            out[k] = float(scale * cc * q + p * yy)
            terms = abs(scale * cc) * (float(q) + 2 * e * float(p)) \
                + abs(yy) * float(p) * (1 + 2 * e)
            bound[k] = 6 * U64 * terms
        return out, bound
    return ref


def ref_limit(c, N):
    v = np.asarray(N, F8) * np.asarray(c, F8)
    return v, U64 * np.abs(v)


def ref_warmup_constant(c, N, t):
    c, N, t = np.broadcast_arrays(np.asarray(c, F8), N, t)
    return c.copy(), 0.0


def quad_ref(kind):
    def ref(H, Sigma1, *, eta, B, dt=None, t=None, phi0=0.0):
        H, S = square(H), square(Sigma1)
        Q = float(eta) / float(B) * S
        if kind == "sgd":
            A = np.eye(len(H)) - float(eta) * H
            C = scipy.linalg.solve_discrete_lyapunov(A, float(eta) * Q)
        elif kind == "euler":
            A = np.eye(len(H)) - float(dt) * H
            C = scipy.linalg.solve_discrete_lyapunov(A, float(dt) * Q)
        else:
            C = scipy.linalg.solve_continuous_lyapunov(H, Q)
        if kind == "transient":
            # exp(-H t) underflows to 0 once t lam_min passes 800
            # (scipy's expm would overflow on the way)
            E = (np.zeros_like(H) if float(t) * np.linalg.eigvalsh(H)[0]
                 > 800 else scipy.linalg.expm(-H * float(t)))
            mean = E @ np.broadcast_to(np.asarray(phi0, F8), len(H))
            C = C - E @ C @ E.T
            return [(mean, EPS_COND * max(np.abs(mean).max(), 1e-300)),
                    (C, EPS_COND * np.abs(C).max())]
        return C, EPS_COND * np.abs(C).max()
    return ref


def ref_least_squares_noise(X, y):
    X, y = np.asarray(X, F8), np.asarray(y, F8)
    phi = np.linalg.lstsq(X, y, rcond=None)[0]
    G = (X @ phi - y)[:, None] * X
    S = G.T @ G / len(y) - np.outer(G.mean(0), G.mean(0))
    H = X.T @ X / len(y)
    return [(phi, EPS_COND * np.abs(phi).max()),
            (H, EPS_COND * np.abs(H).max()),
            (S, EPS_COND * np.abs(S).max())]


def ref_mandt(X, y, *, eta, B):
    phi, H, S = (v for v, _ in ref_least_squares_noise(X, y))
    C = scipy.linalg.solve_continuous_lyapunov(H, float(eta) / float(B) * S)
    return C, EPS_COND * np.abs(C).max()


def ref_exact_ls(X, y, *, eta, B):
    C = exact_sgd_least_squares_cov(np.asarray(X, F8), np.asarray(y, F8),
                                    float(eta), float(B))
    return C, EPS_COND * np.abs(C).max()


def closed_form_rows(fname, f, ref, given_args, allow_inf_N=False):
    cases = []
    ok = Ok(ref)
    names = list(given_args)

    def row(name, expect=ok, **given):
        def make():
            return args_of(*[fresh(given.get(n, v))
                             for n, v in given_args.items()])
        cases.append(Case(f"analytic.{fname}-{name}", f, make, expect))

    data = names[0]
    for dt in [F2, F4, np.int64, bool]:
        row(f"{data}-{np.dtype(dt).name}",
            **{data: np.array([1.5, -2.0, 0.0]).astype(dt)})
    for p in names:
        base = given_args[p]
        for name, make in NON_REAL.items():
            row(f"{p}-{name}", Err(TypeError, rf"\b{p}\b"),
                **{p: make(base)})
        row(f"{p}-byteswapped", **{p: swapped(np.asarray(base))})
        row(f"{p}-empty", **{p: np.ones((2, 0), np.asarray(base).dtype)})
        row(f"{p}-negative-strides",
            **{p: reversed_copy(np.full(3, base))})
        row(f"{p}-zero-stride", **{p: np.broadcast_to(base, (2, 3))})
    row(f"{data}-nan", **{data: np.nan})
    row(f"{data}-inf", **{data: np.array([np.inf, -np.inf])})
    row("N-nan", Err(ValueError, r"\bN\b"), N=np.nan)
    row("N-inf", ok if allow_inf_N else Err(ValueError, r"\bN\b"),
        N=np.inf)
    row("N-just-below-1", Err(ValueError, r"\bN\b"), N=BELOW_ONE)
    row("N-1", N=1.0)
    row("N-huge", N=1e300)
    if "t" in names:
        low = 1 if fname == "warmup_mean_of_constant" else 0
        for name, v in [("nan", np.nan), ("inf", np.inf),
                        ("fraction", 2.5), ("negative", -1),
                        ("2**63", 2 ** 63), ("below-least", low - 1)]:
            row(f"t-{name}", Err(ValueError, r"\bt\b"), t=v)
        row("t-huge", t=2 ** 62)
        row("t-huge-N-huge", t=2 ** 62, N=1e300)
    if "initial" in names:
        row("initial-nan", initial=np.nan)
        row("initial-inf", initial=np.inf)
    row("huge-broadcast", Err((ValueError, MemoryError), TOO_BIG),
        **{data: huge_view((2 ** 40, 1)), "N": np.broadcast_to(2.0,
                                                               (2 ** 40,))})
    return cases


def quadratic_model_rows(fname, f, ref, kw):
    cases = []
    ok = Ok(ref)

    def row(name, expect=ok, **given):
        def make():
            merged = {**{"H": H2, "Sigma1": S2}, **kw, **given}
            return args_of(fresh(merged.pop("H")), fresh(merged.pop(
                "Sigma1")), **merged)
        cases.append(Case(f"analytic.{fname}-{name}", f, make, expect))

    for p in ("H", "Sigma1"):
        for dt in [F2, F4, np.int64]:
            row(f"{p}-{np.dtype(dt).name}", **{p: (H2 * 2).astype(dt)})
        for name, make in NON_REAL.items():
            row(f"{p}-{name}", Err(TypeError, rf"\b{p}\b"),
                **{p: make(H2)})
        row(f"{p}-byteswapped", **{p: swapped(H2)})
        row(f"{p}-negative-strides", **{p: reversed_copy(H2)})
        row(f"{p}-nan", Err(ValueError, rf"\b{p}\b"),
            **{p: np.full((2, 2), np.nan)})
        row(f"{p}-inf", Err(ValueError, rf"\b{p}\b"),
            **{p: np.where(np.eye(2) > 0, np.inf, H2)})
        row(f"{p}-0x0", Err(ValueError, rf"\b{p}\b"),
            **{p: np.ones((0, 0))})
    row("H-0d-Sigma1-0d", H=np.float64(1.5), Sigma1=np.float64(0.5),
        **({"phi0": 0.5} if "phi0" in kw else {}))
    for p in [n for n in ("eta", "B", "dt") if n in kw]:
        for name, v in [("nan", np.nan), ("inf", np.inf), ("0", 0.0),
                        ("negative", -1.0)]:
            row(f"{p}-{name}", Err(ValueError, rf"\b{p}\b"), **{p: v})
        for name, v in [("complex", 1j), ("str", "1"), ("bool", True)]:
            row(f"{p}-{name}", Err(TypeError, rf"\b{p}\b"), **{p: v})
        row(f"{p}-float32", **{p: np.float32(kw[p])})
    if "B" in kw:
        row("B-fraction", B=0.5)
        row("B-huge", B=1e300)
    if fname in ("sgd_stationary_cov", "euler_maruyama_stationary_cov"):
        step = "eta" if fname == "sgd_stationary_cov" else "dt"
        row(f"{step}-diverging", Err(ValueError, rf"\b{step}\b.*diverges"),
            **{step: 10.0})
    if "t" in kw:
        for name, v in [("nan", np.nan), ("inf", np.inf),
                        ("negative", -1.0)]:
            row(f"t-{name}", Err(ValueError, r"\bt\b"), t=v)
        row("t-0", t=0.0)
        row("t-huge", t=1e300)
        row("phi0-nan", Err(ValueError, r"\bphi0\b"), phi0=np.nan)
        row("phi0-wrong-shape", Err(ValueError, r"\bphi0\b"),
            phi0=np.ones(3))
        row("phi0-byteswapped", phi0=swapped(np.array([1.0, -2.0])))
    return cases


def least_squares_model_rows(fname, f, ref, kw):
    cases = []
    ok = Ok(ref)

    def row(name, expect=ok, **given):
        def make():
            merged = {"X": X_LS, "y": Y_LS, **kw, **given}
            return args_of(fresh(merged.pop("X")), fresh(merged.pop("y")),
                           **merged)
        cases.append(Case(f"analytic.{fname}-{name}", f, make, expect))

    for p, base in (("X", X_LS), ("y", Y_LS)):
        for dt in [F4, np.int64]:
            row(f"{p}-{np.dtype(dt).name}", **{p: (base * 4).astype(dt)})
        for name, make in NON_REAL.items():
            row(f"{p}-{name}", Err(TypeError, rf"\b{p}\b"),
                **{p: make(base)})
        row(f"{p}-byteswapped", **{p: swapped(base)})
        row(f"{p}-negative-strides", **{p: reversed_copy(base)})
        for name, v in [("nan", np.nan), ("inf", np.inf)]:
            a = base.copy()
            a.flat[2] = v
            row(f"{p}-{name}", Err(ValueError, rf"\b{p}\b"), **{p: a})
    row("X-fortran", X=fortran(X_LS))
    row("X-no-rows", Err(ValueError, r"\bX\b"), X=np.ones((0, 2)),
        y=np.ones(0))
    row("X-no-columns", Err(ValueError, r"\bX\b"), X=np.ones((6, 0)))
    row("y-wrong-length", Err(ValueError, r"\by\b"), y=np.ones(5))
    for p in kw:
        row(f"{p}-nan", Err(ValueError, rf"\b{p}\b"), **{p: np.nan})
        row(f"{p}-inf", Err(ValueError, rf"\b{p}\b"), **{p: np.inf})
        row(f"{p}-0", Err(ValueError, rf"\b{p}\b"), **{p: 0.0})
        row(f"{p}-complex", Err(TypeError, rf"\b{p}\b"), **{p: 1j})
    return cases


def analytic_cases():
    c = []
    c += closed_form_rows("leaky_sum_of_constant",
                          analytic.leaky_sum_of_constant, mp_closed("leaky"),
                          {"c": 1.5, "N": 3.0, "t": 7, "initial": 0.5})
    c += closed_form_rows("ema_of_constant", analytic.ema_of_constant,
                          mp_closed("ema"),
                          {"c": 1.5, "N": 3.0, "t": 7, "initial": 0.5})
    c += closed_form_rows("warmup_mean_of_constant",
                          analytic.warmup_mean_of_constant,
                          ref_warmup_constant, {"c": 1.5, "N": 3.0, "t": 7},
                          allow_inf_N=True)
    c += closed_form_rows("leaky_sum_limit", analytic.leaky_sum_limit,
                          ref_limit, {"c": 1.5, "N": 3.0})
    c += closed_form_rows("leaky_sum_from_ema", analytic.leaky_sum_from_ema,
                          ref_limit, {"mu": 1.5, "N": 3.0})
    c += quadratic_model_rows("sgd_stationary_cov",
                              analytic.sgd_stationary_cov, quad_ref("sgd"),
                              {"eta": 0.1, "B": 2})
    c += quadratic_model_rows("langevin_stationary_cov",
                              analytic.langevin_stationary_cov,
                              quad_ref("langevin"), {"eta": 0.1, "B": 2})
    c += quadratic_model_rows("euler_maruyama_stationary_cov",
                              analytic.euler_maruyama_stationary_cov,
                              quad_ref("euler"),
                              {"eta": 0.1, "B": 2, "dt": 0.05})
    c += quadratic_model_rows("langevin_transient",
                              analytic.langevin_transient,
                              quad_ref("transient"),
                              {"eta": 0.1, "B": 2, "t": 0.7,
                               "phi0": np.array([1.0, -2.0])})
    c += least_squares_model_rows("least_squares_noise",
                                  analytic.least_squares_noise,
                                  ref_least_squares_noise, {})
    c += least_squares_model_rows("mandt_stationary_cov",
                                  analytic.mandt_stationary_cov, ref_mandt,
                                  {"eta": 0.01, "B": 2})
    c += least_squares_model_rows("sgd_least_squares_stationary_cov",
                                  analytic.sgd_least_squares_stationary_cov,
                                  ref_exact_ls, {"eta": 0.01, "B": 2})
    return c


@check(analytic_cases())
def test_closed_forms(case):
    run(case)


def test_every_public_function_has_cases():
    """The tables above reach every public function of the package."""
    public = {f"{name}" for name in sgdprob.__all__
              if callable(getattr(sgdprob, name))}
    public |= {f"gufuncs.{n}" for n in gufuncs.__all__}
    public |= {f"linear.{n}" for n in linear.__all__
               if n not in ("NoiseScale",)}
    public |= {f"analytic.{n}" for n in analytic.__all__}
    ids = [c.id for c in (running_cases() + raw_running_cases()
                          + linear_cases() + linear_alias_cases()
                          + raw_linear_cases() + optim_cases()
                          + monte_carlo_cases() + analytic_cases())]
    covered = {i.split("-")[0] for i in ids}
    assert public - covered == set()
