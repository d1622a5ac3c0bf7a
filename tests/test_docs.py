"""The examples users read: README code blocks and docstring examples run
and give what they say."""
import doctest
import re
from decimal import Decimal, localcontext

import numpy as np
import pytest

import sgdprob
from conftest import REPO
from reference import running, tolerance


def test_readme_python_blocks_run():
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    env = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), env)
    # the claims the README's comments make
    assert env["mu"].shape == (3, 10_000)
    assert env["Y"].shape == env["X"].shape
    assert env["Y"].strides == env["X"].strides
    whole = sgdprob.warmup_mean(env["x"], 100.0)
    joined = np.concatenate([env["first"], env["rest"]])
    # each within its rounding bound of the plain loop (tests/reference.py)
    ref, A = running("warmup_mean", env["x"], 100.0)
    assert np.all(np.abs(joined - whole) <= 2 * tolerance(ref, A, np.float64))
    # the per-sample gradient block: W.grad2 - W.grad**2 is the variance
    # (W.grad2 and W.grad**2 <= W.grad2 each within about (B + 6) u of
    # W.grad2, B = 442, and the variance within a few u: 3 (B + 6) u in
    # all), the noise scale is about 10, and RMSProp brings the mean
    # squared error near the least-squares minimum
    inputs, target = env["inputs"], env["data"].y
    g, g2 = sgdprob.linear.moments(inputs, -target[:, None])
    assert np.all(np.abs(env["spread"] - (g2 - g ** 2))
                  <= 3 * (442 + 6) * 2.0 ** -53 * g2)
    assert 9.5 < env["ns"].B_simple < 10.5
    fit = np.linalg.lstsq(inputs, target, rcond=None)[0]
    mse = np.mean((inputs @ env["W"][0] - target) ** 2)
    best = np.mean((inputs @ fit - target) ** 2)
    start = np.mean(target ** 2)
    # RMSProp's steps of about eta = 0.1 per coordinate leave it within
    # 1 % of the minimum, and the comment prints the three numbers
    assert best <= mse < 1.01 * best
    assert (f"# mean squared error: {start:.0f} at W = 0, now {mse:.0f}; "
            f"least squares gives {best:.0f}") in text
    # the Langevin block: the paths of every B agree to rounding (16 u
    # of a path of size well below 1, see sgdprob/_report_langevin.py),
    # and the SGD variances it prints are within 5 standard errors of the
    # exact ones (the standard error of a variance of R normal draws is
    # sqrt(2 / R) of it)
    paths = env["paths"]
    for p in paths[1:]:
        np.testing.assert_allclose(p, paths[0], rtol=0, atol=1e-14)
    assert abs(env["phi"].var() / env["sgd"] - 1) < 5 * np.sqrt(2 / 10_000)
    text = (REPO / "README.md").read_text()
    for B in (1, 16, 64):
        eta = B * env["eta_prime"]
        phi = sgdprob.sgd_quadratic(1.0, 1.0, eta=eta, B=B,
                                    steps=int(20 / eta), replicas=10_000,
                                    rng=B)
        exact = sgdprob.analytic.sgd_stationary_cov(1.0, 1.0, eta=eta,
                                                     B=B)[0, 0]
        assert abs(phi.var() / exact - 1) < 5 * np.sqrt(2 / 10_000)
        assert (f"# B = {B:2d}: SGD {phi.var():.4f} (exact {exact:.4f}), "
                f"Langevin 0.0100") in text


MODULES = ["sgdprob._running", "sgdprob.analytic"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    import importlib
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_public_functions_have_numpydoc_sections():
    for name in ["leaky_sum", "ema", "warmup_mean"]:
        doc = getattr(sgdprob, name).__doc__
        for section in ["Parameters", "Returns", "Raises", "Notes",
                        "Examples"]:
            assert f"\n    {section}\n    ---" in doc, (name, section)
    for name in sgdprob.analytic.__all__:
        doc = getattr(sgdprob.analytic, name).__doc__
        for section in ["Parameters", "Returns", "Examples"]:
            assert f"\n    {section}\n    ---" in doc, (name, section)
    for name in ["leaky_sum", "ema", "warmup_mean"]:
        g = getattr(sgdprob.gufuncs, name)
        assert g.__doc__.startswith(name + "(")


def test_running_average_rounding_example_in_notes():
    # The Notes of the running averages bound the kernel's distance from
    # a plain loop by 40 u A_t, about 4.4e-15 min(t, N) relative, and
    # work one example through: 10**5 ones at N = 1e6.
    n, N = 10 ** 5, 1e6
    kernel = sgdprob.leaky_sum(np.ones(n), N)
    loop, A = running("leaky_sum", np.ones(n), N)
    rel = abs(kernel[-1] / loop[-1] - 1)
    bound = tolerance(loop, A, np.float64)[-1] / loop[-1]
    assert rel <= bound <= 40 * 2.0 ** -53 * min(n, N)
    # the figures of the example, against the float64 recurrence (the
    # rounded a) and the recurrence with the exact N, in 50 digits
    with localcontext() as ctx:
        ctx.prec = 50
        a = Decimal(1.0 - 1.0 / N)
        rounded_a = (1 - a ** n) / (1 - a)
        exact_N = Decimal(N) * (1 - (1 - 1 / Decimal(N)) ** n)
        rel_loop = float(abs(Decimal(loop[-1]) / rounded_a - 1))
        rel_kernel_N = float(abs(Decimal(kernel[-1]) / exact_N - 1))
        rel_loop_N = float(abs(Decimal(loop[-1]) / exact_N - 1))

    doc = sgdprob.leaky_sum.__doc__
    assert f"the bound is {bound:.1e} there" in doc
    assert f"of 10**5 ones at ``N = 1e6`` is {rel:.1e} (relative)" in doc
    assert f"within {rel_loop:.1e} of the exact" in doc
    assert (f"({rel_kernel_N:.1e} and {rel_loop_N:.1e} in that "
            f"example)") in doc
    assert f"``4.4e-15 * min(t, N)``" in doc
    for f in (sgdprob.ema, sgdprob.warmup_mean):
        assert "``40 * 2**-53 * A_t``" in f.__doc__
