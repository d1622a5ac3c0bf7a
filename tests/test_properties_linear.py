"""Property tests of sgdprob.linear: the identities of a linear layer's
gradients over generated shapes, memory layouts, data types (float32,
float64 and the two mixed) and leading dimensions that broadcast.

References are the definitions written with np.einsum in long double on
the very values handed to the kernels.

Rounding bounds. To nearest, a rounding gives fl(v) = v (1 + d) + e with
|d| <= u and |e| <= s/2 (u the unit roundoff, s the smallest subnormal;
one of d, e is 0). A sum of n terms t_k, in any order, blocked or with
fused multiply-adds, then errs by at most about n (u sum_k |t_k| + s)
(Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., 3.1;
the second-order part (n u)^2 is below one u for the n <= 300 drawn
here). The kernels add a few roundings (the scale fl(1/B), the product
by it, the store, and two more where data are squared), counted as
`extra`. Where data are squared, an underflowing square fl(y^2) = y^2 + e
is multiplied by x^2 afterwards, so s is scaled by 1 + max x^2 + max y^2.
The reference errs by the same formula with the u of long double.
"""
import numpy as np
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from sgdprob import linear
from strategies import (dtypes, floats, leading_shapes, operand, relaid,
                        subnormal, unit)
from test_linear import U_REF, assert_within, ld


def batch_sizes(least=1):
    """A few samples, or around the blocks of 64 and 256 rows that the
    kernels cut a batch into."""
    return st.one_of(st.integers(least, 6),
                     st.sampled_from([63, 64, 65, 255, 256, 257]))


widths = st.integers(0, 5)
# variance works on output tiles of 32 x 256 and 64 rows of data at once
tile_rows = st.one_of(st.integers(0, 5), st.sampled_from([31, 32, 33]))
tile_cols = st.one_of(st.integers(0, 5), st.sampled_from([255, 256, 257]))


def sum_bound(n, dtype, abs_sum, extra, scale=1.0):
    """Rounding bound of a sum of n terms whose |terms| add to abs_sum,
    computed in `dtype`, against the long double reference."""
    return (n + extra) * ((unit(dtype) + U_REF) * abs_sum
                          + subnormal(dtype) * scale)


@st.composite
def batches(draw, B=batch_sizes(), I=widths, J=widths):
    """(x, ygrad): (..., B, I) and (..., B, J), leading shapes that
    broadcast, any layout, each float32 or float64."""
    B, I, J = draw(B), draw(I), draw(J)
    lead_x, lead_y = draw(leading_shapes(2))
    x = draw(operand(lead_x + (B, I), draw(dtypes)))
    ygrad = draw(operand(lead_y + (B, J), draw(dtypes)))
    return x, ygrad


@st.composite
def out_for(draw, shape, dtype):
    """None, or an output array of `shape` and `dtype` in a drawn layout,
    filled with NaN."""
    if draw(st.booleans()):
        return None
    return draw(relaid(np.full(shape, np.nan, dtype)))


def per_sample_ref(x, ygrad):
    """g[..., b, j, i] = ygrad[..., b, j] x[..., b, i] in long double."""
    return np.einsum("...bj,...bi->...bji", ld(ygrad), ld(x))


def square_scale(x, ygrad):
    """1 + max x^2 + max ygrad^2: what multiplies an underflow of a
    square (module docstring)."""
    top = [float(np.max(np.abs(a), initial=0.0)) for a in (x, ygrad)]
    return 1.0 + top[0] ** 2 + top[1] ** 2


# --------------------------------------------------- forward, input_grad


@settings(deadline=None)
@given(I=widths, J=widths, B=batch_sizes(), data=st.data())
def test_forward_is_the_sum_over_i(I, J, B, data):
    lead_w, lead_x = data.draw(leading_shapes(2))
    W = data.draw(operand(lead_w + (J, I), data.draw(dtypes)))
    x = data.draw(operand(lead_x + (B, I), data.draw(dtypes)))
    T = np.result_type(W, x)
    terms = np.einsum("...ji,...bi->...bji", ld(W), ld(x))
    out = data.draw(out_for(terms.shape[:-1], T))
    y = linear.forward(W, x, out=out)
    assert y.dtype == T and (out is None or y is out)
    assert_within(y, terms.sum(axis=-1),
                  sum_bound(I, T, np.abs(terms).sum(axis=-1), extra=2))


