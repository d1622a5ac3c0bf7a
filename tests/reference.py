"""Slow, obviously correct references for the running averages.

Each reference is a plain Python loop over one series that follows the
defining formula step by step, and also returns the error scale A_t that
bounds rounding errors (see :func:`tolerance`).
"""
import math

import numpy as np

U64 = 2.0 ** -53      # unit roundoff of float64
U32 = 2.0 ** -24      # unit roundoff of float32

# Rounding bound, in units of U64 times A_t. The plain loop commits at most
# 3 roundings per step on a_t y_{t-1} + x_t / m_t (multiply, divide, add),
# so its error is at most 3 U64 A_t with
#     A_t = a_t A_{t-1} + a_t |y_{t-1}| + |b_t x_t|,   A_0 = 0,
# which is the same recurrence run on absolute values (errors made at step
# j decay by a_{j+1} ... a_t like everything else). A kernel that advances
# K steps per link computes a^(k+1) with k + 1 roundings and adds one more
# multiply-add, so its error is at most (K + 4) U64 A_t. Kernels with
# blocks of up to 32 steps and this loop therefore agree within
# (32 + 4 + 3) U64 A_t; we allow 40. (The coefficient a_t = 1 - 1/N is
# computed by the same two IEEE operations on both sides, so its own
# rounding is common to both and cancels.)
ROUNDING_UNITS = 40


def coefficients(kind, n, N, start=0):
    """a_t, the divisor m_t of x_t and whether step t resets (y_1 = x_1),
    for t = start+1 ... (m_t = 1 means x_t enters undivided)."""
    a, div, reset = [], [], []
    for j in range(n):
        t = start + 1 + j
        if kind == "leaky_sum":
            a.append(1.0 - 1.0 / N)
            div.append(1.0)
            reset.append(False)
        elif kind == "ema":
            a.append(1.0 - 1.0 / N)
            div.append(N)
            reset.append(False)
        elif kind == "warmup_mean":
            m = min(float(t), N)
            a.append(1.0 - 1.0 / m)
            div.append(m)
            reset.append(t == 1)
        else:
            raise ValueError(kind)
    return a, div, reset


def running(kind, x, N, initial=0.0, start=0):
    """(y, A): the recurrence of `kind` on the 1-D series x, in float64."""
    x = [float(v) for v in np.asarray(x, dtype=np.float64)]
    a, div, reset = coefficients(kind, len(x), float(N), int(start))
    y, A = [], []
    prev, prev_A = float(initial), 0.0
    for t, xt in enumerate(x):
        if reset[t]:
            cur, cur_A = xt, abs(xt)
        else:
            cur = a[t] * prev + xt / div[t]
            cur_A = a[t] * prev_A + a[t] * abs(prev) + abs(xt / div[t])
        y.append(cur)
        A.append(cur_A)
        prev, prev_A = cur, cur_A
    return np.array(y), np.array(A)


def tolerance(y_ref, A, dtype):
    """Bound on |kernel - reference| for output dtype `dtype`.

    float64 output: ROUNDING_UNITS * U64 * A_t. float32 output: the state
    is float64, so add the final rounding to float32, U32 |y_t|.

    Underflow: a rounding below the normal range can be off by half the
    smallest subnormal, in absolute terms. Over fewer than 2**50 steps
    those add up to less than the smallest normal float64, which is the
    floor of the float64 bound; float32 output adds half of its own
    smallest subnormal.
    """
    tol = ROUNDING_UNITS * U64 * A + float(np.finfo(np.float64).tiny)
    if np.dtype(dtype) == np.float32:
        tol = (tol + U32 * np.abs(y_ref) * (1 + 1e-6)
               + float(np.finfo(np.float32).smallest_subnormal) / 2)
    return tol


def running_nd(kind, x, N, initial, start, axis):
    """The reference over every series of x along axis, with broadcasting
    of N, initial and start over the other axes, as a gufunc does."""
    x = np.asarray(x, dtype=np.float64)
    axis = axis % x.ndim
    out_axis = axis - x.ndim
    x = np.moveaxis(x, axis, -1)
    loop = np.broadcast_shapes(x.shape[:-1], np.shape(N), np.shape(initial),
                               np.shape(start))
    xb = np.broadcast_to(x, loop + x.shape[-1:])
    Nb = np.broadcast_to(N, loop)
    ib = np.broadcast_to(initial, loop)
    sb = np.broadcast_to(start, loop)
    y = np.empty(xb.shape)
    A = np.empty(xb.shape)
    for idx in np.ndindex(*loop):
        y[idx], A[idx] = running(kind, xb[idx], Nb[idx], ib[idx], sb[idx])
    return np.moveaxis(y, -1, out_axis), np.moveaxis(A, -1, out_axis)


def fsum_prefix(x):
    """Correctly rounded prefix sums: the exact cumulative sum."""
    out, acc = [], []
    for v in x:
        acc.append(float(v))
        out.append(math.fsum(acc))
    return np.array(out)
