"""Section E of the report: the batch size in SGD and in its Langevin model.

SGD at batch size B steps ``Phi <- Phi - eta g^B`` with ``g^B`` the mean
of B sampled gradients, whose covariance is ``Sigma^B = Sigma^1 / B``.
Its Langevin model ``Phi(t + dt) = Phi(t) - g dt + eps sqrt(dt)``,
``eps ~ N(0, eta Sigma^B)``, then has noise ``eta' Sigma^1`` when
``eta = B eta'``: the same process at every B. Three runs show it:

- :func:`noise_scaling_run`: ``Sigma^B`` measured on the per-sample
  gradients of the diabetes data, against ``Sigma^1 / B``;
- :func:`stationary_run`: SGD and the Langevin model on a 1-D quadratic
  with ``eta = B eta'``, their stationary variances against the exact
  laws of what is simulated, and the Langevin paths of every B from one
  seed;
- :func:`least_squares_run`: SGD on the diabetes data with
  ``eta = B eta'``, the covariance of its iterates against the Langevin
  prediction of Mandt, Hoffman and Blei (2017) and against the exact
  stationary covariance of SGD.

:func:`langevin_section` turns the three into a report section and
:func:`plot_langevin_batch_size` into a figure.
"""
import math
from dataclasses import dataclass

import numpy as np

from . import analytic
from ._montecarlo import (batch_noise_cov, langevin, sgd_least_squares,
                          sgd_quadratic)
from .datasets import least_squares_grads, load_diabetes

__all__ = ["NoiseScalingRun", "noise_scaling_run", "StationaryRun",
           "stationary_run", "LeastSquaresRun", "least_squares_run",
           "langevin_section", "plot_langevin_batch_size",
           "settling_steps"]

U = 2.0 ** -53          # unit roundoff of float64

#: Monte Carlo checks pass within this many standard errors. With
#: normal errors a single comparison fails falsely about once in 1.7
#: million; the largest of the 66 entries of a covariance about once in
#: 26 000.
K_SE = 5.0

#: The Mandt-Hoffman-Blei prediction must be within this relative error
#: (Frobenius norm) of the simulated covariance at the smallest B eta'.
MANDT_TOLERANCE = 0.10


def _table(headers, rows):
    from .report import format_table
    return format_table(headers, rows)


def settling_steps(factor, decades=12.0):
    """Steps after which ``factor**(2 k)`` is below ``10**-decades``.

    A linear recursion ``e <- factor e + noise`` started at its mean has
    covariance ``C (1 - factor^(2k))`` after k steps: after this many
    steps it is stationary to ``decades`` digits.
    """
    factor = abs(float(factor))
    if factor == 0.0:
        return 1
    return max(1, math.ceil(decades * math.log(10) / (-2 * math.log(factor))))


def _matrix_check(claim, exact, measured, se):
    """A Monte Carlo check of a symmetric matrix: the largest
    |measured - exact| / s.e. over its upper triangle, within K_SE; the
    row shows the traces."""
    from .report import Check

    iu = np.triu_indices(exact.shape[0])
    z = float(np.max(np.abs(measured - exact)[iu] / se[iu]))
    return Check(claim, float(np.trace(exact)), float(np.trace(measured)),
                 z, K_SE, "s.e.")


def _var_about(x, centre):
    """Mean of (x - centre)^2 and its standard error, over axis 0."""
    sq = (x - centre) ** 2
    return sq.mean(axis=0), sq.std(axis=0, ddof=1) / math.sqrt(len(sq))


# ---------------------------------------------------------------------------
# Sigma^B against Sigma^1 / B on real per-sample gradients

