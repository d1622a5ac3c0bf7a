"""The report: every claim about the running averages checked against the
kernels, the averages at work on the gradients of a real data set, then
the per-sample second moment W.grad2 and the batch size in RMSProp.

    python -m sgdprob [--plots DIR]

Each section is a function that returns a :class:`Section`: a title, rows
of :class:`Check` (claim, analytic value, kernel value, error, tolerance)
and lines of text. :func:`main` prints the sections top to bottom and
returns 1 if any check fails, else 0. A new section is one more function
in :data:`SECTIONS`.

Tolerances are rounding bounds derived in the comments next to them, or
for a Monte Carlo claim a number of standard errors; a check passes when
the largest error over the series is within its bound.
"""
import argparse
import math
import os
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import analytic, linear
from ._optim import rmsprop_step
from ._report_langevin import (langevin_section, least_squares_run,
                               noise_scaling_run, plot_langevin_batch_size,
                               stationary_run)
from ._running import ema, leaky_sum, warmup_mean
from .datasets import least_squares_grads, load_diabetes

__all__ = ["Check", "Section", "check", "format_table", "format_checks",
           "exit_status", "running_average_checks", "GradientStream",
           "smooth_gradient_stream", "average_weights",
           "expected_rel_error", "gradient_stream_section",
           "grad2_counterexample_section", "KINDS", "BatchSizeRun",
           "time_average_weights", "batch_size_run", "batch_size_section",
           "noise_scaling_run", "stationary_run", "least_squares_run",
           "langevin_section", "build_context", "write_plots", "main"]

U = 2.0 ** -53          # unit roundoff of float64

# ---------------------------------------------------------------------------
# Rounding bounds
#
# Every kernel runs y_t = a y_{t-1} + b x_t in float64, with a = 1 - 1/N,
# and b = 1 (leaky_sum) or 1/N (ema, warmup_mean once t >= N).
#
# (1) Rounding inside the kernel. Against the same recurrence run exactly
#     with the kernel's own a and b, the error is at most
#     KERNEL_UNITS u A_t, where A_t = a A_{t-1} + a |y_{t-1}| + |b x_t| is
#     the recurrence run on absolute values (an error made at step j decays
#     like everything else). A plain loop makes 3 roundings per step; a
#     kernel that advances K steps per dependency link makes at most K + 4
#     (its power a^(k+1) takes k + 1 products); any K up to 32 stays
#     within 40.
#     With |y| <= S and |b x| <= X, A_t <= sum_{k<t} a^k (S + X)
#     <= m (S + X), where m = min(t, N) (the sum of a^k is at most t and
#     at most 1 / (1 - a) = N).
KERNEL_UNITS = 40


def _kernel_rounding(m, S, X):
    """Bound (1): m = min(t, N), S >= |y|, X >= |b x|."""
    return KERNEL_UNITS * U * m * (S + X)


# (2) Rounding of the coefficients. a = fl(1 - fl(1/N)) differs from
#     r = 1 - 1/N by at most u (1 + u). The exact solution
#     y_t = sum_{k<t} a^k b x_{t-k} + a^t y_0 changes with a at the rate
#     sum_{k<t} k a^(k-1) |b x| + t a^(t-1) |y_0| <= m^2 X + m |y_0|
#     (the first sum is at most t^2 / 2 and at most 1 / (1 - a)^2 = N^2,
#     the last term at most t and at most about N / e). So the computed a
#     moves y_t by at most u (1 + u)(1 + 2 u N)(m^2 X + m |y_0|), and we
#     bound (1 + u)(1 + 2 u N) by 2. For ema, b = fl(1/N) is within u of
#     1/N (relative), which moves y_t by at most u m X more.
def _coefficient_rounding(m, X, y0=0.0, b_rounded=False):
    """Bound (2): a (and b if b_rounded) rounded from 1 - 1/N (and 1/N)."""
    return 2 * U * (m * m * X + m * abs(y0)) + (U * m * X if b_rounded
                                                 else 0.0)


# (3) Rounding of the closed forms in sgdprob.analytic, which compute
#     r^t = exp(e) and 1 - r^t = -expm1(e) with e = t log1p(-1/N). We allow
#     each of log1p, exp and expm1 4 units in the last place (8u). fl(1/N)
#     errs by u and log1p amplifies a relative error of its argument
#     x = -1/N by kappa = |x / ((1 + x) log1p(x))| (1.05 at N = 10), so
#     e has relative error (kappa + 9) u (the product with t adds u);
#     exp(e) then has relative error |e| (kappa + 9) u + 8u, and -expm1(e)
#     at most (kappa + 9) u + 8u (because |e| e^e / (1 - e^e) <= 1). The
#     products with c and y_0 and the sum add at most 3 roundings. For
#     N c (1 - r^t) + r^t y_0 (leaky_sum), and c (1 - r^t) + r^t mu_0
#     (ema) with the scale N |c| + |y_0| replaced by |c| + |mu_0|:
#         u scale (kappa + 20 + |e| (kappa + 9)).
def _closed_form_rounding(t, N, scale):
    """Bound (3) for t steps (the largest t of a series) at horizon N."""
    x = -1.0 / N
    kappa = abs(x / ((1.0 + x) * math.log1p(x)))
    e = abs(t * math.log1p(x))
    return U * scale * (kappa + 20.0 + e * (kappa + 9.0))


# ---------------------------------------------------------------------------
# Checks, sections and tables

@dataclass(frozen=True)
class Check:
    """One claim checked against the kernels.

    `analytic` and `kernel` are the values compared (for a series, their
    last entries); `error` is the largest absolute difference over the
    series and `tol` the bound it must stay within. A Monte Carlo claim
    sets `unit` to ``"s.e."``: its `error` is then the largest
    ``|kernel - analytic| / standard error`` over the values compared and
    `tol` a number of standard errors.
    """

    claim: str
    analytic: float
    kernel: float
    error: float
    tol: float
    unit: str = ""

    @property
    def passed(self):
        """True if error <= tol (a NaN error fails)."""
        return bool(self.error <= self.tol)


def check(claim, analytic_value, kernel_value, tol):
    """A :class:`Check` comparing two arrays (or numbers) element by
    element: the error is the largest absolute difference."""
    a, k = np.broadcast_arrays(np.asarray(analytic_value, dtype=float),
                               np.asarray(kernel_value, dtype=float))
    if a.size == 0:
        raise ValueError(f"nothing to compare for the claim {claim!r}")
    if np.isfinite(a).all() and np.isfinite(k).all():
        error = float(np.max(np.abs(k - a)))
    else:
        error = math.nan                            # fails the check
    return Check(claim, float(a.flat[-1]), float(k.flat[-1]), error,
                 float(tol))


@dataclass
class Section:
    """A part of the report: a title, checks, then lines of text."""

    title: str
    checks: list = field(default_factory=list)
    text: list = field(default_factory=list)


