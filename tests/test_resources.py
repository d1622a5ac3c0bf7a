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
10**4, which sees a leak of 8 bytes a call; CI runs 10**5); the slack of
every check scales with it.
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
    # running averages: a wrong out= fails in the ufunc machinery, an
    # invalid parameter in the checks
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
CALLS = int(os.environ.get("SGDPROB_LEAK_CALLS", 10 ** 4))
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


# --- threads ----------------------------------------------------------------
#
# Inputs larger than NumPy's threshold for releasing the GIL around a loop
# (500 elements), so that the threads really run the kernels at once.

_DRAW = np.random.default_rng(2026)
TX = frozen(_DRAW.standard_normal((16, 300)))       # 16 series
TP = frozen(_DRAW.uniform(0.5, 2.0, (16, 300)))     # second moments, > 0
TW = frozen(_DRAW.standard_normal((24, 40)))        # (J, I)
TXB = frozen(_DRAW.standard_normal((64, 40)))       # (B, I)
TYG = frozen(_DRAW.standard_normal((64, 24)))       # (B, J)
TH = frozen(np.diag([0.5, 1.0, 2.0]))
TS = frozen([[1.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 0.5]])
TLX = frozen(_DRAW.standard_normal((40, 3)))
TLY = frozen(_DRAW.standard_normal(40))
TX32, TXB32, TYG32 = (a.astype(np.float32) for a in (TX, TXB, TYG))
for _a in (TX32, TXB32, TYG32):
    _a.flags.writeable = False

THREAD_KERNELS = {
    "leaky_sum": lambda: sgdprob.leaky_sum(TX, 20.0),
    "ema": lambda: sgdprob.ema(TX, [[5.0], [50.0]], axis=0),
    "warmup_mean": lambda: sgdprob.warmup_mean(TX, 30.0, start=4),
    "gufuncs.leaky_sum": lambda: gufuncs.leaky_sum(TX, 7.0, 1.0),
    "gufuncs.ema": lambda: gufuncs.ema(TX, 7.0, 1.0),
    "gufuncs.warmup_mean": lambda: gufuncs.warmup_mean(TX, 7.0, 1.0, 3),
    "gufuncs.linear_forward": lambda: gufuncs.linear_forward(TW, TXB),
    "gufuncs.linear_input_grad": lambda: gufuncs.linear_input_grad(TW, TYG),
    "gufuncs.linear_grad": lambda: gufuncs.linear_grad(TXB, TYG),
    "gufuncs.linear_per_sample_grad":
        lambda: gufuncs.linear_per_sample_grad(TXB, TYG),
    "gufuncs.linear_grad2": lambda: gufuncs.linear_grad2(TXB, TYG),
    "gufuncs.linear_moments": lambda: gufuncs.linear_moments(TXB, TYG),
    "gufuncs.linear_variance":
        lambda: gufuncs.linear_variance(TXB, TYG, 1.0),
    "gufuncs.rmsprop_step":
        lambda: gufuncs.rmsprop_step(TX, TP, TX, TP, 0.1, 10.0, 1e-8),
    "gufuncs.adam_step":
        lambda: gufuncs.adam_step(TX, TX, TP, TX, TP, 5, 0.1, 10.0, 100.0,
                                  1e-8),
    "linear.forward": lambda: linear.forward(TW, TXB),
    "linear.input_grad": lambda: linear.input_grad(TW, TYG),
    "linear.grad": lambda: linear.grad(TXB, TYG),
    "linear.per_sample_grad": lambda: linear.per_sample_grad(TXB, TYG),
    "linear.grad2": lambda: linear.grad2(TXB.T.T, TYG[::-1]),
    "linear.moments": lambda: linear.moments(TXB, TYG),
    "linear.variance": lambda: linear.variance(TXB, TYG, ddof=1),
    "linear.noise_scale": lambda: linear.noise_scale(TXB, TYG),
    "ema float32": lambda: sgdprob.ema(TX32, 9.0),
    "linear.moments float32": lambda: linear.moments(TXB32, TYG32),
    "linear.variance float32": lambda: linear.variance(TXB32, TYG32),
    "rmsprop_step": lambda: sgdprob.rmsprop_step(TX, TP, TX, TP, eta=0.1,
                                                 N=10.0),
    "adam_step": lambda: sgdprob.adam_step(TX, TX, TP, TX, TP, 5, eta=0.1,
                                           N_g=10.0, N_s=100.0),
    "batch_noise_cov": lambda: sgdprob.batch_noise_cov(
        TLX, 5, n_batches=300, replace=False, rng=11),
    "sgd_quadratic": lambda: sgdprob.sgd_quadratic(
        TH, TS, eta=0.1, B=4, steps=30, replicas=200, rng=12),
    "langevin": lambda: sgdprob.langevin(
        TH, TS, eta=0.1, B=4, time=1.0, dt=0.05, replicas=200, rng=13,
        record_every=4),
    "sgd_least_squares": lambda: sgdprob.sgd_least_squares(
        TLX, TLY, eta=0.05, B=4, steps=50, replicas=20, rng=14),
}