@settings(deadline=None)
@given(I=widths, J=widths, B=batch_sizes(), data=st.data())
def test_input_grad_is_the_sum_over_j(I, J, B, data):
    lead_w, lead_y = data.draw(leading_shapes(2))
    W = data.draw(operand(lead_w + (J, I), data.draw(dtypes)))
    ygrad = data.draw(operand(lead_y + (B, J), data.draw(dtypes)))
    T = np.result_type(W, ygrad)
    terms = np.einsum("...ji,...bj->...bij", ld(W), ld(ygrad))
    out = data.draw(out_for(terms.shape[:-1], T))
    xgrad = linear.input_grad(W, ygrad, out=out)
    assert xgrad.dtype == T and (out is None or xgrad is out)
    assert_within(xgrad, terms.sum(axis=-1),
                  sum_bound(J, T, np.abs(terms).sum(axis=-1), extra=2))


# ------------------------------------------------------ per-sample grads


@settings(deadline=None)
@given(xy=batches(B=st.integers(0, 6)), data=st.data())
def test_per_sample_grad_is_each_product(xy, data):
    x, ygrad = xy
    T = np.result_type(x, ygrad)
    # one product rounded once, as NumPy rounds it: equal, not close
    want = ygrad.astype(T)[..., :, :, None] * x.astype(T)[..., :, None, :]
    out = data.draw(out_for(want.shape, T))
    got = linear.per_sample_grad(x, ygrad, out=out)
    assert got.dtype == T and (out is None or got is out)
    np.testing.assert_array_equal(got, want)


@settings(deadline=None)
@given(xy=batches(), data=st.data())
def test_grad_is_the_mean_of_per_sample_grad(xy, data):
    x, ygrad = xy
    T = np.result_type(x, ygrad)
    B = x.shape[-2]
    per = linear.per_sample_grad(x, ygrad)
    out = data.draw(out_for(per.shape[:-3] + per.shape[-2:], T))
    g = linear.grad(x, ygrad, out=out)
    assert g.dtype == T and (out is None or g is out)
    # the kernel against the exact mean (extra 4: the scale, its product
    # and the store), each per-sample product one rounding (1) and the
    # long double mean one division (1)
    mean_abs = np.abs(per_sample_ref(x, ygrad)).mean(axis=-3)
    assert_within(g, ld(per).mean(axis=-3),
                  sum_bound(B, T, mean_abs, extra=6))


@settings(deadline=None)
@given(xy=batches(), data=st.data())
def test_grad2_is_at_least_grad_squared(xy, data):
    x, ygrad = xy
    T = np.result_type(x, ygrad)
    B = x.shape[-2]
    out = data.draw(out_for(np.broadcast_shapes(x.shape[:-2],
                                                ygrad.shape[:-2])
                            + (ygrad.shape[-1], x.shape[-1]), T))
    g2 = linear.grad2(x, ygrad, out=out)
    g = linear.grad(x, ygrad)
    assert g2.dtype == T and (out is None or g2 is out)
    ref = per_sample_ref(x, ygrad)
    m2 = (ref * ref).mean(axis=-3)
    mean_abs = np.abs(ref).mean(axis=-3)
    e2 = sum_bound(B, T, m2, extra=6, scale=square_scale(x, ygrad))
    assert_within(g2, m2, e2)
    # With m and m2 the exact mean and mean square, m2 >= m^2 (their
    # difference is the variance); grad errs by at most e1, grad2 by e2,
    # so grad^2 <= (|m| + e1)^2 <= m2 + 2 |m| e1 + e1^2 <= grad2 + e2 +
    # 2 mean|g| e1 + e1^2. The squares here are long double (U_REF).
    e1 = sum_bound(B, T, mean_abs, extra=4)
    gap = ld(g) ** 2 - ld(g2)
    slack = e2 + 2 * mean_abs * e1 + e1 ** 2 + 2 * U_REF * (ld(g) ** 2
                                                          + ld(g2))
    assert np.all(gap <= slack)


