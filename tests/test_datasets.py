"""The shipped diabetes data and the per-sample least-squares gradients.

References are independent of sgdprob: the csv module reads the file,
math.fsum gives exactly rounded sums, the loss is differenced by hand and
the least-squares solution comes from np.linalg.lstsq.
"""
import csv
import doctest
import math
import subprocess
import sys
from importlib import resources

import numpy as np
import pytest

import sgdprob.datasets
from sgdprob.datasets import Dataset, least_squares_grads, load_diabetes

U = 2.0 ** -53          # unit roundoff of float64
N_ROWS, N_FEATURES = 442, 10
NAMES = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")


def gamma(k):
    """Higham's gamma_k = k u / (1 - k u): the relative error bound of a
    sum or dot product of k terms in any order."""
    return k * U / (1 - k * U)


def csv_path():
    return resources.files("sgdprob").joinpath("data", "diabetes.csv")


@pytest.fixture(scope="module")
def raw_table():
    """The CSV read by the csv module: (header, rows of floats).

    Python's float() rounds decimal strings correctly."""
    with csv_path().open("r", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], [[float(v) for v in row] for row in rows[1:]]


def test_data_files_are_installed():
    data = resources.files("sgdprob").joinpath("data")
    assert data.joinpath("diabetes.csv").is_file()
    readme = data.joinpath("README.md").read_text(encoding="utf-8")
    assert "Least Angle Regression" in readme
    assert "BSD 3-Clause" in readme


def test_shapes_dtypes_and_names():
    for standardize in (True, False):
        ds = load_diabetes(standardize=standardize)
        assert isinstance(ds, Dataset)
        assert ds.X.shape == (N_ROWS, N_FEATURES)
        assert ds.y.shape == (N_ROWS,)
        assert ds.X.dtype == np.float64 and ds.y.dtype == np.float64
        assert ds.feature_names == NAMES


def test_raw_values_match_csv_module(raw_table):
    header, rows = raw_table
    X, y, names = load_diabetes(standardize=False)
    assert header == list(NAMES) + ["y"]
    assert len(rows) == N_ROWS and {len(r) for r in rows} == {11}
    np.testing.assert_array_equal(X, [r[:-1] for r in rows])
    np.testing.assert_array_equal(y, [r[-1] for r in rows])


def test_first_patient_as_published():
    # The first row of the table in the original data file.
    X, y, _ = load_diabetes(standardize=False)
    np.testing.assert_array_equal(
        X[0], [59, 2, 32.1, 101, 157, 93.2, 38, 4, 4.8598, 87])
    assert y[0] == 151


def test_standardized_against_exact_sums(raw_table):
    _, rows = raw_table
    X, y, _ = load_diabetes()
    n = N_ROWS
    for j in range(N_FEATURES):
        col = [r[j] for r in rows]
        m = math.fsum(col) / n
        s = math.sqrt(math.fsum([(v - m) ** 2 for v in col]) / n)
        ref = np.array([(v - m) / s for v in col])
        # Reference: m within u |m|; deviations, squares, the exactly
        # rounded sum, the division and the root leave s within 3.5u
        # (relative); z = (v - m) / s adds 2 roundings.
        # sgdprob: the mean within gamma_n mean|x| + u |m| (n terms in
        # any order), s within gamma_(n+3)/2 + 3u, z 2 roundings.
        # So |z - ref| <= (gamma_n mean|x| + 2u |m|) / s
        #                 + |z| (gamma_(n+3)/2 + 3u + 3.5u + 4u).
        mean_abs = math.fsum(abs(v) for v in col) / n
        tol = ((gamma(n) * mean_abs + 2 * U * abs(m)) / s
               + np.abs(ref) * (gamma(n + 3) / 2 + 10.5 * U))
        assert np.all(np.abs(X[:, j] - ref) <= tol), NAMES[j]
    np.testing.assert_array_equal(y, [r[-1] for r in rows])


def test_standardized_moments():
    X, _, _ = load_diabetes()
    raw, _, _ = load_diabetes(standardize=False)
    n = N_ROWS
    for j in range(N_FEATURES):
        s = raw[:, j].std()
        # Element error bound E of z = (x - m)/s, as above (one side).
        E = (gamma(n) * np.abs(raw[:, j]).mean() / s
             + np.abs(X[:, j]).max() * (gamma(n + 3) / 2 + 3 * U))
        # fsum is exact, then one division: the mean of the errors.
        mean = math.fsum(X[:, j]) / n
        assert abs(mean) <= E + U
        # Errors of rms size <= E move the rms about 0 by at most E; the
        # squares, the division and the root add 3 roundings.
        std = math.sqrt(math.fsum(X[:, j] ** 2) / n)
        assert abs(std - 1.0) <= E + 4 * U


