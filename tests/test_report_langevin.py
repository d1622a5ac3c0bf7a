"""Section E of the report: Sigma^B, SGD and Langevin with eta = B eta',
and SGD on the diabetes data against the Langevin prediction. Every
expected value is recomputed here from the formulas, with plain NumPy."""
import math

import numpy as np
import pytest

import sgdprob
import sgdprob.report as report
from sgdprob import _report_langevin as sec
from sgdprob.datasets import load_diabetes

from test_analytic_sgd import exact_sgd_least_squares_cov

K = 5.0                   # standard errors a Monte Carlo value may be off


@pytest.fixture(scope="module")
def noise():
    return sec.noise_scaling_run()


@pytest.fixture(scope="module")
def stat():
    return sec.stationary_run()


@pytest.fixture(scope="module")
def ls():
    return sec.least_squares_run()


@pytest.fixture(scope="module")
def section(noise, stat, ls):
    return sec.langevin_section(noise, stat, ls)


@pytest.mark.parametrize("factor", [0.0, 0.5, -0.28, 0.98, 1 - 1e-4])
def test_settling_steps_is_the_least_that_settles(factor):
    k = sec.settling_steps(factor)
    assert abs(factor) ** (2 * k) <= 1e-12
    if k > 1:
        assert abs(factor) ** (2 * (k - 1)) > 1e-12


def test_sigma1_is_the_population_covariance(noise):
    X, y, _ = load_diabetes()
    A = np.hstack([X, np.ones((len(y), 1))])
    G = -y[:, None] * A                     # (x . 0 - y) x, row by row
    D = G - G.mean(axis=0)
    expected = sum(np.outer(r, r) for r in D) / len(G)
    np.testing.assert_allclose(noise.Sigma1, expected, rtol=1e-12,
                               atol=1e-12 * np.abs(expected).max())
    B, n = noise.B_without, noise.n
    np.testing.assert_allclose(noise.expected_without(),
                               expected / B * (n - B) / (n - 1),
                               rtol=1e-12, atol=1e-9)


def test_batch_covariance_scales_as_one_over_B(noise):
    for B, cov, se in zip(noise.Bs, noise.cov, noise.se):
        z = np.abs(cov - noise.Sigma1 / B) / se
        assert z.max() < K, B
    # the measured trace falls as 1/B: B tr(cov) is one number at every B
    tr = np.array([np.trace(c) for c in noise.cov]) * noise.Bs
    tr_se = np.array([math.sqrt(np.sum(np.diag(s) ** 2))
                      for s in noise.se]) * noise.Bs
    target = np.trace(noise.Sigma1)
    # the diagonal entries' errors are correlated; |sum| <= sum of the
    # standard errors bounds the s.e. of the trace whatever they are
    assert np.all(np.abs(tr - target) < K * tr_se * math.sqrt(len(
        noise.Sigma1)))


def test_one_dimensional_laws(stat):
    h, s2, dt = stat.h, stat.sigma2, stat.dt
    eta = stat.eta_prime * stat.Bs
    B = stat.Bs
    sgd = eta * s2 / (B * h * (2 - eta * h))
    em = eta * s2 / (B * h * (2 - h * dt))
    lang = eta * s2 / (2 * B * h)
    np.testing.assert_allclose(stat.sgd_exact(), sgd, rtol=1e-14)
    np.testing.assert_allclose(stat.em_exact(), em, rtol=1e-14)
    np.testing.assert_allclose(stat.langevin_exact(), lang, rtol=1e-14)
    assert np.all(np.abs(stat.sgd_var - sgd) < K * stat.sgd_se)
    assert np.all(np.abs(stat.em_var - em) < K * stat.em_se)
    # SGD leaves the Langevin value at the largest B by far more than
    # its error bars: the linear scaling rule has broken down there
    assert stat.sgd_var[-1] - lang[-1] > 20 * stat.sgd_se[-1]
    assert abs(stat.sgd_var[0] - lang[0]) < 0.02 * lang[0]


def test_runs_are_settled(stat, ls):
    a = 1 - stat.eta_prime * stat.Bs * stat.h
    assert np.all(np.abs(a) ** (2 * stat.sgd_steps) <= 1e-12)
    steps = round(stat.time / stat.dt)
    assert (1 - stat.h * stat.dt) ** (2 * steps) <= 1e-12
    slow = 1 - ls.eta_prime * ls.Bs * ls.lam[0]
    assert np.all(np.abs(slow) ** (2 * ls.steps) <= 1e-12)


def test_langevin_paths_of_every_B_are_one_process(stat):
    assert np.all(stat.path_diff <= stat.path_tol)
    # the rounding bound is rounding-sized, not a loose cover
    assert 0 < stat.path_tol < 1e-12
    h, eta_p = stat.h, stat.eta_prime
    time = stat.time
    paths = [sgdprob.langevin(h, stat.sigma2, eta=eta_p * B, B=B, time=time,
                              dt=stat.dt, replicas=3, rng=7)
             for B in (1, 3, 10)]       # B that are not powers of two
    for p in paths[1:]:
        np.testing.assert_allclose(p, paths[0], rtol=0,
                                   atol=stat.path_tol)


def test_least_squares_against_an_independent_exact_law(ls):
    X, y, names = load_diabetes()
    cols = [names.index(f) for f in ls.features[:-1]]
    X1 = np.column_stack([X[:, cols], np.ones(len(y))])
    for i, B in enumerate(ls.Bs):
        eta = ls.eta_prime * B
        exact = exact_sgd_least_squares_cov(X1, y, eta, B)
        np.testing.assert_allclose(ls.exact[i], exact, rtol=1e-10,
                                   atol=1e-10 * np.abs(exact).max())
        assert np.all(np.abs(ls.cov[i] - exact) < K * ls.cov_se[i])


def test_mandt_gap_small_at_small_B_and_grows(ls):
    err = ls.mandt_error()
    gap = ls.exact_gap()
    assert err[0] < sec.MANDT_TOLERANCE
    assert np.all(np.diff(gap) > 0)
    assert gap[-1] > 0.3                    # B eta' lam_max ~ 1: broken
    # the Langevin prediction does not depend on B at eta = B eta'
    for m in ls.mandt[1:]:
        np.testing.assert_allclose(m, ls.mandt[0], rtol=1e-12)


def test_section_rows(section):
    assert section.title.startswith("E. ")
    assert len(section.checks) == 22
    assert all(c.passed for c in section.checks), [
        c.claim for c in section.checks if not c.passed]
    text = "\n".join(section.text)
    assert "eta' Sigma^1" in text
    assert "B eta' lam_max << 1" in text


def test_section_fails_when_a_law_is_wrong(noise, stat, ls, monkeypatch):
    # A closed form off by 10 % (10 s.e.): that SGD row must fail.
    wrong = stat.sgd_exact() * 1.10
    monkeypatch.setattr(sec.StationaryRun, "sgd_exact",
                        lambda self: wrong)
    failed = [c.claim for c in sec.langevin_section(noise, stat, ls).checks
              if not c.passed]
    assert "SGD var = exact law, B=64" in failed


def test_report_prints_section_e(capsys):
    assert report.main([]) == 0
    out = capsys.readouterr().out
    assert "E. The batch size in SGD and its Langevin model" in out
    assert "Problems 1 to 4" in out