@settings(deadline=None)
@given(xy=batches(B=st.just(1)))
def test_grad2_of_one_sample_is_grad_squared(xy):
    x, ygrad = xy
    T = np.result_type(x, ygrad)
    g = ld(linear.grad(x, ygrad))
    g2 = ld(linear.grad2(x, ygrad))
    # B = 1 scales by 1, exactly. g = fl(y x) is one rounding, so g^2 is
    # within 2u + u^2 of (y x)^2; g2 = fl(fl(y^2) fl(x^2)) is three, each
    # with an underflow s/2 that a factor up to max x^2 or max y^2 may
    # multiply. Both sides: 6 u (y x)^2 and 4 s (1 + max x^2 + max y^2),
    # and g^2 adds 2 |y x| s/2 + s^2/4, below the latter.
    exact = ld(per_sample_ref(x, ygrad))[..., 0, :, :] ** 2
    bound = (6 * unit(T) + 2 * U_REF) * exact + 4 * subnormal(T) * (
        square_scale(x, ygrad))
    assert_within(g2, g ** 2, bound)


@settings(deadline=None)
@given(xy=batches(), data=st.data())
def test_moments_are_grad_and_grad2(xy, data):
    x, ygrad = xy
    T = np.result_type(x, ygrad)
    B = x.shape[-2]
    shape = (np.broadcast_shapes(x.shape[:-2], ygrad.shape[:-2])
             + (ygrad.shape[-1], x.shape[-1]))
    out = data.draw(st.one_of(
        st.none(), st.tuples(out_for(shape, T), out_for(shape, T))))
    g, g2 = linear.moments(x, ygrad, out=out)
    assert g.dtype == g2.dtype == T
    if out is not None:
        assert (out[0] is None or g is out[0]) and (
            out[1] is None or g2 is out[1])
    # each within its bound of the definition (as grad and grad2 are), so
    # within twice that of grad and grad2
    ref = per_sample_ref(x, ygrad)
    e1 = sum_bound(B, T, np.abs(ref).mean(axis=-3), extra=4)
    e2 = sum_bound(B, T, (ref * ref).mean(axis=-3), extra=6,
                   scale=square_scale(x, ygrad))
    assert_within(g, ref.mean(axis=-3), e1)
    assert_within(g2, (ref * ref).mean(axis=-3), e2)
    assert_within(g, ld(linear.grad(x, ygrad)), 2 * e1)
    assert_within(g2, ld(linear.grad2(x, ygrad)), 2 * e2)


# -------------------------------------------------------------- variance


def two_pass_variance(g, ddof):
    """The variance over axis -3 in long double: the mean, then the
    squared deviations from it. Also returns the deviations."""
    d = g - g.mean(axis=-3, keepdims=True)
    return (d * d).sum(axis=-3) / (g.shape[-3] - ddof), d


@settings(deadline=None)
@given(xy=batches(B=st.one_of(st.integers(2, 6),
                             st.sampled_from([63, 64, 65])),
                 I=tile_cols, J=tile_rows),
       ddof=st.sampled_from([0, 1]), data=st.data())
def test_variance_is_the_two_pass_variance_of_per_sample_grad(xy, ddof,
                                                              data):
    x, ygrad = xy
    T = np.result_type(x, ygrad)
    B = x.shape[-2]
    shape = (np.broadcast_shapes(x.shape[:-2], ygrad.shape[:-2])
             + (ygrad.shape[-1], x.shape[-1]))
    out = data.draw(out_for(shape, T))
    var = linear.variance(x, ygrad, ddof, out=out)
    assert var.dtype == T and (out is None or var is out)
    assert np.all(var >= 0)

    exact = per_sample_ref(x, ygrad)
    per = ld(linear.per_sample_grad(x, ygrad))
    ref, _ = two_pass_variance(per, ddof)
    _, d = two_pass_variance(exact, ddof)
    abs_g, sum_g2 = np.abs(exact), (exact * exact).sum(axis=-3)
    dg = (np.abs(d) * abs_g).sum(axis=-3)
    # The kernel, in double (u64) whatever T: a product error u |g_b|
    # moves the variance by 2 u sum |d_b| |g_b|; the subtractions and the
    # sum of squares add (B + 4) u sum d_b^2; the correction term takes
    # out the error of the mean up to its square, which with the product
    # errors is below (B + 4)^2 u^2 sum g_b^2. Underflows add
    # 2 s64 (2 sum |g_b| + B + 4). The store rounds once to T.
    u = unit(np.float64) + U_REF
    core = (2 * u * dg + (B + 4) * u * (d * d).sum(axis=-3)
            + (B + 4) ** 2 * u ** 2 * sum_g2
            + 2 * subnormal(np.float64) * (2 * abs_g.sum(axis=-3) + B + 4))
    # per_sample_grad rounds each product to T: per_b = g_b + e_b with
    # |e_b| <= u_T |g_b| + s_T/2, which moves the two-pass variance by
    # at most 2 sum |d_b| |e_b| + sum e_b^2.
    uT, sT = unit(T), subnormal(T)
    moved = (2 * (uT * dg + sT / 2 * np.abs(d).sum(axis=-3))
             + 2 * (uT ** 2 * sum_g2 + B * sT ** 2 / 4))
    bound = (core + moved) / (B - ddof) + uT * ref + sT / 2
    assert_within(var, ref, bound)