def format_table(headers, rows, align=None):
    """Rows of strings as a plain-text table with a rule under the header.

    `align` is a string of 'l' and 'r', one per column (default: the
    first column left, the others right).
    """
    align = align or "l" + "r" * (len(headers) - 1)
    widths = [max(len(str(c)) for c in col)
              for col in zip(headers, *rows)]

    def line(cells):
        out = [str(c).ljust(w) if a == "l" else str(c).rjust(w)
               for c, w, a in zip(cells, widths, align)]
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule] + [line(r) for r in rows])


def format_checks(checks):
    """The table of checks: claim, analytic, kernel, abs error,
    tolerance, PASS or FAIL."""
    headers = ["claim", "analytic", "kernel", "abs error", "tolerance",
               "result"]
    rows = [[c.claim, f"{c.analytic:.7g}", f"{c.kernel:.7g}",
             f"{c.error:.2f} {c.unit}" if c.unit else f"{c.error:.1e}",
             f"{c.tol:.2f} {c.unit}" if c.unit else f"{c.tol:.1e}",
             "PASS" if c.passed else "FAIL"] for c in checks]
    return format_table(headers, rows, "lrrrrl")


def exit_status(checks):
    """0 if every check passes, else 1."""
    return 0 if all(c.passed for c in checks) else 1


def _para(text):
    """A paragraph of the report, wrapped at 78 columns; '~' is a space
    that does not break a line."""
    return textwrap.fill(text, 78, break_on_hyphens=False).replace("~", " ")


# ---------------------------------------------------------------------------
# Section A: the running averages against their closed forms

def running_average_checks():
    """Each claim about leaky_sum, ema and warmup_mean, as a check."""
    rows = []

    # leaky_sum of a constant c tends to N c. After T = 60 N steps from 0
    # the closed form N c (1 - r^T) is short of the limit by
    # r^T N |c| <= e^-60 N |c|; the kernel adds bounds (1) and (2) with
    # m = N, |b x| = |c| and |y| <= N |c|, and N c itself one rounding.
    for c, N in [(1.0, 10.0), (-2.5, 1000.0), (0.3, 100.0)]:
        T = int(60 * N)
        y = leaky_sum(np.full(T, c), N)
        left = math.exp(T * math.log1p(-1.0 / N)) * N * abs(c)
        tol = (left + _kernel_rounding(N, N * abs(c), abs(c))
               + _coefficient_rounding(N, abs(c)) + U * N * abs(c))
        rows.append(check(f"leaky_sum of c -> N c (c={c:g}, N={N:g})",
                          analytic.leaky_sum_limit(c, N), y[-1], tol))

    # leaky_sum of c at every t = 1..T: N c (1 - r^t) + r^t y_0. Bounds
    # (1) and (2) with m = min(T, N), |y| <= m |c| + |y_0|, and (3).
    for c, N, y0, T in [(1.0, 8.0, 0.0, 40), (0.7, 50.0, -20.0, 200)]:
        t = np.arange(1, T + 1)
        y = leaky_sum(np.full(T, c), N, initial=y0)
        m = min(T, N)
        S = m * abs(c) + abs(y0)
        tol = (_kernel_rounding(m, S, abs(c))
               + _coefficient_rounding(m, abs(c), y0)
               + _closed_form_rounding(T, N, N * abs(c) + abs(y0)))
        rows.append(check(
            f"leaky_sum of c, t=1..{T} (c={c:g}, N={N:g}, y0={y0:g})",
            analytic.leaky_sum_of_constant(c, N, t, initial=y0), y, tol))

    # y_t is the running average of N x_t: leaky_sum(x) = ema(N x), on a
    # random stream. Each side within bounds (1) and (2) of the exact
    # recurrence, with |b x| <= X = max |x| and |y| <= m X (for ema(N x),
    # b N x = x up to the 2 roundings of N x and 1/N: 2u m X more).
    rng = np.random.default_rng(20040407)
    x = rng.normal(1.0, 2.0, size=5000)
    N = 100.0
    X = float(np.max(np.abs(x)))
    m = min(x.size, N)
    tol = (2 * (_kernel_rounding(m, m * X, X) + _coefficient_rounding(m, X))
           + 2 * U * m * X)
    rows.append(check(f"leaky_sum(x) = ema(N x), random x (N={N:g})",
                      ema(N * x, N), leaky_sum(x, N), tol))

    # y_t = N mu_t: leaky_sum(x, initial=N mu_0) = N ema(x, initial=mu_0).
    # Both sides as above, with |y_0| = N |mu_0| (the ema's error is scaled
    # by N); the products N mu_0 and N mu_t add u N |mu_0| and u |y|, and
    # ema's b = fl(1/N) adds u m X.
    N, mu0 = 30.0, 2.0
    m = min(x.size, N)
    y0 = N * mu0
    S = m * X + abs(y0)
    tol = (2 * (_kernel_rounding(m, S, X) + _coefficient_rounding(m, X, y0))
           + U * m * X + U * S + U * abs(y0))
    rows.append(check(f"y_t = N mu_t, random x (N={N:g}, mu0={mu0:g})",
                      analytic.leaky_sum_from_ema(ema(x, N, initial=mu0), N),
                      leaky_sum(x, N, initial=y0), tol))

    # ema of c at every t = 1..T: c (1 - r^t) + r^t mu_0. Bounds (1), (2)
    # with |b x| = |c| / N and |y| <= m |c| / N + |mu_0|, and (3).
    for c, N, mu0, T in [(3.0, 20.0, 0.0, 100), (-1.5, 500.0, 4.0, 3000)]:
        t = np.arange(1, T + 1)
        mu = ema(np.full(T, c), N, initial=mu0)
        m = min(T, N)
        X = abs(c) / N * (1 + U)
        tol = (_kernel_rounding(m, m * X + abs(mu0), X)
               + _coefficient_rounding(m, X, mu0, b_rounded=True)
               + _closed_form_rounding(T, N, abs(c) + abs(mu0)))
        rows.append(check(
            f"ema of c, t=1..{T} (c={c:g}, N={N:g}, mu0={mu0:g})",
            analytic.ema_of_constant(c, N, t, initial=mu0), mu, tol))

    # warmup_mean of c is c at every t >= 1, whatever N. The rounded
    # coefficients a = fl(1 - fl(1/m)), b = fl(1/m) sum to 1 within 2u,
    # so each step moves y off c by at most 2u |c|, and these errors decay
    # like the input: in all at most 2u m |c| (1 + 4u m) (the rounded a
    # may exceed 1 - 1/m by 2u), below 3u m |c|. Bound
    # (1) has |y| <= |c| and |b x| <= |c|. Here m = min(T, N): T for
    # N = inf, where the plain mean never forgets.
    c, T = 0.1, 1000
    Ns = np.array([1.0, 10.0, np.inf])
    ys = warmup_mean(np.full(T, c), Ns)           # one call, one row per N
    for N, y in zip(Ns, ys):
        m = min(T, N)
        tol = _kernel_rounding(m, abs(c), abs(c)) + 3 * U * m * abs(c)
        rows.append(check(f"warmup_mean of c is c, t=1..{T} (N={N:g})",
                          _warmup_of_constant(c, T), y, tol))

    # The same, fed in three chunks, each continued from the last output
    # with start = the number of inputs already seen; N = 300 puts the end
    # of the warm-up inside the second chunk.
    N, cuts = 300.0, [0, 137, 600, T]
    xs = np.full(T, c)
    parts, last = [], 0.0
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        parts.append(warmup_mean(xs[lo:hi], N, initial=last, start=lo))
        last = parts[-1][-1]
    m = min(T, N)
    tol = _kernel_rounding(m, abs(c), abs(c)) + 3 * U * m * abs(c)
    rows.append(check(f"warmup_mean of c, 3 chunks via start (N={N:g})",
                      _warmup_of_constant(c, T), np.concatenate(parts),
                      tol))

    return Section(
        "A. Running averages of a series: each claim against the kernels",
        rows,
        [_para("'analytic' is the right-hand side of the claim (a closed "
               "form, or the kernel it is related to), 'kernel' the "
               "left-hand side, both at the last step of the series; "
               "'abs error' is the largest difference over the series "
               "and 'tolerance' the rounding bound derived in "
               "sgdprob/report.py. r~=~1~-~1/N.")])


