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
    # 12 running-average rows, with threadpoolctl a one-thread row of
    # grad2 and of moments per per-sample gradient case and dtype, and a
    # row per Monte Carlo kernel and case
    total = (12 + HAVE_THREADPOOLCTL * len(bench.linear_shapes(True)) * 2 * 2
             + 2 * len(bench.montecarlo_cases(True)[0]))
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


# --- Monte Carlo runs ----------------------------------------------------

MC_TITLE = re.compile(
    r"^(sgd_quadratic|langevin), (\d+) steps: target /normals <= 1\.25$")
MC_CELLS = ["d", "B", "replicas", "normals", "ms", "normals ms", "numpy ms",
            "/normals", "/numpy"]


def parse_mc_tables(text):
    """{kernel: (steps, [{column: cell}])} of the Monte Carlo tables."""
    tables, rows = {}, None
    for line in text.splitlines():
        title = MC_TITLE.match(line)
        if title:
            rows = []
            tables[title.group(1)] = (int(title.group(2)), rows)
        elif not line.strip():
            rows = None
        elif rows is not None and not line.split()[0] == "d":
            cells = line.split()
            row = dict(zip(MC_CELLS, cells))
            row["target"] = " ".join(cells[len(MC_CELLS):])
            rows.append(row)
    return tables


def printed_range(cell):
    """The interval a number printed as `cell` (such as 12.5, 1,000 or
    1.6e8) was rounded from."""
    digits, _, exponent = cell.replace(",", "").partition("e")
    half = 0.5 * 10.0 ** (int(exponent or 0) - len(digits.partition(".")[2]))
    value = float(cell.replace(",", ""))
    return value - half, value + half


def check_mc_tables(text, quick=True):
    tables = parse_mc_tables(text)
    assert sorted(tables) == ["langevin", "sgd_quadratic"]
    cases, steps = bench.montecarlo_cases(quick)
    for kernel, (steps_cell, rows) in tables.items():
        assert steps_cell == steps
        assert [(int(r["d"]), int(r["B"]), int(r["replicas"].replace(
            ",", ""))) for r in rows] == cases, kernel
        for row, (d, B, replicas) in zip(rows, cases):
            # sgd_quadratic draws every sample's noise, langevin one
            # d-vector per replica and step whatever B
            per = B * d if kernel == "sgd_quadratic" else d
            lo, hi = printed_range(row["normals"])
            assert lo <= steps * replicas * per <= hi, row
            for name in ("ms", "normals ms", "numpy ms"):
                assert is_number(row[name]) and float(row[name]) > 0, row
            # each ratio is the printed times' ratio, up to their rounding
            # and its own (two decimals)
            t_lo, t_hi = printed_range(row["ms"])
            for name in ("normals", "numpy"):
                b_lo, b_hi = printed_range(row[name + " ms"])
                r_lo, r_hi = printed_range(row["/" + name])
                assert t_lo / b_hi <= r_hi and r_lo <= t_hi / max(b_lo,
                                                                  1e-300)
            # met exactly when the unrounded ratio is within 1.25
            r_lo, r_hi = printed_range(row["/normals"])
            if r_hi <= 1.25:
                assert row["target"] == "met", row
            elif r_lo > 1.25:
                assert row["target"] == "not met", row
            else:
                assert row["target"] in ("met", "not met"), row
    return tables


def test_quick_run_prints_montecarlo_rows(quick_run):
    check_mc_tables(quick_run.stdout)
    assert "Monte Carlo runs from Phi = 0" in quick_run.stdout


@pytest.mark.parametrize("only", [["montecarlo"], ["linear", "averages"]])
def test_only_runs_the_sections_named(only, capsys):
    args = ["--quick"]
    for name in only:
        args += ["--only", name]
    assert bench.main(args) == 0
    out = capsys.readouterr().out
    averages, linear = "averages" in only, "linear" in only
    montecarlo = "montecarlo" in only
    assert len(parse_tables(out)) == 4 * averages
    assert ("per-sample gradient squares, (B, J, I)" in out) == linear
    assert bool(parse_mc_tables(out)) == montecarlo
    if montecarlo:
        check_mc_tables(out)
    total = (12 * averages + linear * HAVE_THREADPOOLCTL
             * len(bench.linear_shapes(True)) * 2 * 2
             + montecarlo * 2 * len(bench.montecarlo_cases(True)[0]))
    assert re.search(rf"^targets met: \d+ of {total}$", out, re.MULTILINE)
    # the notes of the sections run, and only those
    assert ("Baselines, each on the same array" in out) == averages
    assert ("Per-sample gradient squares of a linear layer" in out) == linear
    assert ("Monte Carlo runs from" in out) == montecarlo


