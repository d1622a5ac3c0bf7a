"""Call every kernel of sgdprob on small inputs, for a memory checker.

Each kernel gets float32 and float64 data as strided, reversed,
transposed (Fortran-ordered), broadcast (zero-stride), unaligned and
byte-swapped views, writes into a fresh out= array (contiguous and
strided), and is compared with its result for contiguous copies of the
same data. It also gets empty
cores, inputs its C loop turns into NaN, and inputs the Python layer
refuses.

Memcheck reports an undefined value only where it decides a branch, and
counts as defined whatever a reused block held before. So each out= array
here is a block of its own (NumPy hands freed blocks under 1024 bytes out
again), and each result is compared value by value, which makes every
output element that a kernel forgot to write an error.

Exit status 0 if every comparison holds and every refusal raises the
expected exception; under valgrind, --error-exitcode gives its own.
"""
import sys
import warnings

import numpy as np

import sgdprob
from sgdprob import gufuncs, linear

RNG = np.random.default_rng(5)
checks = 0


def tol(dtype):
    return 1e-5 if np.dtype(dtype) == np.float32 else 1e-12


def same(got, want, dtype=np.float64):
    """got equals want to rounding, NaN where want has NaN."""
    global checks
    checks += 1
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            same(g, w, dtype)
        return
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape or not np.allclose(
            got, want, rtol=tol(dtype), atol=tol(dtype), equal_nan=True):
        raise AssertionError(f"{got!r} != {want!r}")


def raises(kind, call, *args, **kwargs):
    global checks
    checks += 1
    try:
        call(*args, **kwargs)
    except kind:
        return
    raise AssertionError(f"{call.__name__} did not raise {kind.__name__}")