@dataclass
class NoiseScalingRun:
    """Covariances of batch-mean gradients measured by
    :func:`sgdprob.batch_noise_cov`.

    `cov[i]` and `se[i]` are measured at batch size ``Bs[i]`` with
    replacement; `cov_without` and `se_without` at `B_without` without
    replacement. `Sigma1` is the covariance (ddof = 0) of one row of the
    n per-sample gradients.
    """

    Bs: np.ndarray
    n_batches: int
    n: int
    Sigma1: np.ndarray
    cov: np.ndarray
    se: np.ndarray
    B_without: int
    cov_without: np.ndarray
    se_without: np.ndarray

    def expected_without(self):
        """``Sigma^1 / B (n - B) / (n - 1)``: the finite-population
        factor of batches of distinct rows."""
        B, n = self.B_without, self.n
        return self.Sigma1 / B * (n - B) / (n - 1)


def noise_scaling_run(Bs=(1, 4, 16, 64), n_batches=20_000, B_without=64,
                      seed=4):
    """Measure ``Sigma^B`` on the diabetes gradients at phi = 0.

    The n = 442 per-sample gradients of the least-squares loss at
    phi = 0 (as in sections B and D) are the population; batches of B
    rows are drawn from them, with replacement at each B of `Bs` and
    without at `B_without`.
    """
    X, y, _ = load_diabetes()
    G = least_squares_grads(X, y, np.zeros(X.shape[1] + 1))
    dev = G - G.mean(axis=0)
    Sigma1 = dev.T @ dev / len(G)
    rng = np.random.default_rng(seed)
    cov, se = [], []
    for B in Bs:
        c, s = batch_noise_cov(G, int(B), n_batches=n_batches, rng=rng)
        cov.append(c)
        se.append(s)
    c_wo, s_wo = batch_noise_cov(G, B_without, n_batches=n_batches,
                                 replace=False, rng=rng)
    return NoiseScalingRun(np.asarray(Bs), n_batches, len(G), Sigma1,
                           np.array(cov), np.array(se), B_without, c_wo,
                           s_wo)


# ---------------------------------------------------------------------------
# SGD and Langevin on a 1-D quadratic with eta = B eta'

@dataclass
class StationaryRun:
    """Stationary variances on ``L = h phi^2 / 2`` with gradient noise of
    variance `sigma2` per sample, at ``eta = B eta'`` for each B.

    `sgd_var[i]`, `sgd_se[i]`: the mean of ``phi^2`` over `replicas`
    runs of :func:`sgdprob.sgd_quadratic` after `sgd_steps[i]` steps
    (the stationary mean is 0), and its standard error.
    `em_var[i]`, `em_se[i]`: the same for :func:`sgdprob.langevin`,
    Euler-Maruyama at step `dt` up to time `time`, every B from the same
    seed. `path_diff[i]` is the largest difference between the recorded
    Langevin paths of ``Bs[i]`` and of ``Bs[0]`` (one seed, `path_replicas`
    runs), `path_tol` its rounding bound.
    """

    h: float
    sigma2: float
    eta_prime: float
    Bs: np.ndarray
    replicas: int
    sgd_steps: np.ndarray
    sgd_var: np.ndarray
    sgd_se: np.ndarray
    dt: float
    time: float
    em_var: np.ndarray
    em_se: np.ndarray
    path_replicas: int
    path_diff: np.ndarray
    path_tol: float
    sgd_samples: np.ndarray     # final states at the smallest and largest B

    @property
    def etas(self):
        return self.eta_prime * self.Bs

    def sgd_exact(self):
        """``eta sigma^2 / (B h (2 - eta h))`` for each B."""
        return np.array([analytic.sgd_stationary_cov(
            self.h, self.sigma2, eta=e, B=B)[0, 0]
            for e, B in zip(self.etas, self.Bs)])

    def em_exact(self):
        """The exact stationary variance of the Euler-Maruyama scheme."""
        return np.array([analytic.euler_maruyama_stationary_cov(
            self.h, self.sigma2, eta=e, B=B, dt=self.dt)[0, 0]
            for e, B in zip(self.etas, self.Bs)])

    def langevin_exact(self):
        """``eta sigma^2 / (2 B h)`` for each B: ``eta' sigma^2 / (2h)``."""
        return np.array([analytic.langevin_stationary_cov(
            self.h, self.sigma2, eta=e, B=B)[0, 0]
            for e, B in zip(self.etas, self.Bs)])


