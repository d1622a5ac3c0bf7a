"""The report command, its tables and exit status, and its figures."""
import math
import struct
import subprocess
import sys

import numpy as np
import pytest

import sgdprob.report as report
from sgdprob.datasets import least_squares_grads, load_diabetes
from sgdprob.report import (Check, Section, average_weights, check,
                            exit_status, expected_rel_error, format_checks)

U = 2.0 ** -53
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_cli(*args, cwd, code=None):
    """python -m sgdprob ARGS, run outside the source tree so that the
    installed package is the one imported."""
    if code is None:
        cmd = [sys.executable, "-m", "sgdprob", *args]
    else:
        cmd = [sys.executable, "-c", code, *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def stream():
    return report.smooth_gradient_stream()


@pytest.fixture(scope="module")
def sections(stream):
    return [report.running_average_checks(),
            report.gradient_stream_section(stream)]


@pytest.fixture(scope="module")
def all_sections(stream):
    """Every section of the report, built as main builds them."""
    ctx = report.build_context(stream=stream)
    return [make(ctx) for make in report.SECTIONS]


def result_rows(stdout):
    return [line for line in stdout.splitlines()
            if line.rstrip().endswith(("PASS", "FAIL"))]


def test_cli_every_check_passes(tmp_path, all_sections):
    proc = run_cli(cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = result_rows(proc.stdout)
    # A: 13, B: 4, C (W.grad2 is not a function of W.grad): 7,
    # D (the batch size in RMSProp): 4 claims at each of 5 batch sizes,
    # E (SGD and Langevin): Sigma^B at 4 B and once without replacement,
    # SGD and Euler-Maruyama variances at 4 B, the Langevin variance,
    # 3 paths, SGD on data at 4 B and the Mandt et al. gap
    assert [len(s.checks) for s in all_sections] == [13, 4, 7, 20, 22]
    n_checks = sum(len(s.checks) for s in all_sections)
    assert len(rows) == n_checks
    assert all(r.rstrip().endswith("PASS") for r in rows)
    assert f"{n_checks} checks: {n_checks} passed, 0 failed." in proc.stdout
    for s in all_sections:
        assert s.title in proc.stdout
    assert proc.stderr == ""


def test_cli_help(tmp_path):
    proc = run_cli("--help", cwd=tmp_path)
    assert proc.returncode == 0
    assert "--plots DIR" in proc.stdout


def test_cli_bad_option(tmp_path):
    proc = run_cli("--no-such-option", cwd=tmp_path)
    assert proc.returncode == 2
    assert "unrecognized arguments" in proc.stderr


def png_size(path):
    """(width, height) from the IHDR chunk of a PNG file."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_cli_plots(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "figures"                 # created by the command
    proc = run_cli("--plots", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = {"leaky_sum_of_constant.png", "diabetes_gradient_averages.png",
             "rmsprop_batch_size.png", "langevin_batch_size.png"}
    assert {p.name for p in out.iterdir()} == names
    for name in names:
        path = out / name
        assert path.stat().st_size > 10_000
        width, height = png_size(path)
        assert width > 500 and height > 300
        assert f"wrote {path}" in proc.stdout


def test_cli_plots_without_matplotlib(tmp_path):
    # A None entry in sys.modules makes "import matplotlib" fail.
    code = ("import sys; sys.modules['matplotlib'] = None; "
            "from sgdprob.report import main; sys.exit(main(sys.argv[1:]))")
    proc = run_cli("--plots", str(tmp_path / "f"), cwd=tmp_path, code=code)
    assert proc.returncode == 2
    assert "needs matplotlib" in proc.stderr
    assert "pip install" in proc.stderr
    assert not (tmp_path / "f").exists()


def test_cli_plots_into_a_file(tmp_path):
    pytest.importorskip("matplotlib")
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a directory")
    proc = run_cli("--plots", str(blocker), cwd=tmp_path)
    assert proc.returncode == 2
    assert "cannot make the directory" in proc.stderr


def test_failing_row_gives_exit_status_1():
    good = check("one is one", 1.0, 1.0, 0.0)
    bad = check("two is three", 2.0, 3.0, 0.5)
    nan = check("nan is nan", np.nan, np.nan, 1.0)
    assert good.passed and not bad.passed and not nan.passed
    assert exit_status([good]) == 0
    assert exit_status([good, bad]) == 1
    assert exit_status([good, nan]) == 1
    table = format_checks([good, bad])
    lines = table.splitlines()
    assert lines[2].endswith("PASS") and lines[3].endswith("FAIL")
    assert "1.0e+00" in lines[3]                 # the error, |3 - 2|


def test_main_returns_1_when_a_section_fails(monkeypatch, capsys):
    failing = Section("Z. A section that fails",
                      [Check("a wrong claim", 0.0, 1.0, 1.0, 1e-3)])
    monkeypatch.setattr(report, "SECTIONS",
                        report.SECTIONS + [lambda ctx: failing])
    assert report.main([]) == 1
    out = capsys.readouterr().out
    assert "Z. A section that fails" in out
    assert result_rows(out)[-1].endswith("FAIL")
    assert "1 failed." in out


def test_check_takes_largest_error_and_last_values():
    c = check("series", [1.0, 2.0, 3.0], [1.0, 2.5, 3.25], 1.0)
    assert (c.analytic, c.kernel, c.error) == (3.0, 3.25, 0.5)
    assert c.passed


def test_format_table_aligns_columns():
    table = report.format_table(["a", "bb"], [["x", "1"], ["yyy", "22"]])
    # Widths 3 and 2, two spaces between: text left, numbers right.
    assert table.splitlines() == ["a    bb", "---  --", "x     1",
                                  "yyy  22"]


def plain_recurrence(x, a, b, y0=0.0):
    """y_t = a y_{t-1} + b x_t, a plain Python loop."""
    y = y0
    for v in x:
        y = a * y + b * v
    return y


def test_running_average_rows_recomputed(sections):
    rows = {c.claim: c for c in sections[0].checks}
    for c, N in [(1.0, 10.0), (-2.5, 1000.0), (0.3, 100.0)]:
        row = rows[f"leaky_sum of c -> N c (c={c:g}, N={N:g})"]
        assert row.analytic == N * c
        y = plain_recurrence([c] * int(60 * N), 1 - 1 / N, 1.0)
        # The plain loop is within 3u per step of its scale N |c|, an
        # error amplified at most N times; the row's tolerance covers the
        # kernel's error.
        assert abs(row.kernel - y) <= row.tol + 3 * U * N * (N + 1) * abs(c)
    row = rows["leaky_sum of c, t=1..200 (c=0.7, N=50, y0=-20)"]
    r = 1 - 1 / 50
    closed = 50 * 0.7 * (1 - r ** 200) + r ** 200 * -20.0
    assert row.analytic == pytest.approx(closed, rel=1e-12)
    row = rows["ema of c, t=1..3000 (c=-1.5, N=500, mu0=4)"]
    r = 1 - 1 / 500
    closed = -1.5 * (1 - r ** 3000) + r ** 3000 * 4.0
    assert row.analytic == pytest.approx(closed, rel=1e-12)
    for N in ("1", "10", "inf"):
        row = rows[f"warmup_mean of c is c, t=1..1000 (N={N})"]
        assert row.analytic == 0.1


def test_tolerances_are_tight_enough_to_fail(sections):
    # Every bound is a rounding bound: far below the size of the values
    # compared, so a wrong kernel (a wrong coefficient, an off-by-one
    # step) cannot pass.
    for s in sections:
        for c in s.checks:
            scale = max(abs(c.analytic), abs(c.kernel))
            assert 0 < c.tol < 1e-9 * max(scale, 1.0), c.claim


def test_stream_mean_and_covariance_recomputed(stream):
    X, y, _ = load_diabetes()
    n = len(y)
    A = np.hstack([X, np.ones((n, 1))])
    # At phi = 0 the mean gradient is -(1/n) A^T y.
    g = -(A.T @ y) / n
    np.testing.assert_allclose(stream.g, g, rtol=1e-12, atol=1e-12)
    G = least_squares_grads(X, y, np.zeros(A.shape[1]))
    tr = np.trace(np.cov(G, rowvar=False, bias=True))
    assert stream.trace_sigma == pytest.approx(tr, rel=1e-12)
    # The stream is whole passes, each a permutation of the patients.
    T = stream.stream.shape[0]
    assert T % n == 0 and T >= 10_000
    rows = {tuple(r) for r in G}
    assert all(tuple(r) in rows for r in stream.stream[:: 97])


def test_relative_errors_recomputed_by_a_plain_loop(stream):
    i = 1                                   # N = 100
    N = stream.Ns[i]
    assert N == 100.0
    a, b = 1 - 1 / N, 1 / N
    mu = np.zeros(stream.g.shape)
    errs = {}
    for t, x in enumerate(stream.stream, start=1):
        mu = a * mu + b * x
        if t in (10, 100, 1000, 10_000):
            errs[t] = np.linalg.norm(mu - stream.g) / np.linalg.norm(
                stream.g)
    for t, e in errs.items():
        # Two float64 runs of the same recurrence: rounding only.
        assert stream.rel_err["ema"][i][t - 1] == pytest.approx(e,
                                                               rel=1e-9)
        assert stream.rel_err["leaky_sum/N"][i][t - 1] == pytest.approx(
            e, rel=1e-9)


@pytest.mark.parametrize("kind, N", [("ema", 4.0), ("warmup_mean", 4.0),
                                     ("warmup_mean", np.inf),
                                     ("warmup_mean", 1.0)])
def test_average_weights_are_the_impulse_response(kind, N):
    t = 12
    # Feed unit impulses through the plain recurrence.
    for s in range(t):
        y = 0.0
        for j in range(1, t + 1):
            m = min(j, N) if kind == "warmup_mean" else N
            x = 1.0 if j == s + 1 else 0.0
            y = x if (kind == "warmup_mean" and j == 1) else (
                (1 - 1 / m) * y + x / m)
        assert average_weights(kind, N, t)[s] == pytest.approx(
            y, rel=1e-12, abs=1e-300)


def test_expected_error_against_monte_carlo():
    # A population of n = 5 gradients in R^2, visited pass by pass in
    # fresh random orders; R replicate streams of length t = 12.
    rng = np.random.default_rng(7)
    n, t, R = 5, 12, 40_000
    G = rng.normal(size=(n, 2)) + np.array([1.0, -0.5])
    g = G.mean(axis=0)
    tr = float(np.sum(G.var(axis=0)))
    passes = -(-t // n)
    order = np.concatenate([rng.permuted(np.tile(np.arange(n), (R, 1)),
                                         axis=1) for _ in range(passes)],
                           axis=1)[:, :t]
    for kind, N in [("ema", 4.0), ("warmup_mean", 4.0),
                    ("warmup_mean", np.inf)]:
        w = average_weights(kind, N, t)
        avg = np.einsum("s,rsk->rk", w, G[order])
        sq = np.sum((avg - g) ** 2, axis=1) / np.dot(g, g)
        mean, se = sq.mean(), sq.std(ddof=1) / math.sqrt(R)
        expected = expected_rel_error(kind, N, t, n, g, tr) ** 2
        # 5 standard errors: a false failure about once in 3.5 million.
        assert abs(mean - expected) <= 5 * se, (kind, N)


def test_expected_error_exact_cases():
    g = np.array([3.0, 4.0])                   # |g| = 5
    tr = 50.0
    # One sample: no bias for warmup_mean, variance tr Sigma.
    assert expected_rel_error("warmup_mean", 10.0, 1, 7, g, tr) == \
        pytest.approx(math.sqrt(tr) / 5)
    # A whole pass averaged with equal weights: exactly g.
    assert expected_rel_error("warmup_mean", np.inf, 7, 7, g, tr) == \
        pytest.approx(0.0, abs=1e-7)
    # ema after one step: mean g / N, variance tr Sigma / N^2.
    N = 4.0
    assert expected_rel_error("ema", N, 1, 7, g, tr) == pytest.approx(
        math.sqrt((1 - 1 / N) ** 2 * 25 + tr / N ** 2) / 5)


def test_predicted_noise(stream):
    expected = np.sqrt(stream.trace_sigma / (2 * stream.Ns - 1)) / \
        np.linalg.norm(stream.g)
    np.testing.assert_allclose(stream.predicted_noise(), expected)
