"""Benchmark of the kernels: ``python -m sgdprob bench``.

Three sections, each of which ``--only`` can pick: the running averages
(``averages``), the per-sample gradient squares of a linear layer
(``linear``) and the Monte Carlo runs (``montecarlo``).

The running averages: times :func:`sgdprob.leaky_sum`, :func:`sgdprob.ema` and
:func:`sgdprob.warmup_mean` on one long series and on a matrix along
either axis, and prints each time as a ratio to three baselines on the
same array:

- ``x.copy()``, the memory-bound limit: a first-order recurrence reads
  every value once and writes one value per input, as a copy does;
- ``scipy.signal.lfilter([b], [1, -a], x, axis=axis)``, which computes
  the same recurrence ``y_t = a y_{t-1} + b x_t`` from ``y_0 = 0``;
- ``pandas ... .ewm(alpha=1/N, adjust=False).mean()``, the exponential
  moving average started from ``mu_1 = x_1``.

SciPy and pandas are optional (``pip install "sgdprob[bench]"``); a
missing one gives ``n/a`` in its column. The functions that build each
baseline are public here so that a test can check that a baseline
computes the numbers it is compared with.

The Monte Carlo runs: times :func:`sgdprob.sgd_quadratic` and
:func:`sgdprob.langevin` against :func:`draw_normals`, which draws with
``Generator.standard_normal`` the normals the kernel draws (the limit:
a run can cost no less than its random numbers), and against a
vectorised NumPy run of the same simulation, :func:`numpy_sgd_quadratic`
and :func:`numpy_langevin`.
"""
import argparse
import dataclasses
import functools
import os
import platform
import statistics
import sys
import time

import numpy as np

from . import _quadratic
from ._montecarlo import _steps_of, _warn_divergent, langevin, sgd_quadratic
from ._running import ema, leaky_sum, warmup_mean

__all__ = ["main", "copy_baseline", "lfilter_baseline", "pandas_baseline",
           "pandas_result", "recurrence_coefficients", "draw_normals",
           "normals_per_step", "numpy_sgd_quadratic", "numpy_langevin"]

KERNELS = {"leaky_sum": leaky_sum, "ema": ema, "warmup_mean": warmup_mean}

#: horizon of every timed call
HORIZON = 1000.0

#: the lfilter row each kernel is compared with (its own recurrence; for
#: warmup_mean, the ema it becomes once t >= N)
LFILTER_ROW = {"leaky_sum": "lfilter b=1", "ema": "lfilter b=1/N",
               "warmup_mean": "lfilter b=1/N"}


@dataclasses.dataclass(frozen=True)
class Case:
    """One timed input: its shape, dtype, time axis and copy-ratio target."""

    shape: tuple
    dtype: type
    axis: int
    target: float       # largest kernel time / copy time aimed at

    @property
    def title(self):
        if len(self.shape) == 1:
            what = f"one series of {self.shape[0]:,} values"
        else:
            what = f"a {self.shape[0]}x{self.shape[1]} matrix"
        return (f"{what}, {np.dtype(self.dtype).name}, axis {self.axis}: "
                f"target /copy <= {self.target:.1f}")


def cases(quick):
    """The inputs timed: full size, or small ones for a smoke test."""
    n, rows, cols = (10**5, 200, 100) if quick else (10**7, 10**4, 10**3)
    return [Case((n,), np.float64, -1, 2.0),
            Case((n,), np.float32, -1, 3.0),
            Case((rows, cols), np.float64, 0, 1.6),
            Case((rows, cols), np.float64, 1, 1.6)]


def recurrence_coefficients(kernel, N):
    """``(a, b)`` of ``y_t = a y_{t-1} + b x_t`` that `kernel` runs.

    For ``warmup_mean`` these are the coefficients once ``t >= N`` (those
    of ``ema``); before that its weights change at every step, which no
    constant-coefficient filter reproduces.
    """
    a = 1.0 - 1.0 / N
    return (a, 1.0) if kernel == "leaky_sum" else (a, 1.0 / N)


def copy_baseline(x):
    """A call that copies `x`: the time to read and write its bytes.

    Parameters
    ----------
    x : ndarray
        The timed input.

    Returns
    -------
    call : callable
        ``x.copy``.
    """
    return x.copy