def _warmup_of_constant(c, T):
    """warmup_mean of c at t = 1..T, from the closed form (c for all t)."""
    return analytic.warmup_mean_of_constant(c, 1.0, np.arange(1, T + 1))


# ---------------------------------------------------------------------------
# Section B: smoothing the per-sample gradients of a real least-squares fit

@dataclass
class GradientStream:
    """Per-sample gradients of the diabetes fit, streamed and smoothed.

    `G` holds one gradient per patient (n, p); `stream` is the order in
    which SGD would visit them (T, p); `averages` maps 'ema',
    'warmup_mean' and 'leaky_sum/N' to arrays (len(Ns), T, p); `rel_err`
    maps the same names to |avg_t - g| / |g|, shape (len(Ns), T).
    """

    G: np.ndarray
    g: np.ndarray
    trace_sigma: float
    stream: np.ndarray
    Ns: np.ndarray
    averages: dict
    rel_err: dict
    feature_names: tuple

    def predicted_noise(self):
        """sqrt(tr Sigma / (2N - 1)) / |g| for each N: the RMS relative
        error of an EMA of independent samples once t >> N."""
        return (np.sqrt(self.trace_sigma / (2 * self.Ns - 1))
                / np.linalg.norm(self.g))


def smooth_gradient_stream(Ns=(10.0, 100.0, 1000.0), epochs=25, seed=2004):
    """Run the three averages over the diabetes gradient stream.

    The model is least squares on the standardized features with an
    intercept, at phi = 0: where SGD starts, and far from the optimum (at
    the least-squares solution the mean gradient g is 0, and an error
    relative to |g| means nothing). The stream visits the 442 patients in
    a fresh random order in each of `epochs` passes.
    """
    X, y, names = load_diabetes()
    n = len(y)
    phi = np.zeros(X.shape[1] + 1)
    G = least_squares_grads(X, y, phi)
    g = G.mean(axis=0)
    trace_sigma = float(np.sum(G.var(axis=0)))   # population variances

    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(n) for _ in range(epochs)])
    stream = G[order]                                 # (T, p)

    # One call per average runs every coordinate and every N: the stream
    # is (T, p) with time on axis 0, and N of shape (k, 1) broadcasts
    # against the p coordinates, giving (k, T, p).
    Ns = np.asarray(Ns, dtype=float)
    Nk = Ns[:, None]
    averages = {
        "ema": ema(stream, Nk, axis=0),
        "warmup_mean": warmup_mean(stream, Nk, axis=0),
        "leaky_sum/N": leaky_sum(stream, Nk, axis=0) / Ns[:, None, None],
    }
    norm_g = np.linalg.norm(g)
    rel_err = {k: np.linalg.norm(v - g, axis=-1) / norm_g
               for k, v in averages.items()}
    return GradientStream(G, g, trace_sigma, stream, Ns, averages, rel_err,
                          names + ("intercept",))


def average_weights(kind, N, t):
    """Weights w_1..w_t with avg_t = sum_s w_s x_s, from the definitions.

    ema: w_s = (1/N) r^(t-s), r = 1 - 1/N. warmup_mean: w_s = (1/m_s)
    prod_{j=s+1}^{t} (1 - 1/m_j), m_j = min(j, N). Computed in closed
    form with NumPy, independently of the kernels.
    """
    s = np.arange(1, t + 1, dtype=float)
    if kind == "ema":
        return np.exp((t - s) * np.log1p(-1.0 / N)) / N
    m = np.minimum(s, N)
    with np.errstate(divide="ignore"):
        log_a = np.log1p(-1.0 / m)                  # -inf where m = 1
    later = np.concatenate([np.cumsum(log_a[::-1])[::-1][1:], [0.0]])
    return np.exp(later) / m


def expected_rel_error(kind, N, t, n, g, trace_sigma):
    """RMS of |avg_t - g| / |g| over the random orders of the stream.

    The stream visits the n samples in a fresh random order in each pass.
    Within a pass two different draws have covariance -Sigma / (n - 1),
    and passes are independent, so with W1_e, W2_e the sums of the
    weights and of their squares over pass e,

        E |avg_t - g|^2 = (1 - sum_s w_s)^2 |g|^2
                          + tr Sigma sum_e (n W2_e - W1_e^2) / (n - 1).

    The first term is the start-up bias (r^t for ema, 0 for warmup_mean).
    """
    w = average_weights(kind, N, t)
    epoch = np.arange(t) // n
    W1 = np.bincount(epoch, w)
    W2 = np.bincount(epoch, w * w)
    # Each term is >= 0 (Cauchy-Schwarz: W1^2 <= n W2 over a pass of n);
    # a whole pass with equal weights gives 0, up to rounding.
    var = trace_sigma * max(float(np.sum((n * W2 - W1 ** 2) / (n - 1))),
                            0.0)
    g2 = float(np.dot(g, g))
    return math.sqrt((1.0 - w.sum()) ** 2 * g2 + var) / math.sqrt(g2)