# ----------------------------------------------------------- noise_scale


@settings(deadline=None)
@given(xy=batches(B=batch_sizes(2)))
def test_noise_scale_parts_are_the_unbiased_estimates(xy):
    x, ygrad = xy
    B, I, J = x.shape[-2], x.shape[-1], ygrad.shape[-1]
    ns = linear.noise_scale(x, ygrad)
    lead = np.broadcast_shapes(x.shape[:-2], ygrad.shape[:-2])
    if lead:
        assert all(np.shape(v) == lead for v in ns)
    else:
        assert all(type(v) is float for v in ns)

    g = per_sample_ref(x, ygrad)
    var1, _ = two_pass_variance(g, 1)
    trace = var1.sum(axis=(-2, -1))                 # tr Sigma, unbiased
    m = g.mean(axis=-3)
    norm_sq = (m * m).sum(axis=(-2, -1)) - trace / B
    mean_sq = (g * g).mean(axis=-3).sum(axis=(-2, -1))
    # In float64: mean_sq = (1/B) sum_b |y_b|^2 |x_b|^2 errs by
    # (I + J + B + 3) u mean_sq (all terms positive). grad errs by
    # e_ji <= (B + 4) u M_ji, M_ji = mean_b |g_bji|, and |grad_ji| <= M_ji
    # with sum M_ji^2 <= mean_sq (Cauchy-Schwarz), so |grad|^2 errs by
    # (2 (B + 4) + J I + 1) u mean_sq to first order. Each estimate adds
    # at most 5 roundings of terms below B mean_sq. Second order:
    # (B + 4)^2 u^2 mean_sq.
    u = unit(np.float64) + U_REF
    grad_sq_err = (2 * (B + 4) + J * I + 1 + (B + 4) ** 2 * u) * u
    mean_sq_err = (I + J + B + 3) * u
    tiny = 8 * (B + I * J + 8) * subnormal(np.float64) * square_scale(
        x, ygrad)
    trace_bound = (B * (mean_sq_err + grad_sq_err) + 10 * B * u) / (
        B - 1) * mean_sq + tiny
    norm_bound = (mean_sq_err + B * grad_sq_err + 10 * B * u) / (
        B - 1) * mean_sq + tiny
    assert_within(ns.trace_sigma, trace, trace_bound)
    assert_within(ns.grad_norm_sq, norm_sq, norm_bound)


# ------------------------------------------------- out= naming an input


@settings(deadline=None)
@given(n=st.integers(1, 6), lead=leading_shapes(1), dtype=dtypes,
       data=st.data())
def test_out_may_be_an_input(n, lead, dtype, data):
    # Square cores, so that every output has the shape of either input.
    a, b = (data.draw(hnp.arrays(dtype, lead[0] + (n, n),
                                 elements=floats(dtype)))
            for _ in range(2))
    for fn in (linear.forward, linear.input_grad, linear.grad,
               linear.grad2, linear.variance, linear.moments):
        for k in (0, 1):
            # The result goes to a fresh array and is copied over the
            # input: the same numbers as without out=, from the same
            # inputs in the same layout.
            args = [data.draw(relaid(a)), data.draw(relaid(b))]
            fresh = fn(*args)
            if fn is linear.moments:
                out = (args[k], args[1 - k])
            else:
                out = args[k]
            got = fn(*args, out=out)
            if fn is linear.moments:
                assert got[0] is out[0] and got[1] is out[1]
                np.testing.assert_array_equal(got[0], fresh[0])
                np.testing.assert_array_equal(got[1], fresh[1])
            else:
                assert got is out
                np.testing.assert_array_equal(got, fresh)