def lfilter_baseline(kernel, x, N, axis):
    """A call running `kernel`'s recurrence with scipy.signal.lfilter.

    Parameters
    ----------
    kernel : {"leaky_sum", "ema", "warmup_mean"}
        Whose recurrence to run.
    x : ndarray
        The series, along `axis`.
    N : float
        Horizon, ``N > 1``.
    axis : int
        The time axis of `x`.

    Returns
    -------
    call : callable
        A call of no arguments returning
        ``lfilter([b], [1, -a], x, axis=axis)`` (see
        :func:`recurrence_coefficients`), which is
        ``y_t = a y_{t-1} + b x_t`` from ``y_0 = 0`` in the dtype of `x`:
        ``kernel(x, N, axis=axis)`` for ``leaky_sum`` and ``ema``, and
        ``ema(x, N, axis=axis)`` for ``warmup_mean``.

    Raises
    ------
    ImportError
        Without SciPy.
    """
    from scipy.signal import lfilter

    a, b = recurrence_coefficients(kernel, N)
    num = np.array([b], dtype=x.dtype)
    den = np.array([1.0, -a], dtype=x.dtype)
    return lambda: lfilter(num, den, x, axis=axis)


def pandas_baseline(x, N, axis):
    """A call running pandas' exponential moving average along `axis`.

    Parameters
    ----------
    x : ndarray
        One series, or a matrix of series along `axis`.
    N : float
        Horizon, ``N >= 1``.
    axis : int
        The time axis of `x`.

    Returns
    -------
    call : callable
        A call of no arguments returning
        ``data.ewm(alpha=1/N, adjust=False).mean()``, where `data` is a
        Series, or a DataFrame with a column per series, built here and
        not timed. It computes ``mu_1 = x_1`` and
        ``mu_t = (1 - 1/N) mu_{t-1} + x_t / N`` in float64, that is
        ``ema(x, N, axis=axis, initial=x_1)``; :func:`pandas_result`
        turns its result back into an array shaped like `x`.

    Raises
    ------
    ImportError
        Without pandas.
    """
    import pandas as pd

    if x.ndim == 1:
        data = pd.Series(x)
    else:
        data = pd.DataFrame(x if axis % x.ndim == 0 else x.T)
    return lambda: data.ewm(alpha=1.0 / N, adjust=False).mean()


def pandas_result(result, axis):
    """The result of a :func:`pandas_baseline` call as an array like x.

    Parameters
    ----------
    result : pandas.Series or pandas.DataFrame
        What the call returned.
    axis : int
        The time axis given to :func:`pandas_baseline`.

    Returns
    -------
    values : ndarray
        The averages, with the shape of that call's `x`.
    """
    values = result.to_numpy()
    if values.ndim == 2 and axis % 2 == 1:
        values = values.T
    return values


def median_times(calls, repeat):
    """Median wall time in seconds of each call, after a warm-up call.

    The calls take turns, one round of all of them per repeat, so that a
    burst of load from elsewhere on the machine falls on all of them
    rather than on one; the ratios of their medians are then steadier
    than the times themselves. A call of None gets a time of None.
    """
    times = {name: [] for name, call in calls.items() if call is not None}
    for name in times:
        calls[name]()
    for _ in range(repeat):
        for name, samples in times.items():
            t0 = time.perf_counter()
            calls[name]()
            samples.append(time.perf_counter() - t0)
    return {name: statistics.median(times[name]) if name in times else None
            for name in calls}


def optional_baseline(make, *args):
    """``make(*args)``, or None when its library is not installed."""
    try:
        return make(*args)
    except ImportError:
        return None


def library_versions():
    """``name version`` of NumPy, SciPy and pandas, or ``name missing``."""
    found = [f"numpy {np.__version__}"]
    for name in ("scipy", "pandas"):
        try:
            module = __import__(name)
            found.append(f"{name} {module.__version__}")
        except ImportError:
            found.append(f"{name} missing (n/a below)")
    return ", ".join(found)