def gradient_stream_section(gs, times=(10, 100, 1000, 10_000)):
    """Checks on the real stream, and the table of relative errors."""
    n, p = gs.G.shape
    T = gs.stream.shape[0]
    Xg = float(np.max(np.abs(gs.G)))
    checks = []

    # After one pass the cumulative mean (warmup_mean with N = inf) has
    # seen every patient once: it is the full-data mean gradient g. The
    # warm-up bounds of section A with m = n and |y|, |x| <= max |G|;
    # NumPy's mean of n terms adds gamma_n max |G| and one division.
    one_pass = warmup_mean(gs.stream[:n], np.inf, axis=0)[-1]
    tol = (_kernel_rounding(n, Xg, Xg) + 3 * U * n * Xg
           + (n * U / (1 - n * U) + U) * Xg)
    checks.append(check(f"warmup_mean(N=inf) after one pass = g (n={n})",
                        gs.g, one_pass, tol))

    # leaky_sum / N = ema on the real stream, for each N: leaky_sum within
    # (1) + (2) of the exact recurrence (|b x| <= max|G|, |y| <= m max|G|),
    # scaled by 1/N, plus the division; ema the same at scale 1/N, plus
    # its rounded b.
    for i, N in enumerate(gs.Ns):
        m = min(T, N)
        lk = _kernel_rounding(m, m * Xg, Xg) + _coefficient_rounding(m, Xg)
        tol = 2 * lk / N + 2 * U * m * Xg / N
        checks.append(check(f"leaky_sum/N = ema on the stream (N={N:g})",
                            gs.averages["ema"][i],
                            gs.averages["leaky_sum/N"][i], tol))

    noise = gs.predicted_noise()
    headers = (["average", "N"] + [f"t={t:g}" for t in times]
               + ["RMS t>5N", "iid noise"])

    def measured(name, i):
        err = gs.rel_err[name][i]
        late = err[int(5 * gs.Ns[i]):]
        rms = math.sqrt(float(np.mean(late ** 2)))
        return ([name, f"{gs.Ns[i]:g}"]
                + [f"{err[t - 1]:.3f}" for t in times]
                + [f"{rms:.3f}", f"{noise[i]:.3f}"])

    def expected(kind, i):
        vals = [expected_rel_error(kind, gs.Ns[i], t, n, gs.g,
                                   gs.trace_sigma) for t in times]
        return ["  expected RMS", ""] + [f"{v:.3f}" for v in vals] + ["", ""]

    rows = []
    for i in range(len(gs.Ns)):
        if i:
            rows.append([""] * len(headers))
        rows += [measured("ema", i), measured("leaky_sum/N", i),
                 expected("ema", i),
                 measured("warmup_mean", i), expected("warmup_mean", i)]

    big = gs.Ns[-1]
    bias = ", ".join(f"{math.exp(t * math.log1p(-1 / big)):.3f}"
                     for t in times[:-1])
    text = [
        _para(f"Least squares on the diabetes data (Efron et al. 2004): "
              f"n~=~{n} patients, {p - 1} standardized features and an "
              f"intercept, at phi~=~0, where SGD starts (at the "
              f"least-squares solution g~=~0, and an error relative to "
              f"|g| would mean nothing). The stream: {T // n} passes, each "
              f"in a fresh random order, T~=~{T} per-sample gradients g_r "
              f"in R^{p}; |g|~=~{np.linalg.norm(gs.g):.2f}, tr~Sigma~=~"
              f"{gs.trace_sigma:.4g} (Sigma: the covariance of one sampled "
              f"gradient)."),
        "",
        "Relative error |avg_t - g| / |g| at step t:",
        "",
        format_table(headers, rows, "lrrrrrrr"),
        "",
        _para(f"ema starts at 0, so its mean is (1 - r^t) g: a start-up "
              f"bias of relative size r^t~=~(1~-~1/N)^t ({bias} at "
              f"N~=~{big:g} and t~=~"
              f"{', '.join(f'{t:g}' for t in times[:-1])}) that takes a "
              f"few times N steps to fade. warmup_mean is the plain mean "
              f"while t <= N: no start-up bias, only the noise of a "
              f"t-sample mean. leaky_sum/N is ema (y_t~=~N~mu_t). For "
              f"t >> N all three fluctuate about g; for independent "
              f"samples the RMS relative error is "
              f"sqrt(tr~Sigma~/~(2N~-~1))~/~|g| ('iid noise'), and "
              f"drawing each pass without replacement lowers it once N is "
              f"comparable to n~=~{n}. 'expected RMS' is the exact RMS "
              f"over the random orders, from the weights each average "
              f"gives the samples (expected_rel_error); one stream "
              f"scatters about it."),
    ]
    return Section("B. Smoothing the per-sample gradients of a real "
                   "least-squares fit", checks, text)


# ---------------------------------------------------------------------------
# Section C: W.grad2 cannot be computed from W.grad

# A batch mean of B terms t_b computed by the kernels (a GEMM with the
# scale fl(1/B)) errs by at most (B + 4) u (1/B) sum_b |t_b|: B - 1
# additions, the product ygrad x, the scale and its product (the bound
# tests/test_linear.py uses). Squaring the data adds two roundings.
def _mean_rounding(B, abs_mean, squared=False):
    """Rounding bound of a kernel's batch mean of B terms, mean |t_b|."""
    return (B + (6 if squared else 4)) * U * abs_mean


def grad2_counterexample_section():
    """Two batches with the same W.grad and different W.grad2."""
    X, y, names = load_diabetes()
    x = np.append(X[0], 1.0)             # patient 1, and the bias's 1
    r = -y[0]                            # its residual y_hat - y at phi = 0
    rx = r * x
    B = 2
    xb = np.stack([x, x])                # the batch: patient 1 twice
    ygrad = np.array([[[r], [r]],        # batch 1: ygrad = (r, r)
                      [[0.0], [2 * r]]])  # batch 2: ygrad = (0, 2r)
    # One call for both batches: xb (B, I) broadcasts against ygrad
    # (2, B, 1), giving a leading dimension of 2.
    g, g2 = linear.moments(xb, ygrad)
    var = linear.variance(xb, ygrad)
    g, g2, var = g[:, 0], g2[:, 0], var[:, 0]

    # r x is one rounding, (r x)^2 three; the kernels as above, with
    # mean |t_b| = |r x| for W.grad of both batches, and mean t_b^2 =
    # (r x)^2 and 2 (r x)^2 for W.grad2 (and for the variance, whose
    # two passes err by no more than that: docstring of
    # sgdprob.linear.variance).
    tol_g = _mean_rounding(B, np.abs(rx)) + U * np.abs(rx)
    sq = rx * rx
    checks = [
        check("batch 1, ygrad = (r, r): W.grad = r x", rx, g[0],
              np.max(tol_g)),
        check("batch 2, ygrad = (0, 2r): W.grad = r x", rx, g[1],
              np.max(tol_g)),
        check("W.grad of batch 1 = W.grad of batch 2", g[0], g[1],
              2 * np.max(_mean_rounding(B, np.abs(rx)))),
        check("batch 1: W.grad2 = r^2 x^2", sq, g2[0],
              np.max(_mean_rounding(B, sq, True) + 3 * U * sq)),
        check("batch 2: W.grad2 = 2 r^2 x^2", 2 * sq, g2[1],
              np.max(_mean_rounding(B, 2 * sq, True) + 3 * U * 2 * sq)),
        check("batch 1: variance over b = 0", np.zeros_like(sq), var[0],
              np.max(_mean_rounding(B, sq, True))),
        check("batch 2: variance over b = r^2 x^2", sq, var[1],
              np.max(_mean_rounding(B, 2 * sq, True) + 3 * U * sq)),
    ]

    j = names.index("bmi")
    text = [
        _para(f"Two batches of B~=~2 samples, both patient~1 of the "
              f"diabetes data (x: its {len(x) - 1} standardized features "
              f"and the 1 of the bias), least squares at phi~=~0, where "
              f"the residual is r~=~{r:g}. Batch~1 has ygrad~=~(r,~r), "
              f"batch~2 ygrad~=~(0,~2r): per-sample gradients r~x, r~x "
              f"and 0, 2r~x. The rows compare every coordinate; the "
              f"values shown are the last one, the bias, where x~=~1."),
        "",
        format_table(
            ["", "W.grad[bmi]", "W.grad2[bmi]", "variance[bmi]"],
            [[f"batch {k + 1}", f"{g[k][j]:.6g}", f"{g2[k][j]:.6g}",
              f"{var[k][j]:.6g}"] for k in range(2)]),
        "",
        _para("Same W.grad, different W.grad2: no function f can give "
              "W.grad2~=~f(W.grad). In general W.grad2~=~W.grad^2 + "
              "(the variance over the batch of the per-sample "
              "gradients), and W.grad, a sum, has thrown that variance "
              "away; it has to be accumulated from the per-sample "
              "gradients during the backward pass (sgdprob.linear.grad2 "
              "does it with one more GEMM, on the squared data)."),
    ]
    return Section("C. W.grad2 cannot be computed from W.grad "
                   "(Problem 3(c))", checks, text)


