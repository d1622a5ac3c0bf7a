"""Resources, threads and interrupts.

- leaks: every public function, and the C functions of the Monte Carlo
  module, called many times on small inputs, both succeeding and raising,
  leaves memory and reference counts flat;
- threads: eight threads calling every kernel at once on shared read-only
  inputs get the serial results bit for bit, and a long kernel call lets
  another Python thread run;
- interrupts: SIGINT stops a long Monte Carlo run in a child interpreter
  with KeyboardInterrupt within a second, and the child goes on working.

SGDPROB_LEAK_CALLS sets the number of calls of each leak test (default
10**5); the slack of every check scales with it.
"""
import ctypes
import ctypes.util
import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc

import numpy as np
import pytest

import sgdprob
from sgdprob import _simulate, gufuncs, linear


def frozen(value):
    """value as a new read-only float64 array."""
    arr = np.array(value, dtype=np.float64)
    arr.flags.writeable = False
    return arr


# --- small inputs of the leak tests ----------------------------------------

X = frozen(np.linspace(-1.0, 1.0, 8))            # a series
P = frozen(np.linspace(0.5, 2.0, 8))             # a second moment, > 0
W = frozen(np.arange(6.0).reshape(2, 3) / 6)     # (J, I)
XB = frozen(np.linspace(-1.0, 1.0, 12).reshape(4, 3))   # (B, I)
YG = frozen(np.linspace(0.5, 2.0, 8).reshape(4, 2))     # (B, J)
BAD_XB = frozen(np.ones((4, 5)))                 # I = 5 is not W's 3
H2 = frozen(np.diag([1.0, 2.0]))
S2 = frozen(np.eye(2))
NOT_PSD = frozen([[1.0, 2.0], [2.0, 1.0]])
LS_X = frozen(np.linspace(-1.0, 1.0, 10).reshape(5, 2))
LS_Y = frozen(np.linspace(0.0, 1.0, 5))
COMPLEX = np.ones(8, dtype=complex)
COMPLEX.flags.writeable = False
GEN = np.random.default_rng(1)
BITGEN = GEN.bit_generator
CAPSULE = BITGEN.capsule
PSI = np.zeros((2, 3))                  # (d, replicas), advanced in place
PHI = np.zeros((3, 2))                  # (replicas, p), advanced in place
MEANS = np.zeros((4, 2))                # (batches, d)
MEANS1 = np.zeros((4, 1))               # d = 1, not G's 2


class Case:
    """A function, a call that succeeds, a call that raises, and the
    objects whose reference counts the calls must leave alone."""

    def __init__(self, ok, bad, error, *objects):
        self.ok, self.bad, self.error = ok, bad, error
        self.objects = objects


def _wrong_out(n):
    return np.empty(n)


