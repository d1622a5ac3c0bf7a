"""The benchmark: it runs, prints every row, and its baselines compute
the numbers they are compared with. Speed itself is never asserted."""
import importlib.util
import re
import subprocess
import sys

import numpy as np
import pytest

import sgdprob
from sgdprob import bench

HAVE_SCIPY = importlib.util.find_spec("scipy") is not None
HAVE_PANDAS = importlib.util.find_spec("pandas") is not None
HAVE_THREADPOOLCTL = importlib.util.find_spec("threadpoolctl") is not None

BASELINES = ["x.copy()", "lfilter b=1", "lfilter b=1/N", "pandas ewm"]
KERNELS = ["leaky_sum", "ema", "warmup_mean"]
ROW = re.compile(r"^  (x\.copy\(\)|lfilter b=1/N|lfilter b=1|pandas ewm"
                 r"|leaky_sum|ema|warmup_mean)\s+(.*)$")


def parse_tables(text):
    """{case title: {call: [cells]}} from the benchmark's output."""
    tables, current = {}, None
    for line in text.splitlines():
        if not line.strip():
            current = None      # a table ends at a blank line
        elif ": target /copy <= " in line:
            current = tables.setdefault(line, {})
        elif current is not None and ROW.match(line):
            call, cells = ROW.match(line).groups()
            current[call] = cells.split()
    return tables


def is_number(cell):
    try:
        return np.isfinite(float(cell))
    except ValueError:
        return False


def check_optional(cell, available):
    """A ratio to an optional baseline: a number, or n/a without it."""
    assert is_number(cell) if available else cell == "n/a", cell


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    # run from an empty folder, so that the installed package is imported
    return subprocess.run(
        [sys.executable, "-m", "sgdprob", "bench", "--quick"],
        cwd=tmp_path_factory.mktemp("bench"), capture_output=True,
        text=True, timeout=300)


def test_quick_run_exits_0(quick_run):
    assert quick_run.returncode == 0, quick_run.stderr
    assert quick_run.stderr == ""


def test_quick_run_prints_every_row_with_numbers(quick_run):
    tables = parse_tables(quick_run.stdout)
    assert len(tables) == 4
    titles = "\n".join(tables)
    for dtype, axis in [("float64", "-1"), ("float32", "-1"),
                        ("float64", "0"), ("float64", "1")]:
        assert f"{dtype}, axis {axis}:" in titles
    for title, rows in tables.items():
        assert sorted(rows) == sorted(BASELINES + KERNELS), title
        assert rows["x.copy()"] == [rows["x.copy()"][0], "1.00"]
        for name in BASELINES[1:]:
            available = HAVE_PANDAS if name == "pandas ewm" else HAVE_SCIPY
            ms, per_copy = rows[name]
            check_optional(ms, available)
            check_optional(per_copy, available)
        for name in KERNELS:
            ms, per_copy, per_lfilter, per_pandas, *met = rows[name]
            assert is_number(ms) and float(ms) > 0
            assert is_number(per_copy) and float(per_copy) > 0
            check_optional(per_lfilter, HAVE_SCIPY)
            check_optional(per_pandas, HAVE_PANDAS)
            assert " ".join(met) in ("met", "not met")


def test_quick_run_prints_machine_and_summary(quick_run):
    out = quick_run.stdout
    assert f"numpy {np.__version__}" in out
    assert "CPU:" in out
    # 12 running-average rows, and with threadpoolctl a one-thread row of
    # grad2 and of moments per per-sample gradient case and dtype
    total = 12 + HAVE_THREADPOOLCTL * len(bench.linear_shapes(True)) * 2 * 2
    assert re.search(rf"^targets met: \d+ of {total}$", out, re.MULTILINE)


def test_repeat_must_be_positive(capsys):
    with pytest.raises(SystemExit) as stop:
        bench.main(["--quick", "--repeat", "0"])
    assert stop.value.code == 2
    assert "--repeat" in capsys.readouterr().err


def test_without_scipy_and_pandas_their_columns_say_na(monkeypatch, capsys):
    # a None entry in sys.modules makes importing that module fail
    for name in ("scipy", "scipy.signal", "pandas"):
        monkeypatch.setitem(sys.modules, name, None)
    assert bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "scipy missing" in out and "pandas missing" in out
    tables = parse_tables(out)
    assert len(tables) == 4
    for rows in tables.values():
        for name in BASELINES[1:]:
            assert rows[name] == ["n/a", "n/a"]
        for name in KERNELS:
            assert is_number(rows[name][1])
            assert rows[name][2:4] == ["n/a", "n/a"]