def test_loads_are_independent_copies():
    a = load_diabetes()
    a.X[:] = 0.0
    a.y[:] = 0.0
    b = load_diabetes()
    assert b.X.any() and b.y.any()


def exact_grid_phi(rng, p):
    """A random parameter on the grid 2^-20 Z, |phi| < 2^12: phi +- 2^-10
    is then exact, so the finite-difference step is exactly 2^-10."""
    return np.round(rng.normal(scale=50.0, size=p) * 2.0 ** 20) / 2.0 ** 20


@pytest.mark.parametrize("intercept", [True, False])
def test_grads_against_finite_differences(rng, intercept):
    X, y, _ = load_diabetes()
    n, d = X.shape
    p = d + intercept
    Xt = np.hstack([X, np.ones((n, 1))]) if intercept else X
    phi = exact_grid_phi(rng, p)
    h = 2.0 ** -10

    G = least_squares_grads(X, y, phi, intercept=intercept)
    assert G.shape == (n, p) and G.dtype == np.float64

    def loss(ph):
        res = Xt @ ph - y
        return 0.5 * res * res, res, np.abs(Xt) @ np.abs(ph) + np.abs(y)

    # The loss is quadratic in phi, so the central difference
    # (l(phi + h e_j) - l(phi - h e_j)) / 2h has no truncation error
    # (the third derivative vanishes); only rounding is left. A residual
    # (p products and the subtraction of y) errs by at most gamma_(p+1) A
    # with A = sum_k |x_k phi_k| + |y|, so l = res^2 / 2 errs by at most
    # |res| gamma A + (gamma A)^2 / 2 + u l. The difference and the
    # division add 2u of the quotient. The gradient under test holds the
    # same residual error times |x_j| and one more rounding.
    for j in range(p):
        e = np.zeros(p)
        e[j] = h
        lp, rp, Ap = loss(phi + e)
        lm, rm, Am = loss(phi - e)
        fd = (lp - lm) / (2 * h)
        g = gamma(p + 1)
        err_l = (np.abs(rp) * g * Ap + (g * Ap) ** 2 / 2 + U * lp
                 + np.abs(rm) * g * Am + (g * Am) ** 2 / 2 + U * lm)
        _, r0, A0 = loss(phi)
        tol = (err_l / (2 * h) + 2 * U * np.abs(fd)
               + np.abs(Xt[:, j]) * g * A0 + U * np.abs(G[:, j]))
        assert np.all(np.abs(G[:, j] - fd) <= tol), j
        # The bound is far below the size of the gradients: the check
        # tests something.
        assert np.max(tol) < 1e-8 * np.max(np.abs(G[:, j]))


def test_mean_grad_vanishes_at_least_squares_solution():
    X, y, _ = load_diabetes()
    n, d = X.shape
    A = np.hstack([X, np.ones((n, 1))])
    phi, *_ = np.linalg.lstsq(A, y, rcond=None)

    G = least_squares_grads(X, y, phi)
    mean = G.mean(axis=0)

    # lstsq is backward stable: phi solves exactly a problem with
    # ||dA|| <= eps ||A||, ||dy|| <= eps ||y||, eps = gamma_(n p) (the
    # normwise bound of Householder-type solvers; Higham, Accuracy and
    # Stability of Numerical Algorithms, 2002, ch. 20). Its normal
    # equations (A + dA)^T ((A + dA) phi - y - dy) = 0 give, with
    # r = A phi - y,
    #   ||A^T r|| <= eps (1 + eps) ||A|| (||r|| + ||A|| ||phi|| + ||y||).
    p = d + 1
    eps = gamma(n * p)
    normA = np.linalg.norm(A)                       # Frobenius >= 2-norm
    r = A @ phi - y
    solve_tol = (eps * (1 + eps) * normA
                 * (np.linalg.norm(r) + normA * np.linalg.norm(phi)
                    + np.linalg.norm(y))) / n
    # Evaluating the rows (residual error gamma_(p+1) A_r times |x_rj|,
    # one rounding more) and their mean (gamma_n of the sum of |g_rj|,
    # one division).
    A_r = np.abs(A) @ np.abs(phi) + np.abs(y)
    eval_tol = ((np.abs(A) * (gamma(p + 1) * A_r)[:, None]).sum(axis=0)
                + (U + gamma(n)) * np.abs(G).sum(axis=0)) / n + U * np.abs(
                    mean)
    assert np.linalg.norm(mean) <= solve_tol + np.linalg.norm(eval_tol)
    # Away from the solution the mean gradient is not small.
    far = least_squares_grads(X, y, np.zeros(p)).mean(axis=0)
    assert np.linalg.norm(far) > 1e6 * (solve_tol + np.linalg.norm(eval_tol))


