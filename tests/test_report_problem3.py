"""Sections C and D of the report: W.grad2 against W.grad, and the batch
size in RMSProp's second moment. Every expected value is recomputed here
with plain NumPy or plain loops."""
import math

import numpy as np
import pytest

import sgdprob.report as report
from sgdprob.datasets import load_diabetes

U = 2.0 ** -53


@pytest.fixture(scope="module")
def counterexample():
    return report.grad2_counterexample_section()


@pytest.fixture(scope="module")
def run():
    return report.batch_size_run()


@pytest.fixture(scope="module")
def section_d(run):
    return report.batch_size_section(run)


def diabetes_at_zero():
    """Inputs with the bias column, and the residuals at phi = 0."""
    X, y, names = load_diabetes()
    A = np.hstack([X, np.ones((len(y), 1))])
    return A, -y, names + ("bias",)


def test_counterexample_rows(counterexample):
    rows = counterexample.checks
    assert len(rows) == 7
    assert all(c.passed for c in rows)
    A, r, _ = diabetes_at_zero()
    x, a = A[0], r[0]
    for c in rows:
        # rounding bounds: far below the values compared (for the
        # variance 0, below the squared gradients it is made of)
        scale = max(abs(c.analytic), abs(c.kernel)) or np.max((a * x) ** 2)
        assert 0 < c.tol < 1e-12 * scale, c.claim

    # The batches, as plain loops over b: per-sample gradients a x, a x
    # and 0, 2a x; W.grad and W.grad2 of the bias coordinate (x = 1).
    batches = [[a * x, a * x], [0.0 * x, 2 * a * x]]
    grad = [sum(gb[-1] for gb in gs) / 2 for gs in batches]
    grad2 = [sum(gb[-1] ** 2 for gb in gs) / 2 for gs in batches]
    assert grad[0] == grad[1] == a
    assert grad2 == [a * a, 2 * a * a]
    by_claim = {c.claim: c for c in rows}
    assert by_claim["batch 1, ygrad = (r, r): W.grad = r x"].kernel == \
        pytest.approx(grad[0], rel=8 * U)
    assert by_claim["batch 2, ygrad = (0, 2r): W.grad = r x"].kernel == \
        pytest.approx(grad[1], rel=8 * U)
    assert by_claim["batch 1: W.grad2 = r^2 x^2"].kernel == \
        pytest.approx(grad2[0], rel=12 * U)
    assert by_claim["batch 2: W.grad2 = 2 r^2 x^2"].kernel == \
        pytest.approx(grad2[1], rel=12 * U)
    same = by_claim["W.grad of batch 1 = W.grad of batch 2"]
    assert same.analytic == pytest.approx(same.kernel, rel=8 * U)
    # the point of the section: same W.grad, W.grad2 twice as large
    assert by_claim["batch 2: W.grad2 = 2 r^2 x^2"].kernel == \
        pytest.approx(2 * by_claim["batch 1: W.grad2 = r^2 x^2"].kernel,
                      rel=24 * U)


def test_exact_values_recomputed(run):
    A, r, names = diabetes_at_zero()
    n, p = A.shape
    assert run.feature_names == names
    # E W.grad**2 = g^2 + sigma^2/B = (1 - 1/B) g^2 + m2/B and
    # E W.grad2 = m2, with g and m2 the mean per-sample gradient and its
    # mean square, summed exactly (math.fsum): no cancellation, so a few
    # roundings here. The report takes sigma^2 from NumPy's two-pass
    # variance, within about n u of g^2 + sigma^2: rel 1e-12 covers both.
    g = np.array([math.fsum(r * A[:, k]) / n for k in range(p)])
    m2 = np.array([math.fsum((r * A[:, k]) ** 2) / n for k in range(p)])
    exact = run.exact()
    assert exact.shape == (len(run.Bs), 2, p + 1)
    for i, B in enumerate(run.Bs):
        usual = (1 - 1 / B) * g ** 2 + m2 / B
        np.testing.assert_allclose(exact[i, 0, :p], usual, rtol=1e-12)
        np.testing.assert_allclose(exact[i, 1, :p], m2, rtol=1e-12)
        assert exact[i, 0, p] == pytest.approx(usual.sum(), rel=1e-12)
        assert exact[i, 1, p] == pytest.approx(m2.sum(), rel=1e-12)
    np.testing.assert_allclose(run.g, g, rtol=1e-12)


def test_batch_size_rows_pass(section_d, run):
    rows = section_d.checks
    assert len(rows) == 4 * len(run.Bs) == 20
    assert all(c.unit == "s.e." for c in rows)
    assert all(c.passed for c in rows), [c.claim for c in rows
                                         if not c.passed]
    # the slack for the start of s from 0 is tiny: r^(b+1) N / (T - b)
    r = 1 - 1 / run.N
    short = r ** (run.burn_in + 1) * run.N / (run.steps - run.burn_in)
    assert 1 - run.s_weight == pytest.approx(short, rel=1e-6)
    for c in rows:
        assert 5.0 <= c.tol < 5.001