def cpu_description():
    """Processor model (when Linux tells it) and CPU counts."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii",
                  errors="replace") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    usable = (len(os.sched_getaffinity(0))
              if hasattr(os, "sched_getaffinity") else os.cpu_count())
    return f"{model}; {os.cpu_count()} CPUs, {usable} usable by this process"


def ratio(time_, baseline):
    return "n/a" if baseline is None else f"{time_ / baseline:.2f}"


def milliseconds(time_):
    """A time in seconds as milliseconds with three or more digits."""
    ms = time_ * 1e3
    decimals = 0 if ms >= 100 else 1 if ms >= 10 else 2 if ms >= 1 else 3
    return f"{ms:.{decimals}f}"


def run_case(case, repeat, rng):
    """Time the baselines and kernels on one input; return table rows.

    Each row is (call, ms, /copy, /lfilter, /pandas, target met); the
    baselines' rows have the first three only.
    """
    x = rng.standard_normal(case.shape).astype(case.dtype)
    calls = {"x.copy()": copy_baseline(x)}
    for name in ("leaky_sum", "ema"):
        calls[LFILTER_ROW[name]] = optional_baseline(
            lfilter_baseline, name, x, HORIZON, case.axis)
    calls["pandas ewm"] = optional_baseline(pandas_baseline, x, HORIZON,
                                            case.axis)
    for name, kernel in KERNELS.items():
        calls[name] = functools.partial(kernel, x, HORIZON, axis=case.axis)
    times = median_times(calls, repeat)

    copy_time = times["x.copy()"]
    rows = [("x.copy()", milliseconds(copy_time), "1.00")]
    for name in (LFILTER_ROW["leaky_sum"], LFILTER_ROW["ema"],
                 "pandas ewm"):
        rows.append(baseline_row(name, times[name], copy_time))
    for name in KERNELS:
        t = times[name]
        rows.append((name, milliseconds(t), ratio(t, copy_time),
                     ratio(t, times[LFILTER_ROW[name]]),
                     ratio(t, times["pandas ewm"]),
                     "met" if t / copy_time <= case.target else "not met"))
    return rows


def baseline_row(name, time_, copy_time):
    """A table row for a baseline: its time and ratio to the copy."""
    if time_ is None:
        return (name, "n/a", "n/a")
    return (name, milliseconds(time_), ratio(time_, copy_time))


HEADER = ("call", "ms", "/copy", "/lfilter", "/pandas", "target")
WIDTHS = (14, 9, 7, 9, 8, 9)


def format_row(row):
    """A row of the table: the call's name left, the numbers right."""
    cells = [row[0].ljust(WIDTHS[0])]
    cells += [cell.rjust(width) for cell, width in zip(row[1:], WIDTHS[1:])]
    return "  " + " ".join(cells).rstrip()


NOTES = """\
ms: median wall time of {repeat} call(s) after one warm-up call, the
calls of a table taking turns; every call allocates its output, as
x.copy() does. /copy, /lfilter, /pandas: the call's time divided by
the baseline's (below 1 is faster). target: whether this run met the
target on /copy named above the table.
Baselines, each on the same array as the kernel:
  x.copy()  reads and writes the bytes a recurrence must: the
            memory-bound limit.
  lfilter   scipy.signal.lfilter([b], [1, -a], x, axis=axis): the
            recurrence y_t = a y_{{t-1}} + b x_t from y_0 = 0, in x's
            dtype; a = 1 - 1/N, b = 1 for leaky_sum and 1/N for ema.
            For warmup_mean it runs ema's recurrence: no constant-
            coefficient filter gives warmup_mean's first N steps.
  pandas    Series/DataFrame.ewm(alpha=1/N, adjust=False).mean() on a
            frame built beforehand (a column per series): the ema from
            mu_1 = x_1, computed in float64.
n/a: the baseline's library is not installed (pip install
"sgdprob[bench]")."""


LINEAR_NOTES = """\
Per-sample gradient squares of a linear layer, W.grad2 =
(1/B) sum_b ygrad[b]^2 x[b]^2 (outer product), and moments = (W.grad,
W.grad2). x is (B, I), ygrad (B, J). Baselines on the same arrays:
  numpy grad2    (g*g).T @ (x*x) / B: two squared copies, then one GEMM.
  numpy moments  that and g.T @ x / B.
  einsum         materialises W.grad[b, j, i] = einsum("bj,bi->bji")
                 (B J I values) and averages its squares; timed once.
threads: BLAS threads (1: limited with threadpoolctl; all: its default).
peak MiB: tracemalloc's peak over the call, the output included; the
target is at most the output + 4 MiB at one thread and
time <= 1.05 x numpy's (median of {repeat})."""