THREADS = 8
PASSES = 10          # over every kernel, in each thread


def _arrays(result):
    """A kernel's result as a tuple of ndarrays."""
    if isinstance(result, tuple):
        return tuple(np.asarray(r) for r in result)
    return (np.asarray(result),)


def _same_bits(a, b):
    return len(a) == len(b) and all(
        x.dtype == y.dtype and x.shape == y.shape
        and x.tobytes() == y.tobytes() for x, y in zip(a, b))


def _in_threads(target, count=THREADS):
    """Run target(k) in count threads released together; re-raise the
    first exception a thread met."""
    barrier = threading.Barrier(count)
    errors = []

    def run(k):
        try:
            barrier.wait()
            target(k)
        except BaseException as exc:        # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_threads_get_the_serial_results_bit_for_bit():
    serial = {name: _arrays(f()) for name, f in THREAD_KERNELS.items()}
    names = list(THREAD_KERNELS)
    wrong = []
    calls = [0] * THREADS

    def work(k):
        # every thread goes through all kernels, each from another one
        order = names[k * 3 % len(names):] + names[:k * 3 % len(names)]
        for _ in range(PASSES):
            for name in order:
                if not _same_bits(_arrays(THREAD_KERNELS[name]()),
                                  serial[name]):
                    wrong.append((k, name))
                calls[k] += 1

    _in_threads(work)
    assert calls == [PASSES * len(names)] * THREADS
    assert wrong == []
    for a in (TX, TP, TW, TXB, TYG, TH, TS, TLX, TLY, TX32, TXB32, TYG32):
        assert not a.flags.writeable


SHARED_RUNS = {
    "batch_noise_cov": lambda gen: sgdprob.batch_noise_cov(
        TLX, 30, n_batches=20_000, rng=gen),
    "sgd_quadratic": lambda gen: sgdprob.sgd_quadratic(
        TH, TS, eta=0.1, B=2, steps=60, replicas=3000, rng=gen,
        record_every=3),
    "langevin": lambda gen: sgdprob.langevin(
        TH, TS, eta=0.1, B=2, time=3.0, dt=0.05, replicas=6000, rng=gen,
        record_every=3),
    "sgd_least_squares": lambda gen: sgdprob.sgd_least_squares(
        TLX, TLY, eta=0.05, B=3, steps=60, replicas=2000, replace=False,
        rng=gen, record_every=3),
}


@pytest.mark.parametrize("name", SHARED_RUNS)
def test_runs_sharing_a_generator_take_whole_turns(name):
    # A run holds the Generator's lock from its first draw to its last,
    # over several calls of its C loop (record_every): runs from several
    # threads on one Generator each draw a contiguous piece of its
    # stream, so together they give the serial runs in some order.
    run = SHARED_RUNS[name]
    gen = np.random.default_rng(77)
    serial = [_arrays(run(gen)) for _ in range(THREADS)]
    end = gen.bit_generator.state
    gen = np.random.default_rng(77)
    got = [None] * THREADS

    def work(k):
        got[k] = _arrays(run(gen))

    _in_threads(work)
    unmatched = list(range(THREADS))
    for result in got:
        match = [i for i in unmatched if _same_bits(result, serial[i])]
        assert match, "a run drew from the middle of another's stream"
        unmatched.remove(match[0])
    assert unmatched == []
    assert gen.bit_generator.state == end


def _count_during(run, stage):
    """Run run() in a worker thread while this thread counts.

    stage() tells where the run is: "before", "during" or "after", from
    the data it is writing. Returns how many times the counter advanced
    while this thread saw the run "during": only a run that lets go of
    the GIL lets this thread see that at all, and the counter then
    advances for as long as the run goes on.
    """
    barrier = threading.Barrier(2)
    done = threading.Event()
    errors = []

    def work():
        try:
            barrier.wait()
            run()
        except BaseException as exc:        # reported below
            errors.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=work)
    worker.start()
    barrier.wait()
    counter = during = 0
    while not done.is_set():
        counter += 1
        if stage() == "during":
            during += 1
    worker.join()
    if errors:
        raise errors[0]
    assert stage() == "after"
    return during, counter