# ---------------------------------------------------------------------------
# Section D: the batch size in RMSProp's second moment

KINDS = ("W.grad**2", "W.grad2")
"""The two second moments RMSProp can average: the square of the batch
mean gradient, and the batch mean of the squared per-sample gradients."""


@dataclass
class BatchSizeRun:
    """Batches of the diabetes gradients at phi = 0, drawn with replacement.

    Arrays indexed ``[B, kind, column]`` have one row per batch size in
    `Bs`, the kinds of :data:`KINDS` (W.grad**2, W.grad2) and one column
    per coordinate of the gradient, then a last column for their sum.

    `mean` and `se` are the mean over `draws` independent batches and its
    standard error. `s_avg` is the time average, after `burn_in` steps,
    of RMSProp's running mean s fed one fresh batch per step for `steps`
    steps, and `s_se` its standard error (see :func:`batch_size_run`).
    `s_weight` is the sum of the weights that average gives the inputs,
    1 up to the start from s = 0.
    """

    Bs: np.ndarray
    draws: int
    steps: int
    N: float
    burn_in: int
    g: np.ndarray
    sigma2: np.ndarray
    mean: np.ndarray
    se: np.ndarray
    s_avg: np.ndarray
    s_se: np.ndarray
    s_weight: float
    feature_names: tuple

    def exact(self):
        """E W.grad**2 = g^2 + sigma^2 / B and E W.grad2 = g^2 + sigma^2,
        per coordinate and summed, shape (len(Bs), 2, p + 1)."""
        g2 = self.g ** 2
        usual = g2 + self.sigma2 / self.Bs[:, None]
        per_sample = np.broadcast_to(g2 + self.sigma2, usual.shape)
        both = np.stack([usual, per_sample], axis=1)
        return np.concatenate([both, both.sum(-1, keepdims=True)], -1)


def time_average_weights(N, T, burn_in):
    """Weights c_1..c_T of the time average of an EMA after a burn-in.

    With ``s_0 = 0`` and ``s_t = r s_{t-1} + x_t / N``, ``r = 1 - 1/N``,
    the average ``(1/(T - b)) sum_{t=b+1}^{T} s_t`` (``b = burn_in``) is
    ``sum_j c_j x_j``. Summing ``s_t = (1/N) sum_{j<=t} r^(t-j) x_j``
    over ``t`` from ``f_j = max(j, b + 1)`` to ``T`` is a geometric
    series: ``c_j = r^(f_j - j) (1 - r^(T - f_j + 1)) / (T - b)``.
    """
    r = 1.0 - 1.0 / N
    j = np.arange(1, T + 1)
    f = np.maximum(j, burn_in + 1)
    return r ** (f - j) * (1.0 - r ** (T - f + 1)) / (T - burn_in)