def linear_shapes(quick):
    """(B, J, I) of the per-sample gradient cases."""
    return [(64, 96, 80)] if quick else [(256, 1024, 1024), (1024, 512, 784)]


def numpy_grad2(x, g):
    """W.grad2 the NumPy way: ``(g*g).T @ (x*x) / B``."""
    return (g * g).T @ (x * x) / x.shape[0]


def numpy_moments(x, g):
    """(W.grad, W.grad2) the NumPy way."""
    return g.T @ x / x.shape[0], numpy_grad2(x, g)


def einsum_grad2(x, g):
    """W.grad2 by materialising every per-sample gradient."""
    per_sample = np.einsum("bj,bi->bji", g, x)
    np.square(per_sample, out=per_sample)
    return per_sample.mean(axis=0)


def traced_peak(call):
    """tracemalloc's peak, in bytes, over one call (its result included)."""
    import tracemalloc

    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = call()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    del result
    return peak


def blas_threads(limit):
    """A context limiting BLAS threads to `limit` (None: no limit)."""
    import contextlib

    if limit is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=limit, user_api="blas")


def run_linear_case(shape, dtype, repeat, rng):
    """Rows for one (B, J, I) and dtype; see LINEAR_NOTES."""
    from . import linear

    B, J, I = shape
    x = rng.standard_normal((B, I)).astype(dtype)
    g = rng.standard_normal((B, J)).astype(dtype)
    out_bytes = J * I * np.dtype(dtype).itemsize
    pairs = [("grad2", linear.grad2, numpy_grad2, out_bytes),
             ("moments", linear.moments, numpy_moments, 2 * out_bytes)]
    rows = []
    met = total = 0
    einsum_time = None
    for threads in (1, None):
        try:
            context = blas_threads(threads)
        except ImportError:
            rows.append(("(threadpoolctl missing: no one-thread rows)",))
            continue
        with context:
            calls = {}
            for name, ours, theirs, _ in pairs:
                calls["numpy " + name] = functools.partial(theirs, x, g)
                calls["sgdprob " + name] = functools.partial(ours, x, g)
            times = median_times(calls, repeat)
            if threads is None:
                t0 = time.perf_counter()
                einsum_grad2(x, g)
                einsum_time = time.perf_counter() - t0
        label = "1" if threads == 1 else "all"
        for name, ours, _, size in pairs:
            t_np, t_us = times["numpy " + name], times["sgdprob " + name]
            rows.append(("numpy " + name, label, milliseconds(t_np), "1.00",
                         "", "", ""))
            cells = ["sgdprob " + name, label, milliseconds(t_us),
                     ratio(t_us, t_np), "", "", ""]
            if threads == 1:
                with blas_threads(1):
                    peak = traced_peak(functools.partial(ours, x, g))
                ok = t_us <= 1.05 * t_np and peak <= size + 4 * 2**20
                cells[5] = f"{peak / 2**20:.1f}"
                cells[6] = "met" if ok else "not met"
                met += ok
                total += 1
            rows.append(tuple(cells))
    if einsum_time is not None:
        rows.append(("einsum grad2", "all", milliseconds(einsum_time), "",
                     "1.00", "", ""))
        for row_index, row in enumerate(rows):
            if row[0].startswith("sgdprob") and row[1] == "all":
                t = float(row[2]) / 1e3
                rows[row_index] = row[:4] + (ratio(t, einsum_time),) + row[5:]
    return rows, met, total


LINEAR_HEADER = ("call", "threads", "ms", "/numpy", "/einsum", "peak MiB",
                 "target")
LINEAR_WIDTHS = (16, 7, 9, 7, 8, 9, 8)


def format_linear_row(row):
    if len(row) == 1:
        return "  " + row[0]
    cells = [row[0].ljust(LINEAR_WIDTHS[0])]
    cells += [c.rjust(w) for c, w in zip(row[1:], LINEAR_WIDTHS[1:])]
    return "  " + " ".join(cells).rstrip()