def stationary_run(Bs=(1, 4, 16, 64), eta_prime=0.02, h=1.0, sigma2=1.0,
                   replicas=20_000, dt=0.01, path_replicas=50, seed=31230):
    """SGD and its Langevin model on a 1-D quadratic, ``eta = B eta'``.

    Each run starts at phi = 0, the stationary mean, and runs until its
    variance has settled to 12 digits (:func:`settling_steps`): SGD
    multiplies the deviation by ``1 - eta h`` per step, Euler-Maruyama
    by ``1 - h dt``. Every run of the Langevin model uses the same seed.
    """
    Bs = np.asarray(Bs)
    sgd_steps, sgd_var, sgd_se, samples = [], [], [], {}
    em_var, em_se = [], []
    em_steps = settling_steps(1 - h * dt)
    time = em_steps * dt
    for B in Bs:
        eta = eta_prime * B
        steps = settling_steps(1 - eta * h)
        phi = sgd_quadratic(h, sigma2, eta=eta, B=int(B), steps=steps,
                            replicas=replicas, rng=seed + int(B))[:, 0]
        v, s = _var_about(phi, 0.0)
        sgd_steps.append(steps)
        sgd_var.append(v)
        sgd_se.append(s)
        if B in (Bs[0], Bs[-1]):
            samples[int(B)] = phi
        psi = langevin(h, sigma2, eta=eta, B=int(B), time=time, dt=dt,
                       replicas=replicas, rng=seed)[:, 0]
        v, s = _var_about(psi, 0.0)
        em_var.append(v)
        em_se.append(s)

    # The paths of every B from one seed: the noise coefficient
    # sqrt(dt eta sigma^2 / B) is the same number up to a few roundings,
    # so the paths differ by rounding only. Bound: psi_k = a psi_{k-1} +
    # c z_k with a = 1 - h dt makes 3 roundings a step, and c differs
    # between two B by at most 4 roundings; an error made at step j
    # decays like a^(k - j), so the difference stays within
    # 16 u A_k, A_k = |a| A_{k-1} + |a psi_{k-1}| + |c z_k|, the
    # recursion on absolute values, computed from the recorded path
    # (c z_k = psi_k - a psi_{k-1}).
    paths = [langevin(h, sigma2, eta=eta_prime * B, B=int(B), time=time,
                      dt=dt, replicas=path_replicas, rng=seed + 1,
                      record_every=1)[:, :, 0] for B in Bs]
    a = 1 - h * dt
    psi = paths[0]
    A = np.zeros(path_replicas)
    bound = 0.0
    for k in range(1, len(psi)):
        A = abs(a) * A + np.abs(a * psi[k - 1]) + np.abs(psi[k] - a * psi[k - 1])
        bound = max(bound, float(A.max()))
    diff = np.array([float(np.max(np.abs(p - psi))) for p in paths])
    return StationaryRun(float(h), float(sigma2), float(eta_prime), Bs,
                         replicas, np.array(sgd_steps), np.array(sgd_var),
                         np.array(sgd_se), float(dt), float(time),
                         np.array(em_var), np.array(em_se), path_replicas,
                         diff, 16 * U * bound, samples)


# ---------------------------------------------------------------------------
# SGD on the diabetes data against the Langevin prediction