def test_mean_grad_is_full_batch_gradient(rng):
    X, y, _ = load_diabetes()
    n = len(y)
    phi = rng.normal(size=X.shape[1] + 1)
    G = least_squares_grads(X, y, phi)
    # Plain-loop reference, exactly summed.
    ref = []
    for j in range(X.shape[1] + 1):
        terms = []
        for r in range(n):
            x = list(X[r]) + [1.0]
            res = math.fsum([xk * pk for xk, pk in zip(x, phi)] + [-y[r]])
            terms.append(res * x[j])
        ref.append(math.fsum(terms) / n)
    # Each row: residual to gamma_(p+1) A_r (the reference's fsum residual
    # is within u of exact, and the products add u each), times |x_rj|.
    p = X.shape[1] + 1
    A = np.hstack([X, np.ones((n, 1))])
    A_r = np.abs(A) @ np.abs(phi) + np.abs(y)
    row_err = np.abs(A) * ((gamma(p + 1) + 3 * U) * A_r)[:, None]
    tol = (row_err.sum(axis=0) + (U + gamma(n)) * np.abs(G).sum(axis=0)) / n
    assert np.all(np.abs(G.mean(axis=0) - ref) <= tol)


def test_grads_small_example():
    # x = 1, 2; y = 1, 1; model 1.0 x + 0.5: residuals 0.5 and 1.5.
    G = least_squares_grads([[1.0], [2.0]], [1.0, 1.0], [1.0, 0.5])
    np.testing.assert_array_equal(G, [[0.5, 0.5], [3.0, 1.5]])
    G = least_squares_grads([[1.0], [2.0]], [1.0, 1.0], [1.0],
                            intercept=False)
    np.testing.assert_array_equal(G, [[0.0], [2.0]])


@pytest.mark.parametrize("args, kwargs, exc, name", [
    (([1.0, 2.0], [1.0], [0.0, 0.0]), {}, ValueError, "X"),
    (([[1.0]], [[1.0]], [0.0, 0.0]), {}, ValueError, "y"),
    (([[1.0], [2.0]], [1.0], [0.0, 0.0]), {}, ValueError, "y"),
    (([[1.0]], [1.0], [0.0]), {}, ValueError, "phi"),
    (([[1.0]], [1.0], [0.0, 0.0]), {"intercept": False}, ValueError, "phi"),
    (([[1.0]], [1.0], [[0.0, 0.0]]), {}, ValueError, "phi"),
    (([[np.nan]], [1.0], [0.0, 0.0]), {}, ValueError, "X"),
    (([[1.0]], [np.inf], [0.0, 0.0]), {}, ValueError, "y"),
    (([[1.0]], [1.0], [0.0, 1j]), {}, TypeError, "phi"),
    (([["a"]], [1.0], [0.0, 0.0]), {}, TypeError, "X"),
    (([[1.0]], [1.0], [0.0, 0.0]), {"intercept": "yes"}, TypeError,
     "intercept"),
])
def test_grads_bad_input(args, kwargs, exc, name):
    with pytest.raises(exc, match=name):
        least_squares_grads(*args, **kwargs)


def test_load_bad_input():
    with pytest.raises(TypeError, match="standardize"):
        load_diabetes(standardize="no")
    with pytest.raises(TypeError):
        load_diabetes(True)             # keyword only


def test_docstring_examples_run():
    result = doctest.testmod(sgdprob.datasets, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_no_scikit_learn_needed(tmp_path):
    code = ("import sys, sgdprob.datasets as d; d.load_diabetes(); "
            "assert 'sklearn' not in sys.modules")
    # Run outside the source tree, so the installed package is imported.
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