def run_linear(quick, repeat):
    """Print the per-sample gradient tables; return (met, total)."""
    rng = np.random.default_rng(2)
    met = total = 0
    for shape in linear_shapes(quick):
        for dtype in (np.float64, np.float32):
            B, J, I = shape
            print()
            print(f"per-sample gradient squares, (B, J, I) = ({B}, {J}, {I}),"
                  f" {np.dtype(dtype).name}: target /numpy <= 1.05 on one "
                  "thread")
            print(format_linear_row(LINEAR_HEADER))
            rows, m, t = run_linear_case(shape, dtype, repeat, rng)
            for row in rows:
                print(format_linear_row(row))
            met += m
            total += t
            sys.stdout.flush()
    return met, total


MONTECARLO_NOTES = """\
Monte Carlo runs from Phi = 0 on H = diag(linspace(1, 2, d)), Sigma1 = I,
eta = {eta:g} (eta lambda_max = {eta_top:g}); for langevin dt = {dt:g} and
time = steps dt. normals: how many a run draws, steps replicas B d for
sgd_quadratic and steps replicas d for langevin (one d-vector per step;
B only scales it). ms: median of {repeat} call(s) after one warm-up call,
the three calls of a row taking turns. /normals, /numpy: the kernel's
time divided by the baseline's; target: /normals <= {target:g}. Baselines,
with the same Generator:
  normals  Generator.standard_normal(out=block) once per step into one
           (replicas, B, d) block, (replicas, d) for langevin: the
           draws alone, which bound a run's time from below (one draw
           of them all would also time allocating up to 1.3 GB).
  numpy    the same run in NumPy, a Python loop over steps on (replicas,
           d) arrays: each step draws that block, then for SGD
           phi -= eta (phi @ H + z.mean(axis=1) @ S), for langevin
           phi = phi - dt phi @ H + sqrt(eta dt / B) z @ S, with S the
           symmetric root of Sigma1. From the same seed it gives the
           kernel's states to rounding: the kernel draws the same
           normals in the same order."""

#: learning rate of the timed runs (eta lambda_max = 0.2 on H below)
MC_ETA = 0.1
#: Euler-Maruyama step of the timed langevin runs
MC_DT = 0.01
#: largest kernel time / normals time aimed at
MC_TARGET = 1.25
MC_KERNELS = {"sgd_quadratic": sgd_quadratic, "langevin": langevin}


def montecarlo_cases(quick):
    """``(cases, steps)``: the (d, B, replicas) timed, and the steps."""
    if quick:
        return [(1, 1, 2000), (1, 16, 200), (10, 1, 200), (10, 16, 20)], 100
    return [(1, 1, 10**5), (1, 16, 10**4), (10, 1, 10**4),
            (10, 16, 10**3)], 1000


def montecarlo_model(d):
    """``(H, Sigma1)`` of the timed runs: diag(linspace(1, 2, d)), I."""
    return np.diag(np.linspace(1.0, 2.0, d)), np.eye(d)


def normals_per_step(kernel, d, B, replicas):
    """The shape of the normals one step of `kernel` draws.

    Parameters
    ----------
    kernel : {"sgd_quadratic", "langevin"}
        The Monte Carlo kernel.
    d : int
        Dimension of the state.
    B : int
        Batch size.
    replicas : int
        Independent runs.

    Returns
    -------
    shape : tuple of int
        ``(replicas, B, d)`` for ``sgd_quadratic``, which draws the
        noise of every sample of a batch, and ``(replicas, d)`` for
        ``langevin``, which draws one d-vector per replica whatever `B`
        (see the Notes of either). A run of ``steps`` steps draws
        ``steps`` such blocks, in the C order of ``(steps,) + shape``.

    Raises
    ------
    ValueError
        If `kernel` is not one of the two, or a count is below 1.
    TypeError
        If a count is not an integer.
    """
    if kernel not in MC_KERNELS:
        raise ValueError(
            f"kernel must be one of {sorted(MC_KERNELS)}; got {kernel!r}")
    d = _quadratic.count(d, "d")
    B = _quadratic.count(B, "B")
    replicas = _quadratic.count(replicas, "replicas")
    return (replicas, B, d) if kernel == "sgd_quadratic" else (replicas, d)