LEAK_CASES = {
    # running averages: the bad call fails inside the ufunc machinery
    "leaky_sum": Case(lambda: sgdprob.leaky_sum(X, 4.0),
                      lambda: sgdprob.leaky_sum(X, 4.0, out=_wrong_out(7)),
                      ValueError, X, sgdprob.leaky_sum),
    "ema": Case(lambda: sgdprob.ema(X, 4.0, initial=0.5),
                lambda: sgdprob.ema(X, 0.5), ValueError, X, sgdprob.ema),
    "warmup_mean": Case(lambda: sgdprob.warmup_mean(X, 4.0, start=3),
                        lambda: sgdprob.warmup_mean(X, 4.0, start=-1),
                        ValueError, X, sgdprob.warmup_mean),
    # the raw gufuncs: a missing loop or a core dimension that disagrees
    "gufuncs.leaky_sum": Case(
        lambda: gufuncs.leaky_sum(X, 4.0, 0.0),
        lambda: gufuncs.leaky_sum(COMPLEX, 4.0, 0.0), TypeError,
        X, COMPLEX, gufuncs.leaky_sum),
    "gufuncs.ema": Case(
        lambda: gufuncs.ema(X, 4.0, 0.0),
        lambda: gufuncs.ema(X, 4.0, 0.0, out=_wrong_out(7)), ValueError,
        X, gufuncs.ema),
    "gufuncs.warmup_mean": Case(
        lambda: gufuncs.warmup_mean(X, 4.0, 0.0, 2),
        lambda: gufuncs.warmup_mean(X, 4.0, 0.0, 2.5), TypeError,
        X, gufuncs.warmup_mean),
    "gufuncs.linear_forward": Case(
        lambda: gufuncs.linear_forward(W, XB),
        lambda: gufuncs.linear_forward(W, BAD_XB), ValueError,
        W, XB, BAD_XB, gufuncs.linear_forward),
    "gufuncs.linear_input_grad": Case(
        lambda: gufuncs.linear_input_grad(W, YG),
        lambda: gufuncs.linear_input_grad(W, XB), ValueError,
        W, YG, XB, gufuncs.linear_input_grad),
    "gufuncs.linear_grad": Case(
        lambda: gufuncs.linear_grad(XB, YG),
        lambda: gufuncs.linear_grad(XB, W), ValueError,
        XB, YG, W, gufuncs.linear_grad),
    "gufuncs.linear_per_sample_grad": Case(
        lambda: gufuncs.linear_per_sample_grad(XB, YG),
        lambda: gufuncs.linear_per_sample_grad(XB, W), ValueError,
        XB, YG, W, gufuncs.linear_per_sample_grad),
    "gufuncs.linear_grad2": Case(
        lambda: gufuncs.linear_grad2(XB, YG),
        lambda: gufuncs.linear_grad2(XB, W), ValueError,
        XB, YG, W, gufuncs.linear_grad2),
    "gufuncs.linear_moments": Case(
        lambda: gufuncs.linear_moments(XB, YG),
        lambda: gufuncs.linear_moments(XB, YG, out=(_wrong_out(3), None)),
        ValueError, XB, YG, gufuncs.linear_moments),
    "gufuncs.linear_variance": Case(
        lambda: gufuncs.linear_variance(XB, YG, 1.0),
        lambda: gufuncs.linear_variance(XB, W, 1.0), ValueError,
        XB, YG, W, gufuncs.linear_variance),
    "gufuncs.rmsprop_step": Case(
        lambda: gufuncs.rmsprop_step(X, P, X, P, 0.1, 10.0, 1e-8),
        lambda: gufuncs.rmsprop_step(X, P, X, COMPLEX, 0.1, 10.0, 1e-8),
        TypeError, X, P, COMPLEX, gufuncs.rmsprop_step),
    "gufuncs.adam_step": Case(
        lambda: gufuncs.adam_step(X, X, P, X, P, 3, 0.1, 10.0, 100.0,
                                  1e-8),
        lambda: gufuncs.adam_step(X, X, P, X, P[:7], 3, 0.1, 10.0, 100.0,
                                  1e-8),
        ValueError, X, P, gufuncs.adam_step),
    # the linear layer: the bad call fails in the argument checks
    "linear.forward": Case(
        lambda: linear.forward(W, XB), lambda: linear.forward(W, BAD_XB),
        ValueError, W, XB, BAD_XB, linear.forward),
    "linear.input_grad": Case(
        lambda: linear.input_grad(W, YG),
        lambda: linear.input_grad(W, XB), ValueError,
        W, YG, XB, linear.input_grad),
    "linear.grad": Case(
        lambda: linear.grad(XB, YG),
        lambda: linear.grad(XB, YG, out=_wrong_out(6)), ValueError,
        XB, YG, linear.grad),
    "linear.per_sample_grad": Case(
        lambda: linear.per_sample_grad(XB, YG),
        lambda: linear.per_sample_grad(XB, W), ValueError,
        XB, YG, W, linear.per_sample_grad),
    "linear.grad2": Case(
        lambda: linear.grad2(XB, YG),
        lambda: linear.grad2(XB, YG, out=_wrong_out(6)), ValueError,
        XB, YG, linear.grad2),
    "linear.moments": Case(
        lambda: linear.moments(XB, YG),
        lambda: linear.moments(XB, YG, out=_wrong_out(6)), ValueError,
        XB, YG, linear.moments),
    "linear.variance": Case(
        lambda: linear.variance(XB, YG, ddof=1),
        lambda: linear.variance(XB, YG, ddof=4), ValueError,
        XB, YG, linear.variance),
    "linear.noise_scale": Case(
        lambda: linear.noise_scale(XB, YG),
        lambda: linear.noise_scale(XB[:1], YG[:1]), ValueError,
        XB, YG, linear.noise_scale),
    # one optimiser step
    "rmsprop_step": Case(
        lambda: sgdprob.rmsprop_step(X, P, X, P, eta=0.1, N=10.0),
        lambda: sgdprob.rmsprop_step(X, P, X, P, eta=0.1, N=0.5),
        ValueError, X, P, sgdprob.rmsprop_step),
    "adam_step": Case(
        lambda: sgdprob.adam_step(X, X, P, X, P, 3, eta=0.1, N_g=10.0,
                                  N_s=100.0),
        lambda: sgdprob.adam_step(X, X, P, X, P, 3, eta=0.1, N_g=10.0,
                                  N_s=100.0, out=_wrong_out(8)),
        ValueError, X, P, sgdprob.adam_step),
    # Monte Carlo runs: the bad call fails after the matrices are checked
    "batch_noise_cov": Case(
        lambda: sgdprob.batch_noise_cov(LS_X, 2, n_batches=4, rng=GEN),
        lambda: sgdprob.batch_noise_cov(LS_X, 6, n_batches=4,
                                        replace=False, rng=GEN),
        ValueError, LS_X, GEN, BITGEN, sgdprob.batch_noise_cov),
    "sgd_quadratic": Case(
        lambda: sgdprob.sgd_quadratic(H2, S2, eta=0.1, B=2, steps=2,
                                      replicas=3, rng=GEN, record_every=1),
        lambda: sgdprob.sgd_quadratic(H2, NOT_PSD, eta=0.1, B=2, steps=2,
                                      replicas=3, rng=GEN),
        ValueError, H2, S2, NOT_PSD, GEN, BITGEN, sgdprob.sgd_quadratic),
    "langevin": Case(
        lambda: sgdprob.langevin(H2, S2, eta=0.1, B=2, time=0.2, dt=0.1,
                                 replicas=3, phi0=X[:2], rng=GEN),
        lambda: sgdprob.langevin(H2, S2, eta=0.1, B=2, time=0.25, dt=0.1,
                                 replicas=3, rng=GEN),
        ValueError, H2, S2, X, GEN, BITGEN, sgdprob.langevin),
    "sgd_least_squares": Case(
        lambda: sgdprob.sgd_least_squares(LS_X, LS_Y, eta=0.1, B=2, steps=2,
                                          replicas=3, replace=False,
                                          rng=GEN),
        lambda: sgdprob.sgd_least_squares(LS_X, LS_Y, eta=0.1, B=2, steps=2,
                                          replicas=3, phi0=X[:3], rng=GEN),
        ValueError, LS_X, LS_Y, X, GEN, BITGEN, sgdprob.sgd_least_squares),
    # the C functions under them: the bad call fails in their own checks
    "_simulate.linear_gaussian_steps": Case(
        lambda: _simulate.linear_gaussian_steps(CAPSULE, X[:2], S2, 2,
                                                PSI, 2, False),
        lambda: _simulate.linear_gaussian_steps(CAPSULE, X[:2], S2, 2,
                                                PSI.T, 2, False),
        TypeError, CAPSULE, X, W, PSI, _simulate.linear_gaussian_steps),
    "_simulate.least_squares_steps": Case(
        lambda: _simulate.least_squares_steps(CAPSULE, LS_X, LS_Y, 0.1, 2,
                                              False, PHI, 2, False),
        lambda: _simulate.least_squares_steps(CAPSULE, LS_X, LS_Y, 0.1, 6,
                                              False, PHI, 2, False),
        ValueError, CAPSULE, LS_X, LS_Y, PHI, _simulate.least_squares_steps),
    "_simulate.batch_means": Case(
        lambda: _simulate.batch_means(CAPSULE, LS_X, 3, True, MEANS, False),
        lambda: _simulate.batch_means(CAPSULE, LS_X, 3, True, MEANS1, False),
        ValueError, CAPSULE, LS_X, MEANS, MEANS1, _simulate.batch_means),
}