def batch_size_run(Bs=(1, 4, 16, 64, 256), draws=10_000, steps=10_000,
                   N=10.0, burn_in=200, seed=1812):
    """Monte Carlo of W.grad**2 and W.grad2 over the batch size, and of
    RMSProp's s fed with each.

    Least squares on the diabetes data at phi = 0, as in section B: the
    layer y = W x with the column of ones appended to x, and ygrad[b] =
    y_b - target_b = -target_b. Batches of B rows are drawn with
    replacement, so their per-sample gradients are independent draws from
    the n per-sample gradients of the data, with mean g and variance
    sigma^2 (ddof = 0) per coordinate.

    First `draws` batches per B give W.grad and W.grad2 (one call of
    :func:`sgdprob.linear.moments` with a leading dimension of batches).
    Then a fresh stream of `steps` batches per B is fed, one per step, to
    :func:`sgdprob.rmsprop_step` with eta = 0, so phi stays at 0 and only
    s moves: one s from W.grad**2, one from W.grad2, every B and
    coordinate in one call per step.

    Standard errors. For the means over draws: the sample standard
    deviation over the draws / sqrt(draws). For the time average of s:
    s is an EMA of independent inputs x_t, so the time average is
    sum_j c_j x_j with the weights of :func:`time_average_weights`; its
    variance is v sum_j c_j^2, v the variance of one input, estimated
    from the stream (this accounts for the autocorrelation r^k of s
    exactly). Its mean is E x sum_j c_j, short of E x by the weight lost
    to the start from s = 0, r^(b+1) N (1 - r^(T-b)) / (T - b).
    """
    X, y, names = load_diabetes()
    n, d = X.shape
    x = np.hstack([X, np.ones((n, 1))])          # (n, I), bias column last
    ygrad = -y[:, None]                          # y_hat - y at W = 0; J = 1
    G = least_squares_grads(X, y, np.zeros(d + 1))
    g, sigma2 = G.mean(axis=0), G.var(axis=0)
    Bs = np.asarray(Bs)
    rng = np.random.default_rng(seed)

    def batches(B, count):
        """W.grad and W.grad2 of `count` batches of B rows: (2, count, I)."""
        out = np.empty((2, count, d + 1))
        chunk = max(1, 2 ** 17 // B)             # at most 2**17 rows at once
        for lo in range(0, count, chunk):
            idx = rng.integers(0, n, size=(min(chunk, count - lo), B))
            m1, m2 = linear.moments(x[idx], ygrad[idx])   # (k, J=1, I)
            out[:, lo:lo + len(idx)] = m1[:, 0], m2[:, 0]
        return out

    def with_sum(a):
        return np.concatenate([a, a.sum(-1, keepdims=True)], -1)

    # Monte Carlo means, per B: (2 kinds, draws, p + 1)
    mean, se = [], []
    for B in Bs:
        m1, m2 = batches(int(B), draws)
        vals = with_sum(np.stack([m1 ** 2, m2]))
        mean.append(vals.mean(axis=1))
        se.append(vals.std(axis=1, ddof=1) / math.sqrt(draws))

    # RMSProp at phi = 0 with eta = 0: s' = (1 - 1/N) s + g2 / N
    stream = np.stack([batches(int(B), steps) for B in Bs])  # (nB, 2, T, I)
    grads = stream[:, 0]                                     # W.grad
    inputs = np.stack([grads ** 2, stream[:, 1]], axis=1)    # (nB, 2, T, I)
    phi = np.zeros((len(Bs), 2, d + 1))
    s = np.zeros_like(phi)
    total = np.zeros_like(phi)
    for t in range(steps):
        rmsprop_step(phi, s, grads[:, None, t], inputs[:, :, t],
                        eta=0.0, N=N, out=(phi, s))
        if t >= burn_in:
            total += s
    c = time_average_weights(N, steps, burn_in)
    v = with_sum(inputs).var(axis=2, ddof=1)                 # (nB, 2, p + 1)

    return BatchSizeRun(Bs, draws, steps, float(N), burn_in, g, sigma2,
                        np.array(mean), np.array(se),
                        with_sum(total / (steps - burn_in)),
                        np.sqrt(v * np.sum(c * c)), float(np.sum(c)),
                        names + ("bias",))


def _z_check(claim, exact, measured, se, k=5.0, slack=0.0):
    """A Monte Carlo check: the largest |measured - exact| / se over the
    columns must be within k (+ slack) standard errors. The row shows the
    last column (the sum over the coordinates)."""
    z = float(np.max(np.abs(measured - exact) / se))
    return Check(claim, float(exact[-1]), float(measured[-1]), z,
                 k + slack, "s.e.")


def batch_size_section(run):
    """Checks of E W.grad**2, E W.grad2 and RMSProp's s over B, and the
    table of how each s depends on the batch size."""
    exact = run.exact()
    checks = []
    # 5 standard errors: a false failure about once in 1.7 million per
    # column (12 columns per row), if the means are normal; with 10^4
    # draws they are, the per-sample gradients being bounded.
    for k, what in enumerate(["mean W.grad**2 = g^2 + sigma^2/B",
                              "mean W.grad2 = g^2 + sigma^2"]):
        for i, B in enumerate(run.Bs):
            checks.append(_z_check(f"{what}, B={B}", exact[i, k],
                                   run.mean[i, k], run.se[i, k]))
    # The time average of s falls short of its limit by the weight lost
    # to the start from s = 0, (1 - s_weight) |limit|: a few 1e-8 of it,
    # added to the tolerance in units of the standard error.
    short = 1.0 - run.s_weight
    for k, what in enumerate(["rmsprop s, W.grad**2",
                              "rmsprop s, W.grad2"]):
        target = "g^2 + sigma^2/B" if k == 0 else "g^2 + sigma^2"
        for i, B in enumerate(run.Bs):
            slack = float(np.max(short * np.abs(exact[i, k])
                                 / run.s_se[i, k]))
            checks.append(_z_check(f"{what} -> {target}, B={B}",
                                   exact[i, k], run.s_avg[i, k],
                                   run.s_se[i, k], slack=slack))

    p = len(run.g)
    ratio = np.sqrt(exact[:, 1, :p] / exact[:, 0, :p])
    rows = [[f"{B}", f"{exact[i, 0, -1]:.6g}", f"{run.s_avg[i, 0, -1]:.6g}",
             f"{exact[i, 1, -1]:.6g}", f"{run.s_avg[i, 1, -1]:.6g}",
             f"{ratio[i].min():.2f} - {ratio[i].max():.2f}"]
            for i, B in enumerate(run.Bs)]
    table = format_table(
        ["B", "|g|^2 + tr S/B", "s, W.grad**2", "|g|^2 + tr S",
         "s, W.grad2", "step ratio"], rows)
    big = int(np.argmax(ratio[-1]))
    text = [
        _para(f"Least squares on the diabetes data at phi~=~0, as in "
              f"section~B, with batches of B rows drawn with replacement: "
              f"the per-sample gradients of a batch are independent, with "
              f"mean g and variance sigma^2 (ddof~=~0) per coordinate, so "
              f"E~W.grad^2~=~g^2~+~sigma^2/B and E~W.grad2~=~g^2~+~"
              f"sigma^2, computed exactly from the {p}~columns of "
              f"per-sample gradients of the whole data. 'analytic' and "
              f"'kernel' show the sums over the {p} coordinates "
              f"(|g|^2~+~tr~S/B and |g|^2~+~tr~S, S the covariance of one "
              f"sample's gradient); the error, in standard errors "
              f"(s.e.), is the largest |measured~-~exact|~/~s.e. over "
              f"the coordinates and the sum. Means are over {run.draws} "
              f"batches per B. At B~=~1 the two kinds are one number."),
        "",
        _para(f"RMSProp's s' = (1 - 1/N) s + g2/N with N~=~{run.N:g}, at "
              f"phi~=~0 (eta~=~0), fed a fresh batch's W.grad**2 or "
              f"W.grad2 at each of {run.steps} steps, averaged over the "
              f"steps after the first {run.burn_in}. s is an EMA of "
              f"independent inputs, so that average is sum_j~c_j~x_j with "
              f"known weights (time_average_weights) and its standard "
              f"error is sqrt(v~sum_j~c_j^2), v the variance of one "
              f"input: this accounts for the autocorrelation of s "
              f"exactly."),
        "",
        "Where RMSProp's s settles, summed over the coordinates:",
        "",
        table,
        "",
        _para(f"The usual s, built from the square of the batch-mean "
              f"gradient, falls with B from |g|^2~+~tr~S towards |g|^2; "
              f"the per-sample s, built from W.grad2, does not move. "
              f"RMSProp divides each coordinate's step by sqrt(s), so "
              f"with the usual s the step grows with the batch size: "
              f"'step ratio' is sqrt((g^2~+~sigma^2)/(g^2~+~sigma^2/B)), "
              f"the usual step over the per-sample one, from its least "
              f"to its largest over the coordinates (at B~=~{run.Bs[-1]} "
              f"it is "
              f"{ratio[-1, big]:.1f} for {run.feature_names[big]}, whose "
              f"gradient is mostly noise). With W.grad2 the "
              f"normalisation, and so the meaning of eta, is the same at "
              f"every batch size."),
    ]
    return Section("D. The batch size in RMSProp's second moment "
                   "(Problem 3(d))", checks, text)


# ---------------------------------------------------------------------------
# Figures

def _pyplot_free_figure(figsize):
    """A matplotlib Figure drawn by the Agg backend (no GUI, no pyplot)."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_leaky_sum_of_constant(path):
    """Leaky sums of a constant converging to N c, closed form drawn over."""
    fig = _pyplot_free_figure((10, 4.2))
    ax1, ax2 = fig.subplots(1, 2)
    T = 20_000
    t = np.arange(1, T + 1)
    marks = np.unique(np.geomspace(1, T, 25).astype(int))
    Ns = np.array([10.0, 100.0, 1000.0])
    colors = ["tab:blue", "tab:orange", "tab:green"]

    c = 1.0
    ys = leaky_sum(np.full(T, c), Ns)     # (3, T): one row per N
    for N, y, col in zip(Ns, ys, colors):
        ax1.plot(t, y, color=col, lw=2, label=f"leaky_sum, N = {N:g}")
        ax1.plot(marks, analytic.leaky_sum_of_constant(c, N, marks), "o",
                 ms=4, mfc="none", color="k")
        ax1.axhline(N * c, color=col, ls=":", lw=1)
    ax1.plot([], [], "o", ms=4, mfc="none", color="k",
             label="closed form N c (1 - r^t)")
    ax1.plot([], [], ":", color="gray", label="limit N c")
    ax1.set(xscale="log", yscale="log", xlabel="step t", ylabel="y_t",
            title=f"Constant input c = {c:g}: y_t grows like c t, "
                  "then stops at N c")
    ax1.legend(loc="upper left", fontsize=8)

    c = -2.5
    ys = leaky_sum(np.full(T, c), Ns)
    for N, y, col in zip(Ns, ys, colors):
        ax2.plot(t / N, y / (N * c), color=col, lw=2, label=f"N = {N:g}")
    s = np.linspace(0, 6, 200)
    ax2.plot(s, -np.expm1(-s), "k--", lw=1, label="1 - exp(-t/N)")
    ax2.axhline(1.0, color="gray", ls=":", lw=1)
    ax2.set(xlim=(0, 6), ylim=(0, 1.05), xlabel="t / N",
            ylabel="y_t / (N c)",
            title=f"c = {c:g}: in units of N, every N gives one curve")
    ax2.legend(loc="lower right", fontsize=8)
    fig.suptitle("Leaky sum y_t = (1 - 1/N) y_{t-1} + c tends to N c")
    fig.savefig(path, dpi=110)


def plot_gradient_stream(gs, path, coordinate="intercept", N=100.0):
    """ema, warmup_mean and leaky_sum/N on the real gradient stream."""
    fig = _pyplot_free_figure((11, 4.6))
    ax1, ax2 = fig.subplots(1, 2)
    j = gs.feature_names.index(coordinate)
    i = int(np.flatnonzero(gs.Ns == N)[0])
    n = gs.G.shape[0]
    T = gs.stream.shape[0]
    t = np.arange(1, T + 1)

    ax1.plot(t, gs.stream[:, j], ".", ms=2, color="0.7",
             label="per-sample gradient g_r")
    styles = {"ema": ("tab:blue", "-", 2.2),
              "warmup_mean": ("tab:red", "-", 1.4),
              "leaky_sum/N": ("k", (0, (2, 2)), 1.0)}
    for name, (col, ls, lw) in styles.items():
        ax1.plot(t, gs.averages[name][i][:, j], color=col, ls=ls, lw=lw,
                 label=f"{name}, N = {N:g}")
    ax1.axhline(gs.g[j], color="k", lw=1, label="full-data mean g")
    lo, hi = gs.G[:, j].min(), gs.G[:, j].max()
    pad = 0.05 * (max(hi, 0.0) - min(lo, 0.0))
    ax1.set(xscale="log", xlim=(1, T),
            ylim=(min(lo, 0.0) - pad, max(hi, 0.0) + pad),
            xlabel="step t (samples seen)",
            ylabel=f"d loss / d phi[{coordinate}]",
            title=f"One coordinate ({coordinate}): ema starts at 0, "
                  "warmup_mean does not")
    ax1.legend(loc="lower left", fontsize=8)

    colors = ["tab:blue", "tab:orange", "tab:green"]
    noise = gs.predicted_noise()
    for k, (Nk, col) in enumerate(zip(gs.Ns, colors)):
        ax2.plot(t, gs.rel_err["ema"][k], color=col, lw=0.9,
                 label=f"ema, N = {Nk:g}")
        ax2.plot(t, gs.rel_err["warmup_mean"][k], color=col, lw=0.9,
                 ls="--", label=f"warmup_mean, N = {Nk:g}")
        ax2.axhline(noise[k], color=col, ls=":", lw=1.5)
    ax2.plot([], [], ":", color="gray", lw=1.5,
             label="iid: sqrt(tr Sigma / (2N - 1)) / |g|")
    for m in (n, 2 * n):
        ax2.axvline(m, color="0.6", lw=0.8)
    ax2.text(n * 1.08, 7.0, f"t = n, 2n (n = {n}): after whole\n"
             "passes the plain mean is g", fontsize=7, color="0.3",
             ha="left", va="top")
    ax2.set(xscale="log", yscale="log", xlim=(1, T), ylim=(1e-3, 10),
            xlabel="step t",
            ylabel="|avg_t - g| / |g|",
            title=f"Relative error over all {gs.G.shape[1]} coordinates")
    ax2.legend(loc="lower left", fontsize=7, ncol=2)
    fig.suptitle("Averaging the per-sample gradients of least squares on "
                 "the diabetes data (phi = 0)")
    fig.savefig(path, dpi=110)


def plot_rmsprop_batch_size(run, path):
    """Where RMSProp's s settles against B, for W.grad**2 and W.grad2."""
    fig = _pyplot_free_figure((12.5, 4.6))
    ax1, ax2 = fig.subplots(1, 2)
    exact = run.exact()
    p = len(run.g)
    Bline = np.geomspace(run.Bs[0], run.Bs[-1], 200)
    g2, tr = float(np.sum(run.g ** 2)), float(np.sum(run.sigma2))
    colors = {0: "tab:blue", 1: "tab:red"}

    ax1.plot(Bline, g2 + tr / Bline, color=colors[0], lw=1.5,
             label="|g|^2 + tr S / B")
    ax1.plot(Bline, np.full_like(Bline, g2 + tr), color=colors[1], lw=1.5,
             label="|g|^2 + tr S")
    ax1.axhline(g2, color="0.5", ls=":", lw=1, label="|g|^2")
    for k, marker in ((0, "o"), (1, "s")):
        ax1.errorbar(run.Bs, run.s_avg[:, k, -1], yerr=5 * run.s_se[:, k, -1],
                     fmt=marker, mfc="none", ms=7, color=colors[k],
                     label=f"time average of s, from {KINDS[k]}")
    ax1.set(xscale="log", yscale="log", xlabel="batch size B",
            ylabel="s summed over the coordinates",
            title="RMSProp's s at phi = 0: from W.grad**2 it falls with B")
    ax1.legend(loc="center right", fontsize=8)

    # Each coordinate divided by its own g^2 + sigma^2: W.grad2 gives 1
    # at every B; W.grad**2 falls to g^2 / (g^2 + sigma^2), low for the
    # coordinates whose gradient is mostly noise.
    norm = exact[0, 1, :p]
    frac = run.g ** 2 / norm
    import matplotlib
    cmap = matplotlib.colormaps["viridis"]
    order = np.argsort(frac)
    names = []
    for rank, j in enumerate(order):
        col = cmap(rank / (p - 1))
        names.append(ax2.plot(
            Bline, (run.g[j] ** 2 + run.sigma2[j] / Bline) / norm[j],
            color=col, lw=1, marker="o", mfc="none", ms=5, markevery=[],
            label=f"{run.feature_names[j]}  ({frac[j]:.2g})")[0])
        ax2.plot(run.Bs, run.s_avg[:, 0, j] / norm[j], "o", mfc="none",
                 ms=5, color=col)
        ax2.plot(run.Bs, run.s_avg[:, 1, j] / norm[j], "s", mfc="none",
                 ms=5, color=col)
    # one legend entry per coordinate, top to bottom as the lines end at
    # large B (by g^2 / (g^2 + sigma^2), the value they tend to)
    fig.legend(handles=names[::-1], loc="outside right center", fontsize=8,
               frameon=False, title="coordinate\n(g^2 / (g^2 + sigma^2))",
               title_fontsize=8)
    ax2.plot([], [], "s", mfc="none", color="k", label="from W.grad2")
    ax2.plot([], [], "o", mfc="none", color="k", label="from W.grad**2")
    ax2.plot([], [], "-", color="k", label="(g^2 + sigma^2/B) / "
             "(g^2 + sigma^2)")
    ax2.set(xscale="log", yscale="log", xlim=(0.7, run.Bs[-1] * 1.5),
            xlabel="batch size B", ylabel="s / (g^2 + sigma^2)",
            title=f"Each of the {p} coordinates, over its own "
                  "g^2 + sigma^2")
    ax2.legend(handles=ax2.get_lines()[-3:], loc="lower left", fontsize=8)
    fig.suptitle(f"Least squares on the diabetes data: RMSProp's s "
                 f"(N = {run.N:g}) from {run.steps} batches per B, "
                 f"error bars 5 s.e.")
    fig.savefig(path, dpi=110)


def write_plots(directory, gs, run, stat=None, ls=None):
    """Write the report's figures into `directory`; return their paths.

    `gs`, `run`, `stat` and `ls` are the runs of sections B, D and E
    (:func:`smooth_gradient_stream`, :func:`batch_size_run`,
    :func:`stationary_run`, :func:`least_squares_run`); without `stat`
    and `ls` the figure of section E is left out.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / "leaky_sum_of_constant.png",
             directory / "diabetes_gradient_averages.png",
             directory / "rmsprop_batch_size.png"]
    plot_leaky_sum_of_constant(paths[0])
    plot_gradient_stream(gs, paths[1])
    plot_rmsprop_batch_size(run, paths[2])
    if stat is not None and ls is not None:
        paths.append(directory / "langevin_batch_size.png")
        plot_langevin_batch_size(stat, ls, paths[-1])
    return paths


# ---------------------------------------------------------------------------
# Command line

# The sections in the order they are printed. Each takes the data shared
# by the sections (computed once in main) and returns a Section; a new
# section is one more entry here.
SECTIONS = [
    lambda ctx: running_average_checks(),
    lambda ctx: gradient_stream_section(ctx["stream"]),
    lambda ctx: grad2_counterexample_section(),
    lambda ctx: batch_size_section(ctx["batch_size"]),
    lambda ctx: langevin_section(ctx["noise"], ctx["stationary"],
                                 ctx["least_squares"]),
]


def build_context(**given):
    """The runs the sections share, by name; `given` ones are kept."""
    makers = {"stream": smooth_gradient_stream,
              "batch_size": batch_size_run,
              "noise": noise_scaling_run,
              "stationary": stationary_run,
              "least_squares": least_squares_run}
    return {name: given[name] if name in given else make()
            for name, make in makers.items()}


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m sgdprob",
        description="Check each claim about the running averages of "
                    "sgdprob against its C kernels, smooth the "
                    "per-sample gradients of a least-squares fit to real "
                    "data, show that W.grad2 is not a function of W.grad "
                    "and how the batch size moves RMSProp's second "
                    "moment, and how SGD at batch size B with learning "
                    "rate B eta' compares with its Langevin model. Exits "
                    "with status 1 if a check fails. "
                    "'python -m sgdprob bench' runs the benchmark.")
    p.add_argument("--plots", metavar="DIR",
                   help="also write PNG figures into DIR (needs "
                        "matplotlib: pip install 'sgdprob[plots]')")
    return p


def main(argv=None):
    """Print the report; return 0 if every check passes, else 1 (2 if
    --plots cannot be honoured: no matplotlib, or DIR cannot be made)."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.plots == "":
        print("python -m sgdprob: --plots needs a directory name",
              file=sys.stderr)
        return 2
    if args.plots is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("python -m sgdprob: --plots needs matplotlib; install "
                  "it with  pip install 'sgdprob[plots]'", file=sys.stderr)
            return 2
        try:
            Path(args.plots).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"python -m sgdprob: --plots {args.plots}: cannot make "
                  f"the directory ({exc.strerror})", file=sys.stderr)
            return 2

    ctx = build_context()
    sections = [make(ctx) for make in SECTIONS]
    checks = [c for s in sections for c in s.checks]
    written = []
    if args.plots is not None:
        written = write_plots(args.plots, ctx["stream"], ctx["batch_size"],
                              ctx["stationary"], ctx["least_squares"])
    try:
        _print_report(sections, checks)
        for path in written:
            print(f"wrote {path}")
    except BrokenPipeError:
        # The reader stopped reading (python -m sgdprob | head): say
        # nothing more, and keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return exit_status(checks)


def _print_report(sections, checks):
    print("sgdprob report: running averages, the per-sample second "
          "moment in RMSProp,")
    print("and the batch size in SGD and its Langevin model (Problems 1 "
          "to 4 of a course on SGD)")
    print()
    for s in sections:
        print(s.title)
        print("=" * len(s.title))
        print()
        if s.checks:
            print(format_checks(s.checks))
            print()
        for line in s.text:
            print(line)
        print()

    failed = sum(not c.passed for c in checks)
    print(f"{len(checks)} checks: {len(checks) - failed} passed, "
          f"{failed} failed.")