def draw_normals(steps, shape, rng=None):
    """Draw ``steps`` blocks of normals into one buffer: the draws alone.

    Parameters
    ----------
    steps : int
        Blocks to draw, >= 1.
    shape : int or tuple of int
        Shape of one block, every entry >= 1 (see
        :func:`normals_per_step`).
    rng : None, int, SeedSequence or numpy.random.Generator, optional
        As ``np.random.default_rng(rng)`` reads it; a Generator is
        advanced.

    Returns
    -------
    block : ndarray
        The last block drawn. The Generator has then advanced by
        ``steps * prod(shape)`` normals of ``Generator.standard_normal``,
        as a kernel run drawing that many does.

    Raises
    ------
    ValueError
        If `steps` or an entry of `shape` is below 1.
    TypeError
        If one of them is not an integer.
    """
    steps = _quadratic.count(steps, "steps")
    shape = (shape,) if np.ndim(shape) == 0 else tuple(shape)
    shape = tuple(_quadratic.count(n, "each entry of shape") for n in shape)
    rng = np.random.default_rng(rng)
    block = np.empty(shape)
    for _ in range(steps):
        rng.standard_normal(out=block)
    return block


def _mc_model(H, Sigma1):
    """H checked, its eigenvalues, and the symmetric root of Sigma1."""
    H = _quadratic.symmetric(H, "H")
    root = _quadratic.noise_sqrt(_quadratic.noise(Sigma1, H.shape[0]))
    return H, np.linalg.eigvalsh(H), root


def numpy_sgd_quadratic(H, Sigma1, *, eta, B, steps, replicas, rng=None):
    """:func:`sgdprob.sgd_quadratic` from 0 in NumPy, a loop over steps.

    Parameters
    ----------
    H : array_like, shape (d, d)
        Hessian, symmetric (a scalar is a 1 x 1 matrix).
    Sigma1 : array_like, shape (d, d)
        Covariance of one per-sample gradient, symmetric positive
        semi-definite.
    eta : float
        Learning rate, > 0.
    B : int
        Batch size, >= 1.
    steps : int
        SGD steps, >= 1.
    replicas : int
        Independent runs, >= 1.
    rng : None, int, SeedSequence or numpy.random.Generator, optional
        As ``np.random.default_rng(rng)`` reads it; a Generator is
        advanced.

    Returns
    -------
    phi : ndarray, shape (replicas, d)
        The states after `steps` steps of
        ``phi -= eta * (phi @ H + z.mean(axis=1) @ S)`` from 0, where
        each step draws ``z = rng.standard_normal((replicas, B, d))``,
        the noise of each of the B samples of a batch, and ``S`` is the
        symmetric root of `Sigma1`. These are the normals
        ``sgd_quadratic`` draws, in its order: from the same seed the
        two agree to rounding.

    Raises
    ------
    ValueError
        If a matrix is not square, symmetric or finite, `Sigma1` is not
        positive semi-definite or not the shape of `H`, or a count or
        `eta` is not positive.
    TypeError
        If an argument is not a number or array of numbers.

    Warns
    -----
    RuntimeWarning
        As ``sgd_quadratic``: if ``eta`` times the largest eigenvalue of
        `H` is at least 2, or `H` has a negative eigenvalue.
    """
    H, lam, root = _mc_model(H, Sigma1)
    eta = _quadratic.positive(eta, "eta")
    B = _quadratic.count(B, "B")
    steps = _quadratic.count(steps, "steps")
    replicas = _quadratic.count(replicas, "replicas")
    _warn_divergent(eta, lam, "eta", "SGD")
    rng = np.random.default_rng(rng)
    phi = np.zeros((replicas, H.shape[0]))
    z = np.empty((replicas, B, H.shape[0]))
    for _ in range(steps):
        rng.standard_normal(out=z)
        phi -= eta * (phi @ H + z.mean(axis=1) @ root)
    return phi