# --- no leaks ---------------------------------------------------------------
#
# A leak loses at least 8 bytes a call (one pointer; an object is 16 bytes
# or more), so CALLS calls of a leaking function lose 8 CALLS bytes or more:
# 800 kB at the default 10**5. Each allowance below is a term per call,
# an eighth to a half of what the smallest leak adds a call, plus a fixed
# term for caches that fill once and may still be growing after the
# warm-up (NumPy's small-array cache, interned strings, a new pymalloc
# arena of 256 KiB):
# - traced memory (tracemalloc; it sees PyMem_RawMalloc, pymalloc and
#   NumPy's data buffers): 1 byte a call, plus 16 KiB;
# - RSS, read after glibc's malloc_trim has handed free pages back: a
#   leaked block costs 16 bytes of pymalloc or 32 of malloc; 4 bytes a
#   call, plus one arena;
# - blocks of pymalloc (sys.getallocatedblocks): a leaked object is at
#   least one block a call; one in a hundred calls, plus 100;
# - objects the collector tracks: a leaked container is one a call; one
#   in a thousand calls, plus 10;
# - the reference counts of the inputs and of the function: exactly equal.
CALLS = int(os.environ.get("SGDPROB_LEAK_CALLS", 10 ** 5))
WARMUP = 1000
TRACED_SLACK = CALLS + (16 << 10)
RSS_SLACK = 4 * CALLS + (256 << 10)
BLOCKS_SLACK = CALLS // 100 + 100
GC_SLACK = CALLS // 1000 + 10