def test_other_threads_run_during_a_long_gufunc_call():
    # 4e7 values: the kernel takes a fraction of a second, writing the
    # series one after the other
    out = np.full((400, 100_000), np.nan)
    x = np.broadcast_to(1.0, out.shape)

    def stage():
        first, last = out[0, 0], out[-1, -1]
        if np.isnan(first):
            return "before"
        return "during" if np.isnan(last) else "after"

    during, counter = _count_during(
        lambda: gufuncs.ema(x, 10.0, 0.0, out=out), stage)
    assert during >= 2, (during, counter)
    np.testing.assert_allclose(out[-1, :3], [0.1, 0.19, 0.271],
                               rtol=1e-15)


@pytest.mark.skipif(not hasattr(_LIBC, "memset"),
                    reason="needs the C library's memset")
def test_the_counter_sees_a_call_only_if_it_lets_go_of_the_gil():
    # memset called through ctypes.PyDLL keeps the GIL, through
    # ctypes.CDLL lets go of it; both write the array front to back
    out = np.full((400, 100_000), np.nan)

    def stage():
        first, last = out[0, 0], out[-1, -1]
        if np.isnan(first):
            return "before"
        return "during" if np.isnan(last) else "after"

    for dll, free in [(ctypes.PyDLL, False), (ctypes.CDLL, True)]:
        out.fill(np.nan)
        memset = dll(_LIBC._name).memset
        memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
        during, counter = _count_during(
            lambda: memset(out.ctypes.data, 0, out.nbytes), stage)
        assert (during >= 2) if free else (during == 0), (dll, during)
    assert not out.any()


def _generator_stage(gen, end_state):
    start = gen.bit_generator.state

    def stage():
        state = gen.bit_generator.state
        if state == start:
            return "before"
        return "after" if state == end_state else "during"
    return stage


LONG_RUN_KW = dict(eta=0.1, B=1, steps=400, replicas=10_000)


def test_other_threads_run_during_a_monte_carlo_run():
    gen = np.random.default_rng(3)
    expected = sgdprob.sgd_quadratic(1.0, 1.0, rng=gen, **LONG_RUN_KW)
    end_state = gen.bit_generator.state
    gen = np.random.default_rng(3)
    result = []
    during, counter = _count_during(
        lambda: result.append(sgdprob.sgd_quadratic(1.0, 1.0, rng=gen,
                                                    **LONG_RUN_KW)),
        _generator_stage(gen, end_state))
    assert during >= 2, (during, counter)
    np.testing.assert_array_equal(result[0], expected)


def test_a_run_in_the_main_thread_lets_other_threads_run():
    # In the main thread the loop takes the GIL back now and then to
    # check for signals; between those checks other threads run.
    gen = np.random.default_rng(4)
    expected = sgdprob.sgd_quadratic(1.0, 1.0, rng=gen, **LONG_RUN_KW)
    end_state = gen.bit_generator.state
    gen = np.random.default_rng(4)
    stage = _generator_stage(gen, end_state)
    counts = []
    started = threading.Event()
    stop = threading.Event()

    def count():
        counter = during = 0
        started.set()
        while not stop.is_set():
            counter += 1
            if stage() == "during":
                during += 1
        counts.append((during, counter))

    counter_thread = threading.Thread(target=count)
    counter_thread.start()
    started.wait()
    try:
        assert threading.current_thread() is threading.main_thread()
        result = sgdprob.sgd_quadratic(1.0, 1.0, rng=gen, **LONG_RUN_KW)
    finally:
        stop.set()
        counter_thread.join()
    during, counter = counts[0]
    assert during >= 2, (during, counter)
    np.testing.assert_array_equal(result, expected)


# --- interrupts -------------------------------------------------------------
#
# The child starts a run that would take hours, in its main thread, and a
# thread of it prints "running" once the Generator's state has moved: the
# C loop is drawing. Then SIGINT arrives. The child prints the
# time.monotonic() at which the signal arrived and at which
# KeyboardInterrupt reached it; CLOCK_MONOTONIC is one clock for every
# process of the machine, so the latency is that minus the time the signal
# was sent. The child then checks that the
# Generator's lock was let go, and makes a short run from a fixed seed,
# whose result the parent checks.