def fresh(shape, dtype, step=1):
    """An array never written, in a malloc block of its own (>= 1024
    bytes); step > 1 makes its last axis strided."""
    shape = tuple(shape)
    item = np.dtype(dtype).itemsize
    n = int(np.prod(shape[:-1], dtype=np.int64)) * shape[-1] * step \
        if shape else 1
    block = np.empty(max(n, 1024 // item + 1), dtype)
    if not shape:
        return block[:1].reshape(())
    a = block[:n].reshape(shape[:-1] + (shape[-1] * step,))
    return a[..., ::step]


def fresh_like(want, step):
    if isinstance(want, tuple):
        return tuple(fresh(w.shape, w.dtype, step) for w in want)
    return fresh(want.shape, want.dtype, step)


def check(f, views, copies, dtype, **kwargs):
    """f on views into fresh outputs equals f on contiguous copies."""
    want = f(*copies, **kwargs)
    for step in (1, 2):
        got = f(*views, out=fresh_like(want, step), **kwargs)
        same(got, want, dtype)


def unaligned(a):
    """A copy of a whose elements sit one byte off their alignment."""
    block = np.zeros(a.nbytes + 1, np.uint8)
    u = block[1:].view(a.dtype).reshape(a.shape)
    u[...] = a
    return u


def views(a):
    """(view, contiguous copy) pairs of a 2-d array: strided, reversed,
    Fortran-ordered, broadcast from the first row, unaligned and
    byte-swapped."""
    wide = np.zeros((a.shape[0], 2 * a.shape[1]), a.dtype)
    wide[:, ::2] = a
    row = np.broadcast_to(a[:1], a.shape)
    swapped = a.astype(a.dtype.newbyteorder())
    for v in (wide[:, ::2], a[::-1, ::-1].copy()[::-1, ::-1],
              np.asfortranarray(a), row, unaligned(a), swapped):
        yield v, np.ascontiguousarray(v, dtype=a.dtype)


def running_averages():
    for dtype in (np.float32, np.float64):
        x = RNG.standard_normal((3, 37)).astype(dtype)
        for f in (sgdprob.leaky_sum, sgdprob.ema, sgdprob.warmup_mean):
            for axis in (-1, 0):
                for v, c in views(x):
                    check(f, (v,), (c,), dtype, N=4.0, axis=axis,
                          initial=0.5)
            check(f, (x[:, ::-1],), (x[:, ::-1].copy(),), dtype,
                  N=[2.0, 5.0, np.inf])
            check(f, (x[:, ::3],), (x[:, ::3].copy(),), dtype,
                  N=[[2.0], [9.0]])
            same(f(x[:, :0], 3.0), np.zeros((3, 0)), dtype)
            check(f, (x[:, :1],), (x[:, :1].copy(),), dtype, N=1.0,
                  initial=2.0)
            raises(ValueError, f, x, 0.5)
            raises(ValueError, f, x, np.nan)
            raises(TypeError, f, x.astype(complex), 2.0)
            raises(ValueError, f, x, [2.0, 3.0])
        check(sgdprob.warmup_mean, (x.T,), (x.T.copy(),), dtype, N=3.0,
              start=5, initial=1.0, axis=0)
        raises(ValueError, sgdprob.warmup_mean, x, 3.0, start=-1)
        # the raw gufuncs on unaligned operands, out= included
        for g, f in ((gufuncs.leaky_sum, sgdprob.leaky_sum),
                     (gufuncs.ema, sgdprob.ema)):
            same(g(unaligned(x), 4.0, 0.5, out=unaligned(x)),
                 f(x, 4.0, initial=0.5), dtype)
        with np.errstate(invalid="ignore"):
            nan = np.full(x.shape, np.nan)
            for g in (gufuncs.leaky_sum, gufuncs.ema):
                same(g(x, 0.5, 0.0, out=fresh(x.shape, dtype)), nan, dtype)
            same(gufuncs.warmup_mean(x, 2.0, 0.0, -3,
                                     out=fresh(x.shape, dtype)), nan, dtype)


def running_layouts():
    """The paths chosen by layout: many series side by side (more than
    one group of lanes, or all sharing N at once), per-series N and
    start, an invalid series among valid ones, and an output of more
    than 2 MiB (faulted in page by page). Checked against the same
    series run one after the other."""
    for dtype in (np.float32, np.float64):
        x = RNG.standard_normal((9, 1100)).astype(dtype)
        N = 1.0 + 20.0 * RNG.random(1100)
        start = RNG.integers(0, 30, 1100)
        for f in (sgdprob.leaky_sum, sgdprob.ema, sgdprob.warmup_mean):
            for n in (6.0, N, N[::-1]):
                want = f(x.T.copy(), n).T
                same(f(x, n, axis=0, out=fresh(x.shape, dtype)), want,
                     dtype)
        kw = dict(initial=0.25, start=start)
        want = sgdprob.warmup_mean(x.T.copy(), N, **kw).T
        same(sgdprob.warmup_mean(x, N, axis=0, out=fresh(x.shape, dtype),
                                 **kw), want, dtype)
        bad = N.copy()
        bad[[3, 1050]] = [0.5, np.nan]
        with np.errstate(invalid="ignore"):
            want = gufuncs.ema(x.T.copy(), bad, 0.0).T
            got = gufuncs.ema(x, bad, 0.0, axes=[(0,), (), (), (0,)],
                              out=fresh(x.shape, dtype))
        same(got, want, dtype)
        same(np.isnan(got).all(axis=0), np.isnan(bad) | (bad < 1))
    x = RNG.standard_normal((300, 1100))
    for f in (sgdprob.ema, sgdprob.warmup_mean):
        same(f(x, 7.0, out=fresh(x.shape, x.dtype)),
             f(x.T.copy(), 7.0, axis=0).T)


LINEAR_XY = [linear.grad, linear.grad2, linear.per_sample_grad,
             linear.moments, linear.variance]


def linear_layer():
    for dtype in (np.float32, np.float64):
        x = RNG.standard_normal((6, 5)).astype(dtype)
        yg = RNG.standard_normal((6, 3)).astype(dtype)
        W = RNG.standard_normal((3, 5)).astype(dtype)
        for (xv, xc), (yv, yc), (Wv, Wc) in zip(views(x), views(yg),
                                                views(W)):
            check(linear.forward, (Wv, xv), (Wc, xc), dtype)
            check(linear.input_grad, (Wv, yv), (Wc, yc), dtype)
            for f in LINEAR_XY:
                check(f, (xv, yv), (xc, yc), dtype)
            check(linear.variance, (xv, yv, 1.5), (xc, yc, 1.5), dtype)
            same(linear.noise_scale(xv, yv), linear.noise_scale(xc, yc),
                 dtype)

        # the raw gufuncs on unaligned operands, out= included
        same(gufuncs.linear_grad2(unaligned(x), unaligned(yg),
                                  out=unaligned(np.zeros((3, 5), dtype))),
             linear.grad2(x, yg), dtype)
        same(gufuncs.linear_forward(unaligned(W), unaligned(x),
                                    out=unaligned(np.zeros((6, 3), dtype))),
             linear.forward(W, x), dtype)

        # stacks of batches, an output aliasing an input, empty cores
        xs, ys = np.stack([x, 2 * x]), np.stack([yg, -yg])
        for f in LINEAR_XY:
            check(f, (xs[:, ::-1], ys[:, ::-1]),
                  (xs[:, ::-1].copy(), ys[:, ::-1].copy()), dtype)
        sq = RNG.standard_normal((5, 5)).astype(dtype)
        want = linear.grad(sq.copy(), sq.copy())
        same(linear.grad(sq, sq, out=sq), want, dtype)
        same(linear.grad(x[:, :0], yg, out=fresh((3, 0), dtype)),
             np.zeros((3, 0)), dtype)
        same(linear.forward(W[:, :0], x[:, :0], out=fresh((6, 3), dtype)),
             np.zeros((6, 3)), dtype)
        same(linear.per_sample_grad(x[:0], yg[:0]), np.zeros((0, 3, 5)),
             dtype)

        # what the Python layer refuses, and what the raw loops make NaN
        raises(ValueError, linear.grad, x[:0], yg[:0])
        raises(ValueError, linear.grad, x, yg[:4])
        raises(ValueError, linear.variance, x, yg, ddof=6)
        raises(ValueError, linear.forward, W, x[:, :4])
        raises(TypeError, linear.grad2, x.astype(object), yg)
        nan = np.full((3, 5), np.nan)
        with np.errstate(invalid="ignore"):
            for g in (gufuncs.linear_grad, gufuncs.linear_grad2):
                same(g(x[:0], yg[:0], out=fresh((3, 5), dtype, 2)), nan,
                     dtype)
            same(gufuncs.linear_moments(
                x[:0], yg[:0], out=(fresh((3, 5), dtype),
                                    fresh((3, 5), dtype, 2))), (nan, nan),
                 dtype)
            same(gufuncs.linear_variance(x, yg, 6.0,
                                         out=fresh((3, 5), dtype)),
                 nan, dtype)


def linear_blocks():
    """Several blocks of rows for the BLAS (B beyond 256 rows, or rows so
    wide that a block of them is bounded by the scratch size) and several
    output tiles of the variance, against NumPy."""
    for dtype in (np.float32, np.float64):
        for B, I, J in ((600, 7, 3), (300, 1600, 2), (70, 300, 40)):
            x = RNG.standard_normal((B, 2 * I)).astype(dtype)[:, ::2]
            yg = RNG.standard_normal((B, J)).astype(dtype)
            x64, y64 = x.astype(np.float64), yg.astype(np.float64)
            g, g2 = linear.moments(x, yg, out=(fresh((J, I), dtype),
                                               fresh((J, I), dtype, 2)))
            same(g, y64.T @ x64 / B, dtype)
            same(g2, (y64 ** 2).T @ (x64 ** 2) / B, dtype)
            v = linear.variance(x, yg, out=fresh((J, I), dtype))
            per = y64[:, :, None] * x64[:, None, :]
            same(v, per.var(axis=0), dtype)


def optimiser_steps():
    for dtype in (np.float32, np.float64):
        a = [RNG.random((4, 3)).astype(dtype) + 0.5 for _ in range(5)]
        t = np.arange(1, 13).reshape(4, 3)
        for vs in zip(*(views(v) for v in a)):
            vv, cc = zip(*vs)
            check(sgdprob.rmsprop_step, vv[:4], cc[:4], dtype, eta=0.1,
                  N=3.0)
            check(sgdprob.adam_step, vv + (t,), cc + (t,), dtype, eta=0.1,
                  N_g=3.0, N_s=9.0)
        phi, s = a[0].copy(), a[1].copy()
        want = sgdprob.rmsprop_step(phi, s, a[2], a[3], eta=0.1, N=3.0)
        sgdprob.rmsprop_step(phi, s, a[2], a[3], eta=0.1, N=3.0,
                             out=(phi, s))
        same((phi, s), want, dtype)
        nan = np.full((4, 3), np.nan)
        with np.errstate(invalid="ignore"):
            got = gufuncs.rmsprop_step(*a[:4], 0.1, 0.5, 0.0,
                                       out=(fresh((4, 3), dtype),
                                            fresh((4, 3), dtype, 2)))
            same(got, (nan, nan), dtype)
            got = gufuncs.adam_step(*a, 0, 0.1, 2.0, 2.0, 0.0,
                                    out=(fresh((4, 3), dtype),
                                         fresh((4, 3), dtype, 2),
                                         fresh((4, 3), dtype)))
            same(got, (nan, nan, nan), dtype)
        raises(ValueError, sgdprob.rmsprop_step, *a[:4], eta=0.1, N=0.5)
        raises(ValueError, sgdprob.rmsprop_step, *a[:4], eta=np.inf, N=2.0)
        raises(ValueError, sgdprob.adam_step, *a, 0, eta=0.1, N_g=2.0,
               N_s=2.0)
        raises(ValueError, sgdprob.adam_step, *a, t, eta=0.1, N_g=2.0,
               N_s=2.0, eps=-1.0)


def monte_carlo():
    # n_batches * d * 8 >= 1024 bytes: the means are a fresh block
    G = RNG.standard_normal((9, 3))
    for replace in (True, False):
        r1 = sgdprob.batch_noise_cov(G, 4, n_batches=60, replace=replace,
                                     rng=1)
        r2 = sgdprob.batch_noise_cov(np.asfortranarray(G), 4, n_batches=60,
                                     replace=replace, rng=1)
        same(r1, r2)
    same(sgdprob.batch_noise_cov(G, 9, n_batches=60, replace=False,
                                 rng=2).cov, np.zeros((3, 3)))
    raises(ValueError, sgdprob.batch_noise_cov, G, 10, n_batches=3,
           replace=False)
    raises(ValueError, sgdprob.batch_noise_cov, G, 0, n_batches=3)
    raises(ValueError, sgdprob.batch_noise_cov, G[:0], 1, n_batches=3)

    H = np.diag([1.0, 2.0, 3.0])
    S = np.array([[1.0, 0.2, 0.0], [0.2, 0.5, 0.1], [0.0, 0.1, 0.25]])
    X = RNG.standard_normal((8, 3))
    y = RNG.standard_normal(8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # replicas in one block, in several (the last one partial), and
        # in blocks of one (B d normals beyond a block)
        for d, B, R in ((1, 1, 50), (1, 5, 900), (3, 1, 50), (3, 4, 400),
                        (3, 2000, 3)):
            Hd, Sd = H[:d, :d], S[:d, :d]
            rec = sgdprob.sgd_quadratic(np.asfortranarray(Hd), Sd, eta=0.1,
                                        B=B, steps=3, replicas=R,
                                        phi0=1.0, rng=3, record_every=2)
            same(rec[-1], sgdprob.sgd_quadratic(Hd, Sd, eta=0.1, B=B,
                                                steps=2, replicas=R,
                                                phi0=1.0, rng=3))
            lg = sgdprob.langevin(Hd, Sd, eta=0.1, B=B, time=0.5, dt=0.1,
                                  replicas=50, rng=4, record_every=1)
            same(np.isfinite(lg).all(), True)
        for replace in (True, False):
            ls = sgdprob.sgd_least_squares(X, y, eta=0.05, B=3, steps=9,
                                           replicas=50, replace=replace,
                                           rng=5)
            ls_v = sgdprob.sgd_least_squares(np.asfortranarray(X),
                                             y[::-1][::-1], eta=0.05, B=3,
                                             steps=9, replicas=50,
                                             replace=replace, rng=5)
            same(ls, ls_v)
    raises(ValueError, sgdprob.sgd_quadratic, H, S, eta=0.1, B=0, steps=3,
           replicas=2)
    raises(ValueError, sgdprob.sgd_quadratic, H, -S, eta=0.1, B=1,
           steps=3, replicas=2)
    raises(ValueError, sgdprob.langevin, H, S, eta=0.1, B=1, time=1.0,
           dt=0.0, replicas=2)
    raises(ValueError, sgdprob.sgd_least_squares, X, y[:5], eta=0.1, B=2,
           steps=3, replicas=2)
    raises(ValueError, sgdprob.sgd_least_squares, X, y, eta=0.1, B=9,
           steps=3, replicas=2, replace=False)
    # batches beyond one draw of 4096 normals or rows, drawn in pieces
    # into scratch that does not grow with B
    big = sgdprob.sgd_quadratic(1.0, 1.0, eta=0.1, B=5000, steps=2,
                                replicas=2, rng=6, record_every=1)
    same(big[-1], sgdprob.sgd_quadratic(1.0, 1.0, eta=0.1, B=5000,
                                        steps=2, replicas=2, rng=6))
    same(np.isfinite(sgdprob.sgd_least_squares(
        X, y, eta=0.05, B=5000, steps=2, replicas=2, rng=6)).all(), True)
    same(np.isfinite(sgdprob.batch_noise_cov(
        G, 5000, n_batches=3, rng=6).cov).all(), True)

def main():
    running_averages()
    running_layouts()
    linear_layer()
    linear_blocks()
    optimiser_steps()
    monte_carlo()
    print(f"memcheck.py: {checks} checks passed, sgdprob from "
          f"{sgdprob.__file__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