_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None)
_TRIM = getattr(_LIBC, "malloc_trim", None)


def _rss():
    """Resident memory of this process in bytes, free heap trimmed."""
    gc.collect()
    if _TRIM is not None:
        _TRIM(0)
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _usage(objects):
    gc.collect()
    return {"rss": _rss(),
            "traced": tracemalloc.get_traced_memory()[0],
            "blocks": sys.getallocatedblocks(),
            "gc": len(gc.get_objects()),
            "refs": [sys.getrefcount(o) for o in objects]}


def _repeat(call, error, n):
    if error is None:
        for _ in range(n):
            call()
        return
    for _ in range(n):
        try:
            call()
        except error:
            pass
        else:
            raise AssertionError("the bad call did not raise")


def _measure(call, error, objects):
    """Growth of memory and reference counts over CALLS calls, after
    WARMUP more."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        _repeat(call, error, WARMUP)
        before = _usage(objects)
        _repeat(call, error, CALLS)
        after = _usage(objects)
    finally:
        if not was_tracing:
            tracemalloc.stop()
    growth = {k: after[k] - before[k] for k in ("rss", "traced", "blocks",
                                                 "gc")}
    return growth, before["refs"], after["refs"]


def _flat(growth):
    return (growth["traced"] <= TRACED_SLACK and growth["rss"] <= RSS_SLACK
            and growth["blocks"] <= BLOCKS_SLACK
            and growth["gc"] <= GC_SLACK)


needs_proc = pytest.mark.skipif(not os.path.exists("/proc/self/statm"),
                                reason="reads the RSS from /proc")


@needs_proc
@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("outcome", ["ok", "bad"])
@pytest.mark.parametrize("name", LEAK_CASES)
def test_no_leak(name, outcome):
    case = LEAK_CASES[name]
    call = case.ok if outcome == "ok" else case.bad
    error = None if outcome == "ok" else case.error
    if error is not None:
        with pytest.raises(error):
            call()
    else:
        call()
    growth, refs_before, refs_after = _measure(call, error, case.objects)
    assert growth["traced"] <= TRACED_SLACK, growth
    assert growth["rss"] <= RSS_SLACK, growth
    assert growth["blocks"] <= BLOCKS_SLACK, growth
    assert growth["gc"] <= GC_SLACK, growth
    assert refs_after == refs_before


@needs_proc
def test_the_leak_check_sees_the_smallest_leak():
    if 8 * CALLS <= 2 * TRACED_SLACK:
        pytest.skip(f"{CALLS} calls are too few to see 8 bytes a call")
    # a list that grows by one pointer a call: 8 bytes a call
    kept = []
    growth, _, _ = _measure(lambda: kept.append(None), None, ())
    assert growth["traced"] > 2 * TRACED_SLACK, growth
    assert not _flat(growth)
    # a reference to an input kept a call, and an object a call
    arr, held = frozen([1.0]), []
    growth, before, after = _measure(lambda: held.append([arr]), None,
                                     (arr,))
    assert after[0] - before[0] == CALLS
    assert growth["gc"] > GC_SLACK and growth["blocks"] > BLOCKS_SLACK