INTERRUPTED_RUNS = {
    "sgd_quadratic": "sgdprob.sgd_quadratic(1.0, 1.0, eta=0.1, B=1, "
                     "steps=10**9, replicas=1000, rng={rng})",
    "sgd_quadratic_3d": "sgdprob.sgd_quadratic(np.diag([1.0, 2.0, 3.0]), "
                        "np.eye(3), eta=0.1, B=2, steps=10**9, "
                        "replicas=100, rng={rng})",
    "langevin": "sgdprob.langevin(1.0, 1.0, eta=0.1, B=4, time=1e7, "
                "dt=0.01, replicas=1000, rng={rng})",
    "sgd_least_squares": "sgdprob.sgd_least_squares(np.eye(40, 3), "
                         "np.ones(40), eta=0.1, B=4, steps=10**9, "
                         "replicas=10, rng={rng})",
    "batch_noise_cov": "sgdprob.batch_noise_cov(np.eye(40, 3), 10**6, "
                       "n_batches=10**4, rng={rng})",
    # one batch of 10**8 samples takes seconds to draw: the loop checks
    # for signals within a batch too
    "sgd_quadratic_huge_batch": "sgdprob.sgd_quadratic(1.0, 1.0, eta=0.1, "
                                "B=10**8, steps=10**3, replicas=1, "
                                "rng={rng})",
    "sgd_least_squares_huge_batch": "sgdprob.sgd_least_squares("
                                    "np.eye(40, 3), np.ones(40), eta=0.1, "
                                    "B=10**8, steps=10**3, replicas=1, "
                                    "rng={rng})",
    "batch_noise_cov_huge_batch": "sgdprob.batch_noise_cov(np.eye(40, 3), "
                                  "10**8, n_batches=10**3, rng={rng})",
}

SHORT_RUNS = {
    "sgd_quadratic": "sgdprob.sgd_quadratic(1.0, 1.0, eta=0.1, B=1, "
                     "steps=5, replicas=3, rng={rng})",
    "sgd_quadratic_3d": "sgdprob.sgd_quadratic(np.diag([1.0, 2.0, 3.0]), "
                        "np.eye(3), eta=0.1, B=2, steps=5, replicas=3, "
                        "rng={rng})",
    "langevin": "sgdprob.langevin(1.0, 1.0, eta=0.1, B=4, time=0.05, "
                "dt=0.01, replicas=3, rng={rng})",
    "sgd_least_squares": "sgdprob.sgd_least_squares(np.eye(40, 3), "
                         "np.ones(40), eta=0.1, B=4, steps=5, replicas=3, "
                         "rng={rng})",
    "batch_noise_cov": "sgdprob.batch_noise_cov(np.eye(40, 3), 4, "
                       "n_batches=5, rng={rng}).cov",
}
for _name in ["sgd_quadratic", "sgd_least_squares", "batch_noise_cov"]:
    SHORT_RUNS[_name + "_huge_batch"] = SHORT_RUNS[_name]

CHILD = textwrap.dedent("""
    import os, select, signal, sys, threading, time
    import numpy as np
    import sgdprob

    gen = np.random.default_rng(0)
    start = gen.bit_generator.state

    def watch():
        while gen.bit_generator.state == start:
            time.sleep(0.001)
        print("running", flush=True)

    # The C signal handler writes a byte to the wakeup fd as the signal
    # arrives; this thread, waiting on it without the GIL, notes the time.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    arrived = []

    def wake():
        select.select([wake_r], [], [])
        arrived.append(time.monotonic())

    waker = threading.Thread(target=wake, daemon=True)
    waker.start()
    threading.Thread(target=watch, daemon=True).start()
    print("starting", flush=True)
    try:
        {long}
    except KeyboardInterrupt:
        caught = time.monotonic()
        waker.join(10)
        print("interrupted", repr(arrived[0]), repr(caught), flush=True)
    else:
        print("finished", flush=True)
        sys.exit(1)
    assert gen.bit_generator.lock.acquire(blocking=False)
    gen.bit_generator.lock.release()
    print("result", {short}.tobytes().hex(), flush=True)
""")