@dataclass
class LeastSquaresRun:
    """SGD on least squares with ``eta = B eta'``, started at the optimum.

    `cov[i]` is the covariance of the iterates about ``phi_star``
    (the mean of ``(phi - phi*)(phi - phi*)^T`` over `replicas` runs of
    :func:`sgdprob.sgd_least_squares` after `steps[i]` steps) at batch
    size ``Bs[i]``, `cov_se[i]` its entrywise standard error; `mandt[i]`
    the Langevin prediction and `exact[i]` the exact stationary
    covariance of SGD (:func:`sgdprob.analytic`).
    """

    features: tuple
    eta_prime: float
    Bs: np.ndarray
    lam: np.ndarray             # eigenvalues of H = X^T X / n, ascending
    replicas: int
    steps: np.ndarray
    cov: np.ndarray
    cov_se: np.ndarray
    mandt: np.ndarray
    exact: np.ndarray

    @staticmethod
    def _rel(a, b):
        return np.linalg.norm(a - b, axis=(-2, -1)) / np.linalg.norm(
            b, axis=(-2, -1))

    def mandt_error(self):
        """|C_sim - C_mandt|_F / |C_mandt|_F for each B."""
        return self._rel(self.cov, self.mandt)

    def exact_gap(self):
        """|C_exact - C_mandt|_F / |C_mandt|_F: the model's own error."""
        return self._rel(self.exact, self.mandt)


def least_squares_run(features=("age", "sex", "bmi", "bp"),
                      Bs=(1, 4, 16, 64), eta_prime=0.01, replicas=20_000,
                      seed=2017):
    """SGD on the diabetes data at ``eta = B eta'``, against the
    Langevin prediction and the exact stationary covariance.

    The features are a well-conditioned subset with an intercept: with
    all ten, ``X^T X / n`` has an eigenvalue of 0.0086 (six blood
    serum measurements that nearly determine one another) and SGD takes
    about ``1 / (eta 0.0086)`` steps to settle along it.
    Every run starts at the optimum (the stationary mean) and takes
    :func:`settling_steps` for the slowest direction.
    """
    X, y, names = load_diabetes()
    cols = [names.index(f) for f in features]
    X1 = np.column_stack([X[:, cols], np.ones(len(y))])
    noise = analytic.least_squares_noise(X1, y)
    lam = np.linalg.eigvalsh(noise.H)
    Bs = np.asarray(Bs)
    steps, cov, cov_se, mandt, exact = [], [], [], [], []
    for B in Bs:
        eta = eta_prime * B
        k = settling_steps(1 - eta * lam[0])
        phi = sgd_least_squares(X1, y, eta=eta, B=int(B), steps=k,
                                replicas=replicas, phi0=noise.phi_star,
                                rng=seed + int(B))
        dev = phi - noise.phi_star
        prod = dev[:, :, None] * dev[:, None, :]
        steps.append(k)
        cov.append(prod.mean(axis=0))
        cov_se.append(prod.std(axis=0, ddof=1) / math.sqrt(replicas))
        mandt.append(analytic.mandt_stationary_cov(X1, y, eta=eta, B=B))
        exact.append(analytic.sgd_least_squares_stationary_cov(
            X1, y, eta=eta, B=B))
    return LeastSquaresRun(tuple(features) + ("intercept",),
                           float(eta_prime), Bs, lam, replicas,
                           np.array(steps), np.array(cov), np.array(cov_se),
                           np.array(mandt), np.array(exact))


# ---------------------------------------------------------------------------
# The section