def numpy_langevin(H, Sigma1, *, eta, B, time, dt, replicas, rng=None):
    """:func:`sgdprob.langevin` from 0 in NumPy, a loop over steps.

    Parameters
    ----------
    H : array_like, shape (d, d)
        Hessian, symmetric (a scalar is a 1 x 1 matrix).
    Sigma1 : array_like, shape (d, d)
        Covariance of one per-sample gradient, symmetric positive
        semi-definite.
    eta : float
        Learning rate of the SGD modelled, > 0.
    B : int
        Its batch size, >= 1.
    time : float
        Model time, > 0, a whole number of steps `dt` (within 1e-9).
    dt : float
        Time step, > 0.
    replicas : int
        Independent runs, >= 1.
    rng : None, int, SeedSequence or numpy.random.Generator, optional
        As ``np.random.default_rng(rng)`` reads it; a Generator is
        advanced.

    Returns
    -------
    phi : ndarray, shape (replicas, d)
        The states after ``round(time / dt)`` Euler-Maruyama steps of
        ``phi = phi - dt * phi @ H + sqrt(eta dt / B) * z @ S`` from 0,
        where each step draws ``z = rng.standard_normal((replicas,
        d))`` and ``S`` is the symmetric root of `Sigma1`: the normals
        ``langevin`` draws, in its order, so that from the same seed the
        two agree to rounding.

    Raises
    ------
    ValueError
        If a matrix is not square, symmetric or finite, `Sigma1` is not
        positive semi-definite or not the shape of `H`, a count, `eta`,
        `time` or `dt` is not positive, or `time` is not a whole number
        of steps `dt`.
    TypeError
        If an argument is not a number or array of numbers.

    Warns
    -----
    RuntimeWarning
        As ``langevin``: if ``dt`` times the largest eigenvalue of `H`
        is at least 2, or `H` has a negative eigenvalue.
    """
    H, lam, root = _mc_model(H, Sigma1)
    eta = _quadratic.positive(eta, "eta")
    B = _quadratic.count(B, "B")
    steps, dt = _steps_of(time, dt)
    replicas = _quadratic.count(replicas, "replicas")
    _warn_divergent(dt, lam, "dt", "the Euler-Maruyama scheme")
    rng = np.random.default_rng(rng)
    gain = np.sqrt(eta * dt / B)
    phi = np.zeros((replicas, H.shape[0]))
    z = np.empty((replicas, H.shape[0]))
    for _ in range(steps):
        rng.standard_normal(out=z)
        phi = phi - dt * (phi @ H) + gain * (z @ root)
    return phi


MC_BASELINES = {"sgd_quadratic": numpy_sgd_quadratic,
                "langevin": numpy_langevin}


def short_count(n):
    """A count as ``1.6e8``: two digits and a power of ten."""
    mantissa, exponent = f"{n:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def run_montecarlo_case(kernel, d, B, replicas, steps, repeat, rng):
    """Time `kernel`, its normals and its NumPy run; return a table row.

    The row is (d, B, replicas, normals, ms, normals ms, numpy ms,
    /normals, /numpy, target met); see MONTECARLO_NOTES.
    """
    H, Sigma1 = montecarlo_model(d)
    if kernel == "sgd_quadratic":
        args = {"eta": MC_ETA, "B": B, "steps": steps}
    else:
        args = {"eta": MC_ETA, "B": B, "time": steps * MC_DT, "dt": MC_DT}
    args.update(replicas=replicas, rng=rng)
    shape = normals_per_step(kernel, d, B, replicas)
    calls = {"normals": functools.partial(draw_normals, steps, shape, rng),
             "numpy": functools.partial(MC_BASELINES[kernel], H, Sigma1,
                                        **args),
             kernel: functools.partial(MC_KERNELS[kernel], H, Sigma1,
                                       **args)}
    times = median_times(calls, repeat)
    t, t_normals, t_numpy = times[kernel], times["normals"], times["numpy"]
    return (str(d), str(B), f"{replicas:,}",
            short_count(steps * int(np.prod(shape))), milliseconds(t),
            milliseconds(t_normals), milliseconds(t_numpy),
            ratio(t, t_normals), ratio(t, t_numpy),
            "met" if t / t_normals <= MC_TARGET else "not met")


MC_HEADER = ("d", "B", "replicas", "normals", "ms", "normals ms",
             "numpy ms", "/normals", "/numpy", "target")
MC_WIDTHS = (2, 3, 8, 7, 7, 10, 9, 8, 7, 7)


def format_mc_row(row):
    """A row of a Monte Carlo table, every cell to the right."""
    cells = [cell.rjust(width) for cell, width in zip(row, MC_WIDTHS)]
    return "  " + " ".join(cells)