# The loop checks for a signal every 2**22 units of work, tens of
# milliseconds; a second leaves room for a machine busy with other work.
LATENCY_LIMIT = 1.0
# Seconds a child may take in all: starting Python and NumPy, the run up
# to the signal and the short run after it take a few.
CHILD_TIMEOUT = 120.0


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("name", INTERRUPTED_RUNS)
def test_sigint_stops_a_long_run_within_a_second(name, tmp_path):
    code = CHILD.format(long=INTERRUPTED_RUNS[name].format(rng="gen"),
                        short=SHORT_RUNS[name].format(rng="7"))
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    # a child that hangs is killed, and the reads below then fail
    watchdog = threading.Timer(CHILD_TIMEOUT, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout.readline() == "starting\n", proc.stderr.read()
        assert proc.stdout.readline() == "running\n", proc.stderr.read()
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        word, arrived, caught = proc.stdout.readline().split()
        assert word == "interrupted"
        # The waker notes the arrival once it has the GIL, which the
        # main thread may hold if it caught the signal at once: the
        # note can come after the catch, never before the sending.
        assert sent < float(arrived)
        latency = float(caught) - sent
        assert latency < LATENCY_LIMIT, latency
        word, hexed = proc.stdout.readline().split()
        assert proc.wait() == 0, proc.stderr.read()
    finally:
        watchdog.cancel()
        proc.kill()
        proc.wait()
    expected = eval(SHORT_RUNS[name].format(rng="7"),
                    {"np": np, "sgdprob": sgdprob})
    assert word == "result" and hexed == expected.tobytes().hex()



# --- scratch memory of huge batches -----------------------------------------
#
# A batch is drawn in pieces of a few thousand normals or rows, so the
# scratch memory of a run does not grow with B (one piece is 32 KiB; a
# whole batch of 10**6 would be 8 MB), and the pieces give the numbers
# one draw of the whole batch gives.

HUGE_B = 10 ** 6
SCRATCH_LIMIT = 1 << 20


def _peak(run):
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("run", [
    lambda: sgdprob.sgd_quadratic(1.0, 1.0, eta=0.1, B=HUGE_B, steps=2,
                                  replicas=1, rng=0),
    lambda: sgdprob.sgd_quadratic(np.eye(3), np.eye(3), eta=0.1,
                                  B=HUGE_B // 3, steps=2, replicas=1, rng=0),
    lambda: sgdprob.sgd_least_squares(np.eye(40, 3), np.ones(40), eta=0.1,
                                      B=HUGE_B, steps=2, replicas=1, rng=0),
    lambda: sgdprob.batch_noise_cov(np.eye(40, 3), HUGE_B, n_batches=2,
                                    rng=0),
], ids=["sgd_quadratic", "sgd_quadratic_3d", "sgd_least_squares",
        "batch_noise_cov"])
def test_scratch_does_not_grow_with_the_batch(run):
    assert _peak(run) < SCRATCH_LIMIT


def test_a_huge_batch_of_normals_is_the_one_numpy_draws():
    # d = 3: pieces of 1365 samples; B = 3000 is two whole pieces and a
    # part. The batch mean over 3000 normals: rounding of a few 3000 eps.
    d, B, steps, replicas = 3, 3000, 3, 2
    H = np.diag([0.5, 1.0, 2.0])
    phi = sgdprob.sgd_quadratic(H, np.eye(3), eta=0.1, B=B, steps=steps,
                                replicas=replicas, rng=5)
    Z = np.random.default_rng(5).standard_normal((steps, replicas, B, d))
    ref = np.zeros((replicas, d))
    for k in range(steps):
        ref = ref - 0.1 * (ref @ H + Z[k].mean(axis=1))
    np.testing.assert_allclose(phi, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("B", [4096, 4097, 10_000])
def test_a_huge_batch_of_rows_is_the_one_numpy_draws(B):
    X = np.random.default_rng(6).standard_normal((30, 2))
    y = np.random.default_rng(7).standard_normal(30)
    phi = sgdprob.sgd_least_squares(X, y, eta=0.1, B=B, steps=3,
                                    replicas=2, rng=8)
    rows = np.random.default_rng(8).integers(0, 30, size=(3, 2, B))
    ref = np.zeros((2, 2))
    for k in range(3):
        for r in range(2):
            xb, yb = X[rows[k, r]], y[rows[k, r]]
            ref[r] -= 0.1 * ((xb @ ref[r] - yb)[:, None] * xb).mean(axis=0)
    # sums of B terms of size about 10: rounding below B eps 10
    np.testing.assert_allclose(phi, ref, rtol=0, atol=1e-10)
    cov, _ = sgdprob.batch_noise_cov(X, B, n_batches=4, rng=9)
    rows = np.random.default_rng(9).integers(0, 30, size=(4, B))
    means = X[rows].mean(axis=1)
    np.testing.assert_allclose(cov, np.cov(means.T), rtol=0, atol=1e-12)