def test_the_checks_can_fail(run):
    # At every B > 1 the measured W.grad**2 is many standard errors from
    # the per-sample value g^2 + sigma^2, and the measured s from W.grad2
    # many from g^2 + sigma^2 / B: the rows tell the two apart.
    exact = run.exact()
    for i, B in enumerate(run.Bs):
        if B == 1:
            continue
        wrong = report._z_check("", exact[i, 1], run.mean[i, 0],
                                run.se[i, 0])
        assert not wrong.passed and wrong.error > 50, B
        wrong = report._z_check("", exact[i, 0], run.s_avg[i, 1],
                                run.s_se[i, 1])
        assert not wrong.passed and wrong.error > 50, B


def test_monte_carlo_against_an_independent_one(run):
    # A second Monte Carlo with plain NumPy: batch means of the
    # per-sample gradients r_b x_b, drawn with another generator. The
    # two means differ by noise of standard error sqrt(se1^2 + se2^2);
    # 5 of those, for each of the 12 columns.
    A, r, _ = diabetes_at_zero()
    G = r[:, None] * A
    rng = np.random.default_rng(99)
    R = 4000
    for i, B in enumerate(run.Bs[:3]):
        draws = G[rng.integers(0, len(r), size=(R, B))]      # (R, B, p)
        vals = np.stack([draws.mean(axis=1) ** 2,
                         (draws ** 2).mean(axis=1)])
        vals = np.concatenate([vals, vals.sum(-1, keepdims=True)], -1)
        mean = vals.mean(axis=1)
        se = vals.std(axis=1, ddof=1) / math.sqrt(R)
        z = np.abs(mean - run.mean[i]) / np.hypot(se, run.se[i])
        assert np.all(z <= 5), (B, z.max())


@pytest.mark.parametrize("N, T, b", [(4.0, 12, 3), (1.0, 6, 2),
                                     (2.5, 9, 0)])
def test_time_average_weights_are_the_impulse_response(N, T, b):
    c = report.time_average_weights(N, T, b)
    assert c.shape == (T,)
    for j in range(T):
        s, total = 0.0, 0.0
        for t in range(1, T + 1):
            s = (1 - 1 / N) * s + (1.0 if t == j + 1 else 0.0) / N
            if t > b:
                total += s
        assert c[j] == pytest.approx(total / (T - b), rel=1e-12,
                                     abs=1e-300)


def test_time_average_standard_error_against_monte_carlo():
    # R independent EMAs of iid N(m, 1) inputs (plain NumPy recurrence):
    # the spread of their time averages is sqrt(sum c_j^2), and their
    # mean m sum c_j. The sample variance of R values has relative
    # standard error sqrt(2 / (R - 1)); 5 of those.
    N, T, b, R, m = 10.0, 300, 40, 4000, 2.0
    rng = np.random.default_rng(5)
    x = rng.normal(m, 1.0, size=(T, R))
    s = np.zeros(R)
    total = np.zeros(R)
    for t in range(T):
        s = (1 - 1 / N) * s + x[t] / N
        if t >= b:
            total += s
    avg = total / (T - b)
    c = report.time_average_weights(N, T, b)
    var = np.sum(c * c)
    assert abs(avg.var(ddof=1) / var - 1) <= 5 * math.sqrt(2 / (R - 1))
    assert abs(avg.mean() - m * c.sum()) <= 5 * math.sqrt(var / R)


def test_table_shows_usual_s_falling_and_per_sample_s_flat(section_d,
                                                           run):
    text = "\n".join(section_d.text)
    assert "step ratio" in text
    lines = [ln.split() for ln in text.splitlines()]
    rows = [ln for ln in lines if ln and ln[0] in {str(B) for B in run.Bs}]
    assert [int(ln[0]) for ln in rows] == list(run.Bs)
    usual = [float(ln[2]) for ln in rows]
    per_sample = [float(ln[4]) for ln in rows]
    assert all(a > b for a, b in zip(usual, usual[1:]))
    # flat within the Monte Carlo noise: 5 standard errors of each
    for v, se in zip(per_sample, run.s_se[:, 1, -1]):
        assert abs(v - run.exact()[0, 1, -1]) <= 5 * se + 1.0


def test_monte_carlo_rows_are_formatted_in_standard_errors(section_d):
    table = report.format_checks(section_d.checks)
    assert "s.e." in table
    row = table.splitlines()[2]
    assert row.endswith("PASS") and "5.00 s.e." in row