def langevin_section(noise, stat, ls):
    """Section E from the three runs."""
    from .report import Check, Section, _para, _z_check, check

    checks = []
    for i, B in enumerate(noise.Bs):
        checks.append(_matrix_check(f"Sigma^B = Sigma^1 / B, B={B}",
                                    noise.Sigma1 / B, noise.cov[i],
                                    noise.se[i]))
    checks.append(_matrix_check(
        f"no replacement: x (n-B)/(n-1), B={noise.B_without}",
        noise.expected_without(), noise.cov_without, noise.se_without))

    sgd_exact, em_exact = stat.sgd_exact(), stat.em_exact()
    lang = stat.langevin_exact()
    flat = stat.eta_prime * stat.sigma2 / (2 * stat.h)
    for i, B in enumerate(stat.Bs):
        checks.append(_z_check(f"SGD var = exact law, B={B}",
                               sgd_exact[i:i + 1], stat.sgd_var[i:i + 1],
                               stat.sgd_se[i:i + 1], K_SE))
    for i, B in enumerate(stat.Bs):
        checks.append(_z_check(f"Langevin (Euler dt) var = exact, B={B}",
                               em_exact[i:i + 1], stat.em_var[i:i + 1],
                               stat.em_se[i:i + 1], K_SE))
    # eta sigma^2 / (2 B h) with eta = B eta' is eta' sigma^2 / (2 h) up
    # to the roundings of the two products and two quotients: 8 u.
    checks.append(check("Langevin var eta s^2/(2Bh) = eta' s^2/(2h)",
                        np.full(len(lang), flat), lang, 8 * U * flat))
    for i, B in enumerate(stat.Bs[1:], 1):
        checks.append(Check(f"Langevin path, B={B} = path, B={stat.Bs[0]}",
                            0.0, float(stat.path_diff[i]),
                            float(stat.path_diff[i]), stat.path_tol))

    for i, B in enumerate(ls.Bs):
        checks.append(_matrix_check(f"SGD on data: cov = exact law, B={B}",
                                    ls.exact[i], ls.cov[i], ls.cov_se[i]))
    err = ls.mandt_error()
    checks.append(Check(
        f"Mandt et al. within {MANDT_TOLERANCE:.0%}, B={ls.Bs[0]} "
        f"(B eta' lam = {ls.Bs[0] * ls.eta_prime * ls.lam[-1]:.3f})",
        0.0, float(err[0]), float(err[0]), MANDT_TOLERANCE))

    # Table 1: the 1-D quadratic
    rows1 = []
    for i, B in enumerate(stat.Bs):
        rows1.append([f"{B}", f"{stat.etas[i]:.3g}",
                      f"{stat.etas[i] * stat.h:.3g}",
                      f"{sgd_exact[i]:.5f}",
                      f"{stat.sgd_var[i]:.5f} +- {stat.sgd_se[i]:.5f}",
                      f"{lang[i]:.5f}",
                      f"{stat.em_var[i]:.5f} +- {stat.em_se[i]:.5f}",
                      f"{sgd_exact[i] / lang[i]:.3f}"])
    table1 = _table(["B", "eta", "eta h", "SGD exact", "SGD simulated",
                     "Langevin", "Langevin sim. (dt)", "SGD / Lang."],
                    rows1)
    # Table 2: least squares
    rows2 = []
    for i, B in enumerate(ls.Bs):
        eta = ls.eta_prime * B
        rows2.append([f"{B}", f"{eta:.3g}", f"{eta * ls.lam[-1]:.3f}",
                      f"{ls.steps[i]}",
                      f"{np.trace(ls.mandt[i]):.5g}",
                      f"{np.trace(ls.exact[i]):.5g}",
                      f"{np.trace(ls.cov[i]):.5g}",
                      f"{err[i]:.3f}", f"{ls.exact_gap()[i]:.3f}"])
    table2 = _table(["B", "eta", "eta lam_max", "steps", "tr Mandt",
                     "tr exact", "tr simulated", "sim vs Mandt",
                     "exact vs Mandt"], rows2)

    p = noise.Sigma1.shape[0]
    text = [
        _para(f"Sigma^B, the covariance of the mean of B sampled "
              f"gradients, is Sigma^1~/~B: the B samples are "
              f"independent, so the B^2 cross terms of the product of "
              f"two sums have mean 0 and only the B diagonal terms "
              f"remain. Measured with batch_noise_cov on the "
              f"{noise.n}~per-sample gradients of the diabetes data at "
              f"phi~=~0 (section~B), {noise.n_batches} batches per B; "
              f"'analytic' and 'kernel' show the trace, the error is the "
              f"largest over the {p * (p + 1) // 2}~entries of the "
              f"{p}~x~{p} matrix and the trace. Batches of distinct rows "
              f"carry the finite-population factor (n~-~B)/(n~-~1)."),
        "",
        _para(f"So the Langevin model of SGD, Phi(t~+~dt)~=~Phi(t)~-~g~dt"
              f"~+~eps~sqrt(dt) with eps drawn from N(0,~eta~Sigma^B), has noise "
              f"eta~Sigma^1~/~B: with eta~=~B~eta' it is eta'~Sigma^1 at "
              f"every B, and the model depends on eta' alone (one SGD "
              f"step is dt~=~eta of model time: eta' per sample seen). "
              f"On the quadratic L~=~h~phi^2~/~2 with per-sample noise "
              f"sigma^2~=~{stat.sigma2:g}, h~=~{stat.h:g} and "
              f"eta'~=~{stat.eta_prime:g}, {stat.replicas} runs per B, "
              f"started at 0 and run until the variance has settled to "
              f"12~digits (SGD: {', '.join(map(str, stat.sgd_steps))} "
              f"steps; Langevin: time {stat.time:g} at dt~=~{stat.dt:g}):"),
        "",
        table1,
        "",
        _para(f"The Langevin variance eta~sigma^2~/~(2~B~h)~=~"
              f"{flat:g} is the same at every B, and its simulations, "
              f"from one seed, are one process: the paths of every B "
              f"agree to rounding ({stat.path_replicas}~paths of "
              f"{int(round(stat.time / stat.dt))}~steps). SGD's exact "
              f"variance eta~sigma^2~/~(B~h~(2~-~eta~h)) is that value "
              f"times 1~/~(1~-~eta~h~/~2): near it while "
              f"eta~h~=~B~eta'~h is small, then drifting away, "
              f"{sgd_exact[-1] / lang[-1]:.2f} times it at "
              f"B~=~{stat.Bs[-1]}; at eta~h~>=~2 SGD diverges. The "
              f"linear scaling rule eta~=~B~eta' holds while "
              f"B~eta'~lam_max~<<~1. Each simulation is checked against "
              f"the exact law of what it simulates, SGD's and the "
              f"Euler-Maruyama scheme's, within {K_SE:g}~standard "
              f"errors."),
        "",
        _para(f"On real data: SGD on the least-squares loss of the "
              f"diabetes data (features {', '.join(ls.features)}; "
              f"eigenvalues of H~=~X^T~X~/~n from {ls.lam[0]:.3f} to "
              f"{ls.lam[-1]:.3f}), eta'~=~{ls.eta_prime:g}, rows drawn "
              f"with replacement, {ls.replicas}~runs per B from the "
              f"optimum. The prediction of Mandt, Hoffman and Blei "
              f"(2017) is the Langevin model's stationary covariance "
              f"H~C~+~C~H~=~eta'~Sigma^1, Sigma^1 the covariance of the "
              f"per-sample gradients at the optimum: the same at every "
              f"B. 'tr' columns are traces; the errors are relative, "
              f"|C~-~C_Mandt|_F~/~|C_Mandt|_F:"),
        "",
        table2,
        "",
        _para("The simulated covariance agrees with the exact "
              "stationary covariance of SGD "
              "(sgd_least_squares_stationary_cov) at every B, so the "
              "growing gap to the prediction is the model's: it drops "
              "the discreteness of the steps and the part of the "
              "gradient noise that grows away from the optimum (terms "
              "of order eta, and of order eta / B times the per-sample "
              "curvature |x_r|^2), which is why the gap is already a "
              "few per cent at the smallest B."),
    ]
    return Section("E. The batch size in SGD and its Langevin model "
                   "(Problem 4)", checks, text)