def run_montecarlo(quick, repeat):
    """Print the Monte Carlo tables; return (met, total)."""
    rng = np.random.default_rng(3)
    cases_, steps = montecarlo_cases(quick)
    met = 0
    for kernel in MC_KERNELS:
        print()
        print(f"{kernel}, {steps} steps: target /normals <= "
              f"{MC_TARGET:g}")
        print(format_mc_row(MC_HEADER))
        for d, B, replicas in cases_:
            row = run_montecarlo_case(kernel, d, B, replicas, steps,
                                      repeat, rng)
            print(format_mc_row(row))
            met += row[-1] == "met"
            sys.stdout.flush()
    return met, len(MC_KERNELS) * len(cases_)


SECTIONS = ("averages", "linear", "montecarlo")


def run_averages(quick, repeat):
    """Print the running-average tables; return (met, total)."""
    rng = np.random.default_rng(1)
    met = total = 0
    for case in cases(quick):
        print()
        print(case.title)
        print(format_row(HEADER))
        for row in run_case(case, repeat, rng):
            print(format_row(row))
            total += len(row) == len(HEADER)
            met += row[-1] == "met"
        sys.stdout.flush()
    return met, total


def main(argv=None):
    """Run the benchmark and print its tables.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after ``bench``: ``--quick`` (small inputs, one
        repeat: a smoke test), ``--repeat K`` and ``--only SECTION``
        (``averages``, ``linear`` or ``montecarlo``; may be given more
        than once). Default: sys.argv[1:].

    Returns
    -------
    status : int
        0; a target that is not met is reported, not an error.
    """
    parser = argparse.ArgumentParser(
        prog="python -m sgdprob bench",
        description="Time the running-average kernels against x.copy(), "
                    "scipy.signal.lfilter and pandas ewm, the per-sample "
                    "gradient squares against NumPy, and the Monte Carlo "
                    "runs against drawing their normals alone.")
    parser.add_argument("--quick", action="store_true",
                        help="small inputs and one repeat (a smoke test; "
                             "the ratios then say little)")
    parser.add_argument("--repeat", type=int, default=None, metavar="K",
                        help="timed calls per median (default 7 for the "
                             "running averages, 5 for the others, or 1 "
                             "with --quick)")
    parser.add_argument("--only", action="append", choices=SECTIONS,
                        metavar="SECTION",
                        help="run only this section: averages, linear or "
                             "montecarlo (may be repeated; default all)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    sections = [name for name in SECTIONS
                if args.only is None or name in args.only]

    def repeat_of(full):
        if args.repeat is not None:
            return args.repeat
        return 1 if args.quick else full

    repeat, other_repeat = repeat_of(7), repeat_of(5)
    what = {"averages": "running averages against x.copy(), "
                        "scipy.signal.lfilter and pandas ewm",
            "linear": "per-sample gradient squares against NumPy",
            "montecarlo": "Monte Carlo runs against their normal draws"}
    print("sgdprob benchmark: " + "; ".join(what[name] for name in sections))
    print(f"Python {platform.python_version()}, {library_versions()}")
    print(f"CPU: {cpu_description()}")
    if "averages" in sections:
        print(f"N = {HORIZON:g}; median of {repeat} timed call(s)"
              + (" (--quick: small inputs)" if args.quick else ""))
    elif args.quick:
        print("--quick: small inputs")
    met = total = 0
    runs = {"averages": (run_averages, repeat),
            "linear": (run_linear, other_repeat),
            "montecarlo": (run_montecarlo, other_repeat)}
    for name in sections:
        run, repeat_ = runs[name]
        m, t = run(args.quick, repeat_)
        met += m
        total += t
    print()
    print(f"targets met: {met} of {total}")
    print()
    if args.quick:
        print("--quick: small inputs, so the ratios say little; the "
              "targets are for\nthe full sizes.")
    if "averages" in sections:
        print(NOTES.format(repeat=repeat))
    if "linear" in sections:
        print(LINEAR_NOTES.format(repeat=other_repeat))
    if "montecarlo" in sections:
        print(MONTECARLO_NOTES.format(
            eta=MC_ETA, eta_top=MC_ETA * 2.0, dt=MC_DT,
            repeat=other_repeat, target=MC_TARGET))
    return 0