def test_only_rejects_an_unknown_section(capsys):
    with pytest.raises(SystemExit) as stop:
        bench.main(["--quick", "--only", "adam"])
    assert stop.value.code == 2
    assert "--only" in capsys.readouterr().err


def mc_model(d, seed):
    """A Hessian with eigenvalues in [0.5, 2] in a random basis, and a
    full noise covariance."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    H = (Q * np.linspace(0.5, 2.0, d)) @ Q.T
    L = rng.standard_normal((d, d))
    return (H + H.T) / 2, L @ L.T + 0.1 * np.eye(d)


def replay_bound(Z, H, Sigma1, rate, gain):
    """Bound, per replica, on ||kernel - NumPy baseline||_2 after a run of
    phi <- phi - rate phi @ H + gain zbar @ S from phi = 0, where zbar is
    the mean of the n_b normals Z[k, r] (steps, replicas, n_b, d) of a
    step (n_b = B for SGD, 1 for Langevin) and S is the root of Sigma1.

    In exact arithmetic the two compute the same states from the same
    normals; they differ by rounding. With u = eps / 2, a sum or dot
    product of n terms is off by at most n u times the sum of the
    absolute terms, and ||(|A| |x|)|| <= ||A||_F ||x||. Let p_k bound
    ||phi_k||, w_k = mean_b ||z_kb|| (>= ||zbar_k||), h = ||H||_F and
    s = ||S||_F = sqrt(trace Sigma1). One step rounds, in units of u:
    - NumPy: the mean of n_b normals, zbar @ S, phi @ H, the scalings,
      the rounded gain (a square root for Langevin) and two additions:
      p_k + (d + 3) rate h p_k + (d + n_b + 6) |gain| s w_k;
    - the kernel, in the eigenbasis psi = Q^T phi of H = Q diag(lam)
      Q^T: a = 1 - rate lam (3), the (d + 1)-term sum a_i psi_i +
      sum_j M_ij zs_j, the sum zs of the n_b normals, and the rounding
      of M = (gain / n_b) Q^T S itself ((d + 4) sqrt(d)):
      (d + 4) p_k + (d + n_b + (d + 4) sqrt(d)) |gain| s w_k.
    The eigendecomposition is not exact either: with e_H =
    ||Q diag(lam) Q^T - H||_2 and e_Q = ||Q^T Q - I||_2 (measured here,
    plus the rounding of measuring them) the kernel's recursion, exact,
    differs from NumPy's by at most (rate e_H + 2 e_Q) p_k +
    e_Q |gain| s w_k a step; its last step back, phi = Q psi, rounds by
    d sqrt(d) u p_K. An error made at one step is carried to the next
    by I - rate H, of norm rho = max |1 - rate lam| <= 1, so the errors
    add up, and p_{k+1} = rho p_k + |gain| s w_k bounds ||phi_{k+1}||.
    Each rounding is counted as eps = 2 u, which covers the
    second-order terms and the factors 1 + O(eps) left out above.
    """
    steps, replicas, n_b, d = Z.shape
    eps = np.finfo(np.float64).eps
    lam, Q = np.linalg.eigh(H)          # what sgd_quadratic / langevin use
    e_H = (np.linalg.norm((Q * lam) @ Q.T - H, 2)
           + (d + 3) * d * eps * np.abs(lam).max())
    e_Q = np.linalg.norm(Q.T @ Q - np.eye(d), 2) + (d + 1) * d * eps
    h = np.linalg.norm(H)
    s = np.sqrt(np.trace(Sigma1))
    g = abs(gain)
    rho = np.abs(1.0 - rate * lam).max()
    assert rho <= 1.0
    w = np.linalg.norm(Z, axis=-1).mean(axis=2)     # (steps, replicas)
    per_p = eps * (2 * d + 6 + (d + 3) * rate * h) + rate * e_H + 2 * e_Q
    per_w = (eps * (2 * d + 2 * n_b + 6 + (d + 4) * np.sqrt(d)) + e_Q) * g * s
    p = np.zeros(replicas)
    total = np.zeros(replicas)
    for k in range(steps):
        total += per_p * p + per_w * w[k]
        p = rho * p + g * s * w[k]
    return total + eps * d * np.sqrt(d) * p


MC_REPLAY = [(1, 1), (1, 5), (3, 1), (3, 4)]


@pytest.mark.parametrize("d, B", MC_REPLAY)
def test_numpy_sgd_baseline_replays_the_kernel(d, B):
    H, Sigma1 = mc_model(d, 10 + d)
    eta, steps, replicas = 0.3, 30, 40
    args = {"eta": eta, "B": B, "steps": steps, "replicas": replicas}
    got = bench.numpy_sgd_quadratic(H, Sigma1, rng=5, **args)
    want = sgdprob.sgd_quadratic(H, Sigma1, rng=5, **args)
    # the kernel's documented draw order: every sample's noise, by step,
    # replica, sample and coordinate
    Z = np.random.default_rng(5).standard_normal((steps, replicas, B, d))
    tol = replay_bound(Z, H, Sigma1, rate=eta, gain=eta)
    assert got.shape == want.shape == (replicas, d)
    assert np.all(np.linalg.norm(got - want, axis=1) <= tol)
    # the bound tells runs apart: another seed's lies far outside it
    other = bench.numpy_sgd_quadratic(H, Sigma1, rng=6, **args)
    assert np.all(np.linalg.norm(other - want, axis=1) > 1e6 * tol)


@pytest.mark.parametrize("d, B", MC_REPLAY)
def test_numpy_langevin_baseline_replays_the_kernel(d, B):
    H, Sigma1 = mc_model(d, 20 + d)
    eta, dt, steps, replicas = 0.3, 0.05, 30, 40
    args = {"eta": eta, "B": B, "time": steps * dt, "dt": dt,
            "replicas": replicas}
    got = bench.numpy_langevin(H, Sigma1, rng=5, **args)
    want = sgdprob.langevin(H, Sigma1, rng=5, **args)
    # one d-vector per step and replica, whatever B
    Z = np.random.default_rng(5).standard_normal((steps, replicas, 1, d))
    tol = replay_bound(Z, H, Sigma1, rate=dt, gain=np.sqrt(eta * dt / B))
    assert got.shape == want.shape == (replicas, d)
    assert np.all(np.linalg.norm(got - want, axis=1) <= tol)
    other = bench.numpy_langevin(H, Sigma1, rng=6, **args)
    assert np.all(np.linalg.norm(other - want, axis=1) > 1e6 * tol)


@pytest.mark.parametrize("d, B, replicas", [(1, 1, 7), (1, 5, 3),
                                            (3, 1, 4), (3, 4, 5)])
@pytest.mark.parametrize("kernel", ["sgd_quadratic", "langevin"])
def test_draw_normals_draws_what_the_kernel_draws(kernel, d, B, replicas):
    H, Sigma1 = mc_model(d, 1)
    steps, dt = 6, 0.05
    run, drawn = np.random.default_rng(11), np.random.default_rng(11)
    if kernel == "sgd_quadratic":
        sgdprob.sgd_quadratic(H, Sigma1, eta=0.3, B=B, steps=steps,
                              replicas=replicas, rng=run)
    else:
        sgdprob.langevin(H, Sigma1, eta=0.3, B=B, time=steps * dt, dt=dt,
                         replicas=replicas, rng=run)
    shape = bench.normals_per_step(kernel, d, B, replicas)
    block = bench.draw_normals(steps, shape, drawn)
    # a normal more or fewer would leave the bit generator elsewhere
    assert drawn.bit_generator.state == run.bit_generator.state
    per = B * d if kernel == "sgd_quadratic" else d
    assert block.shape == shape and block.size == replicas * per
    Z = np.random.default_rng(11).standard_normal((steps,) + shape)
    assert np.array_equal(block, Z[-1])


def test_montecarlo_baselines_reject_bad_input():
    with pytest.raises(ValueError, match="kernel must be one of"):
        bench.normals_per_step("adam", 1, 1, 1)
    with pytest.raises(ValueError, match="replicas must be >= 1"):
        bench.normals_per_step("langevin", 1, 1, 0)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        bench.draw_normals(0, (2, 3))
    with pytest.raises(ValueError, match="each entry of shape"):
        bench.draw_normals(1, (2, 0))
    with pytest.raises(TypeError, match="each entry of shape"):
        bench.draw_normals(1, ("2",))
    with pytest.raises(ValueError, match="Sigma1 must be"):
        bench.numpy_sgd_quadratic(np.eye(2), np.eye(3), eta=0.1, B=1,
                                  steps=1, replicas=1)
    with pytest.raises(ValueError, match="eta must be"):
        bench.numpy_sgd_quadratic(1.0, 1.0, eta=0.0, B=1, steps=1,
                                  replicas=1)
    with pytest.raises(TypeError, match="B must be an integer"):
        bench.numpy_langevin(1.0, 1.0, eta=0.1, B="2", time=1.0, dt=0.1,
                             replicas=1)
    with pytest.raises(ValueError, match="whole number of steps"):
        bench.numpy_langevin(1.0, 1.0, eta=0.1, B=1, time=0.25, dt=0.1,
                             replicas=1)
    with pytest.warns(RuntimeWarning, match="SGD diverges"):
        bench.numpy_sgd_quadratic(1.0, 1.0, eta=2.5, B=1, steps=1,
                                  replicas=1)
    with pytest.warns(RuntimeWarning, match="Euler-Maruyama scheme"):
        bench.numpy_langevin(1.0, 1.0, eta=0.1, B=1, time=2.5, dt=2.5,
                             replicas=1)