# ---------------------------------------------------------------------------
# Figure

def plot_langevin_batch_size(stat, ls, path):
    """Stationary variance over B eta' h, the stationary laws at the
    smallest and largest B, and the least-squares gap over B."""
    from .report import _pyplot_free_figure

    fig = _pyplot_free_figure((15, 4.6))
    ax1, ax2, ax3 = fig.subplots(1, 3)
    flat = stat.eta_prime * stat.sigma2 / (2 * stat.h)
    x = stat.etas * stat.h
    line = np.geomspace(x.min() / 2, min(1.9, 1.3 * x.max()), 200)
    ax1.plot(line, 1 / (1 - line / 2), color="tab:blue", lw=1.5,
             label="SGD, exact: 1 / (1 - eta h / 2)")
    ax1.axhline(1.0, color="tab:red", lw=1.5,
                label="Langevin: eta sigma^2 / (2 B h), any B")
    ax1.errorbar(x, stat.sgd_var / flat, yerr=K_SE * stat.sgd_se / flat,
                 fmt="o", mfc="none", color="tab:blue",
                 label="SGD simulated")
    ax1.errorbar(x, stat.em_var / flat, yerr=K_SE * stat.em_se / flat,
                 fmt="s", mfc="none", color="tab:red",
                 label=f"Langevin simulated (dt = {stat.dt:g})")
    for xi, B in zip(x, stat.Bs):
        ax1.annotate(f"B = {B}", (xi, 1 / (1 - xi / 2)), xytext=(-6, 8),
                     textcoords="offset points", fontsize=8, ha="right")
    ax1.set(xscale="log", xlabel="eta h = B eta' h", ylabel="stationary variance / "
            "(eta' sigma^2 / 2h)",
            title=f"eta = B eta' (eta' = {stat.eta_prime:g}): "
                  "Langevin flat, SGD drifts up")
    ax1.legend(loc="upper left", fontsize=8)

    colors = {int(stat.Bs[0]): "tab:green", int(stat.Bs[-1]): "tab:purple"}
    sd = math.sqrt(flat)
    grid = np.linspace(-5 * sd, 5 * sd, 300)
    sgd_exact = stat.sgd_exact()
    for B, phi in stat.sgd_samples.items():
        i = int(np.flatnonzero(stat.Bs == B)[0])
        v = sgd_exact[i]
        ax2.hist(phi, bins=80, range=(grid[0], grid[-1]), density=True,
                 histtype="stepfilled", alpha=0.35, color=colors[B],
                 label=f"SGD, B = {B} (eta = {stat.etas[i]:g})")
        ax2.plot(grid, np.exp(-grid ** 2 / (2 * v)) / math.sqrt(
            2 * math.pi * v), color=colors[B], lw=1.5)
    ax2.plot(grid, np.exp(-grid ** 2 / (2 * flat)) / math.sqrt(
        2 * math.pi * flat), "k--", lw=1.2,
        label="Langevin N(0, eta' sigma^2 / 2h)")
    ax2.set(xlabel="phi", ylabel="density",
            title="Stationary laws: lines are the exact Gaussians")
    ax2.legend(loc="upper left", fontsize=8)

    xb = ls.eta_prime * ls.Bs * ls.lam[-1]
    err = ls.mandt_error()
    ax3.plot(xb, err, "o", mfc="none", ms=8, color="tab:blue",
             label="simulated SGD vs Mandt et al.")
    ax3.plot(xb, ls.exact_gap(), "x-", color="k", lw=1,
             label="exact SGD law vs Mandt et al.")
    ax3.axhline(MANDT_TOLERANCE, color="0.6", ls=":", lw=1,
                label=f"{MANDT_TOLERANCE:.0%}")
    for xi, e, B in zip(xb, err, ls.Bs):
        ax3.annotate(f"B = {B}", (xi, e), xytext=(6, -10),
                     textcoords="offset points", fontsize=8)
    ax3.set(xscale="log", yscale="log", xlabel="B eta' lam_max",
            ylabel="|C - C_Mandt|_F / |C_Mandt|_F",
            title="Diabetes data: the Langevin prediction's gap grows "
                  "with B")
    ax3.legend(loc="upper left", fontsize=8)
    fig.suptitle("SGD at batch size B with eta = B eta', and its "
                 "Langevin model (error bars: 5 standard errors)")
    fig.savefig(path, dpi=110)