def rounding_bound(x, a, b, axis, eps, initial=0.0):
    """Bound on the difference, by rounding, of two evaluations of
    y_t = a y_{t-1} + b x_t from y_0 = initial (0 <= a < 1).

    Each step of either evaluation rounds a few times, each rounding off
    by at most eps times the running sum of absolute terms,
    R_t = a R_{t-1} + |b x_t| from R_0 = |initial|; an error made at step
    s reaches step t scaled by a^(t-s), so the errors add up to at most
    1 / (1 - a) times that. Four roundings per step per evaluation, two
    evaluations: 8 eps R_t / (1 - a).
    """
    terms = np.abs(b * np.moveaxis(np.asarray(x, np.float64), axis, -1))
    R = np.empty_like(terms)
    previous = np.abs(np.asarray(initial, np.float64))
    for t in range(terms.shape[-1]):
        previous = a * previous + terms[..., t]
        R[..., t] = previous
    return np.moveaxis(8 * eps * R / (1 - a), -1, axis)


CASES = [((300,), -1), ((40, 30), 0), ((40, 30), 1)]


@pytest.mark.skipif(not HAVE_SCIPY, reason="needs scipy")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape, axis", CASES)
@pytest.mark.parametrize("kernel", KERNELS)
def test_lfilter_baseline_computes_the_kernels_recurrence(
        kernel, shape, axis, dtype, rng):
    N = 10.0
    x = rng.standard_normal(shape).astype(dtype)
    got = bench.lfilter_baseline(kernel, x, N, axis)()
    # warmup_mean is compared with the ema it becomes once t >= N
    reference = sgdprob.leaky_sum if kernel == "leaky_sum" else sgdprob.ema
    want = reference(x, N, axis=axis)
    a, b = 1.0 - 1.0 / N, 1.0 if kernel == "leaky_sum" else 1.0 / N
    # lfilter runs in x's dtype: its rounding unit is x's (and ours ends
    # rounded to x's dtype, within the same unit)
    tol = rounding_bound(x, a, b, axis, np.finfo(dtype).eps)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.all(np.abs(got.astype(np.float64) - want) <= tol)


@pytest.mark.skipif(not HAVE_PANDAS, reason="needs pandas")
@pytest.mark.parametrize("shape, axis", CASES)
def test_pandas_baseline_computes_ema_from_the_first_value(shape, axis, rng):
    N = 10.0
    x = rng.standard_normal(shape)
    got = bench.pandas_result(bench.pandas_baseline(x, N, axis)(), axis)
    first = np.take(x, 0, axis=axis)
    want = sgdprob.ema(x, N, axis=axis, initial=first)
    # pandas derives its weights from alpha = 1/N through the centre of
    # mass, 1/(1 + (1/alpha - 1)): a few rounding units off, which moves
    # each weight by a few eps relatively, inside the same bound
    tol = rounding_bound(x, 1.0 - 1.0 / N, 1.0 / N, axis,
                         np.finfo(np.float64).eps, initial=first)
    assert got.shape == want.shape
    assert np.all(np.abs(got - want) <= tol)


LINEAR_ROW = re.compile(
    r"^  (numpy|sgdprob|einsum) (grad2|moments)\s+(1|all)\s+(.*)$")


def test_quick_run_prints_per_sample_gradient_rows(quick_run):
    rows = [LINEAR_ROW.match(line) for line in quick_run.stdout.splitlines()]
    rows = [m.groups() for m in rows if m]
    # per case and dtype: numpy and sgdprob rows of grad2 and moments at
    # each thread setting, and one einsum row
    threads = 2 if HAVE_THREADPOOLCTL else 1
    assert len(rows) == len(bench.linear_shapes(True)) * 2 * (
        4 * threads + 1)
    for who, what, threads_cell, cells in rows:
        cells = cells.split()
        assert is_number(cells[0]) and is_number(cells[1]), cells
        if who == "sgdprob" and threads_cell == "1":
            # ms, /numpy, peak MiB, then "met" or "not met"
            assert is_number(cells[2]), cells
            assert cells[3:] in (["met"], ["not", "met"]), cells


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_baselines_compute_what_they_are_compared_with(dtype, rng):
    """numpy's two-GEMM grad2 and the materialised einsum give the same
    W.grad2 as sgdprob.linear.grad2, and numpy's moments its moments."""
    B, J, I = 37, 5, 6
    x = rng.normal(size=(B, I)).astype(dtype)
    g = rng.normal(size=(B, J)).astype(dtype)
    ours = sgdprob.linear.grad2(x, g)
    # a sum of B non-negative terms, each rounded a few times: relative
    # error at most (B + 4) eps of the dtype on each side
    rtol = 2 * (B + 4) * np.finfo(dtype).eps
    np.testing.assert_allclose(bench.numpy_grad2(x, g), ours, rtol=rtol)
    np.testing.assert_allclose(bench.einsum_grad2(x, g), ours, rtol=rtol)
    grad, grad2 = bench.numpy_moments(x, g)
    ref_grad, ref_grad2 = sgdprob.linear.moments(x, g)
    scale = np.abs(g).T @ np.abs(x) / B      # terms of grad may cancel
    assert np.all(np.abs(grad - ref_grad) <= rtol * scale)
    np.testing.assert_allclose(grad2, ref_grad2, rtol=rtol)
