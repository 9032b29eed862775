"""``mse-divergence`` (study J): the affine GAN with the exact discriminator, where one MSE
step per iteration diverges above the threshold of :mod:`gandyn.solvers.affine_gan` and
exact least squares converges."""

from __future__ import annotations

from functools import partial
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..checkpoint import stage
from ..distributions import MAX_NODES, GaussianMixture, Normal
from ..errors import ConfigError
from ..games.js import NORMALISATIONS, ExactDiscriminator
from ..networks import AffineGenerator
from ..solvers.affine_gan import affine_gan_threshold
from ..solvers.gan_as_ode import GANAsODE, run_gan_as_ode
from . import memory, work
from .common import finite_or_none
from .registry import Experiment, Param, Result, RunOptions

MSE_DOC = """Affine GAN, exact discriminator: one MSE step diverges, least squares converges.

G(z) = a z + b, z ~ N(0, s²), ρ_d = N(0, 1), exact D*. Sweeps η = λε (ε fixed) on the
generic GAN-as-ODE algorithm: below η* = min(2/s², 4)/c (K = 1, linearisation in
gandyn.solvers.affine_gan) the iteration returns to (a, b) = (1/s, 0); above it, a settles
on a 2-cycle. The same Euler targets fitted by exact least squares converge for every η
and s tried.
"""

MSE_PARAMS: dict[str, Param] = {
    "eps": Param(0.25, "Euler step ε of the targets (fixed; η = λε sweeps λ)", positive=True),
    "eta_min": Param(0.5, "smallest η of the sweep", positive=True),
    "eta_max": Param(3.5, "largest η of the sweep", positive=True),
    "n_eta": Param(61, "η values in the sweep (the bifurcation diagram)", minimum=3),
    "latent_scale": Param(1.0, "latent std s of the main sweep", positive=True),
    "latent_scales": Param(
        [0.5, 0.8, 1.0, 1.25], "latent stds whose thresholds are found", positive=True
    ),
    "K": Param(1, "generator gradient steps per iteration", minimum=1),
    "normalisation": Param("v", "drift normalisation", choices=tuple(NORMALISATIONS)),
    "n_iter": Param(4000, "iterations per run", minimum=100),
    "perturbation": Param(
        1e-3, "initial offset of (s a, b) from the fixed point (1, 0)", positive=True
    ),
    "cycle_offset": Param(0.05, "the cycle is shown at η = threshold + offset", positive=True),
    "refine": Param(16, "points per refinement of the threshold bracket (two rounds)", minimum=2),
    "quadrature": Param(
        40, "Gauss–Hermite nodes for the latent and data expectations", minimum=2, maximum=MAX_NODES
    ),
}


def _check_mse(config: dict[str, Any]) -> None:
    if config["eta_min"] >= config["eta_max"]:
        raise ConfigError(
            f"eta_min: must be < eta_max = {config['eta_max']}, got {config['eta_min']}"
        )


def _affine_params(generator: AffineGenerator):
    return jnp.stack([generator.A[0, 0], generator.b[0]])


@eqx.filter_jit
def _affine_paths(template: GANAsODE, start: AffineGenerator, lrs, n_iter: int):
    """``(a, b)`` before each iteration and after the last: ``(len(lrs), n_iter + 1, 2)``."""

    def one(lr):
        algorithm = eqx.tree_at(lambda a: a.lr, template, lr)
        traj = run_gan_as_ode(algorithm, start, n_iter, record=_affine_params)
        last = _affine_params(traj.final.generator)[None]
        return jnp.concatenate([traj.diagnostics["record"], last])

    return jax.vmap(one)(lrs)


@eqx.filter_jit
def _affine_jacobians(template: GANAsODE, fixed_point, lrs):
    """Autodiff Jacobians ``(len(lrs), 2, 2)`` of one iteration at the fixed point."""

    def one(lr):
        algorithm = eqx.tree_at(lambda a: a.lr, template, lr)

        def step(p):
            gen = AffineGenerator(p[0].reshape(1, 1), p[1:])
            return _affine_params(algorithm.step(algorithm.init(gen))[0].generator)

        return jax.jacfwd(step)(fixed_point)

    return jax.vmap(one)(lrs)


class _AffineStudy:
    """Runs of the affine GAN for many η at once: batches of ``refine + 2`` learning rates
    (one compilation per fit), vmapped."""

    def __init__(self, config: dict[str, Any], scale: float, fit: str):
        self.config, self.scale = config, scale
        q = config["quadrature"]
        data, latent = GaussianMixture([0.0]), Normal(0.0, scale)
        self.template = GANAsODE(
            ExactDiscriminator(data, latent),
            latent.quadrature(q),
            data.quadrature(q),
            eps=config["eps"],
            lr=1.0,
            K=config["K"],
            fit=fit,
            normalisation=config["normalisation"],
        )
        delta = config["perturbation"]
        self.start = AffineGenerator([[(1 + delta) / scale]], [delta])
        self.batch = config["refine"] + 2

    def _batched(self, fn, etas) -> np.ndarray:
        lrs = np.atleast_1d(np.asarray(etas, dtype=float)) / self.config["eps"]
        padded = np.resize(lrs, -(-lrs.size // self.batch) * self.batch)
        chunks = [np.asarray(fn(jnp.asarray(c))) for c in padded.reshape(-1, self.batch)]
        return np.concatenate(chunks)[: lrs.size]

    def paths(self, etas) -> np.ndarray:
        """``(a, b)`` before each iteration and after the last: ``(len(etas), n_iter + 1, 2)``."""
        n_iter = self.config["n_iter"]
        return self._batched(
            lambda lrs: _affine_paths(self.template, self.start, lrs, n_iter), etas
        )

    def jacobian_radius(self, etas) -> np.ndarray:
        """Spectral radius of the autodiff Jacobian of one iteration at the fixed point."""
        fixed = jnp.array([1 / self.scale, 0.0])
        jac = self._batched(lambda lrs: _affine_jacobians(self.template, fixed, lrs), etas)
        return np.abs(np.linalg.eigvals(jac)).max(axis=1)

    def deviation(self, paths: np.ndarray) -> np.ndarray:
        """Distance of ``(|a| s, b)`` from the fixed point ``(1, 0)``."""
        return np.hypot(np.abs(paths[..., 0]) * self.scale - 1, paths[..., 1])

    def contracting(self, etas) -> np.ndarray:
        """Whether the deviation over the last two iterations is below half of that at
        mid-run (a decaying perturbation; a cycle or growth is not)."""
        dev = self.deviation(self.paths(etas))
        n = dev.shape[1] - 1
        mid = dev[:, n // 2 - 1 : n // 2 + 1].max(1)
        late = dev[:, -2:].max(1)
        return np.isfinite(late) & ((late < 1e-12) | (late < 0.5 * mid))

    def threshold(self, etas) -> tuple[float | None, float | None]:
        """First non-contracting η, refined twice inside its bracket; and the resolution."""
        etas = np.asarray(etas, dtype=float)
        ok = self.contracting(etas)
        if ok.all() or not ok[0]:
            return None, None
        for _ in range(2):
            i = int(np.argmin(ok))
            etas = np.linspace(etas[i - 1], etas[i], self.batch)
            ok = self.contracting(etas)
        i = int(np.argmin(ok))
        return 0.5 * float(etas[i - 1] + etas[i]), float(etas[1] - etas[0])


def _classify(study: _AffineStudy, paths: np.ndarray) -> np.ndarray:
    """0: converged to the fixed point, 1: 2-cycle, 2: anything else (higher period, chaos,
    divergence)."""
    dev = study.deviation(paths)
    converged = dev[:, -1] < 1e-8
    two = np.max(np.abs(paths[:, -1] - paths[:, -3]), axis=1) < 1e-8
    return np.where(converged, 0, np.where(two, 1, 2))


def _threshold(study: _AffineStudy, etas) -> dict[str, Any]:
    """:meth:`_AffineStudy.threshold` as arrays (NaN for None)."""
    found, resolution = study.threshold(etas)
    return {
        "eta": np.nan if found is None else found,
        "resolution": np.nan if resolution is None else resolution,
    }


def _lstsq(config: dict[str, Any], scale: float, etas) -> dict[str, Any]:
    """The least-squares fits at one latent scale: final deviations, the measured rate
    over iterations 40–80 and the path at the largest η."""
    study = _AffineStudy(config, scale, "lstsq")
    paths = study.paths(etas)
    dev = study.deviation(paths)
    rate = np.max((dev[:, 80] / dev[:, 40]) ** (1 / 40))
    return {"deviation_final": dev[:, -1], "rate": rate, "path": paths[-1]}


def run_mse(config: dict[str, Any], options: RunOptions) -> Result:
    spec = options.checkpoint
    c = NORMALISATIONS[config["normalisation"]]
    eps, K, scale = config["eps"], config["K"], config["latent_scale"]
    etas = np.linspace(config["eta_min"], config["eta_max"], config["n_eta"])
    study = _AffineStudy(config, scale, "gradient")
    late = stage(spec, "sweep", lambda: {"paths": study.paths(etas)[:, -16:]})["paths"]
    classes = _classify(study, late)
    found = stage(spec, "threshold", partial(_threshold, study, etas))
    threshold, resolution = finite_or_none(found["eta"]), finite_or_none(found["resolution"])
    linear = affine_gan_threshold(eps, scale, K, c)
    radii = stage(spec, "jacobian", lambda: {"radius": study.jacobian_radius(etas)})["radius"]
    crossing = int(np.argmax(radii >= 1)) if np.any(radii >= 1) else None
    jac_threshold = None
    if crossing:
        e0, e1, r0, r1 = etas[crossing - 1], etas[crossing], radii[crossing - 1], radii[crossing]
        jac_threshold = float(e0 + (1 - r0) * (e1 - e0) / (r1 - r0))

    summary: dict[str, Any] = {
        "status": "ok",
        "eta_threshold": threshold,
        "eta_threshold_resolution": resolution,
        "eta_threshold_linear": linear,
        "eta_threshold_jacobian": jac_threshold,
    }
    arrays = {
        "etas": etas,
        "classes": classes,
        "late_a": late[..., 0],
        "jacobian_radius": radii,
    }
    stable_path = stage(spec, "stable-path", lambda: {"path": study.paths(0.9 * linear)[0]})["path"]
    if threshold is not None:
        eta_c = threshold + config["cycle_offset"]
        cycle = stage(spec, "cycle", lambda: {"path": study.paths(eta_c)[0]})["path"]
        summary |= {
            "cycle_eta": eta_c,
            "cycle_values": sorted(float(v) for v in cycle[-2:, 0]),
            "cycle_b_max": float(np.abs(cycle[-2:, 1]).max()),
            "cycle_closure": float(np.abs(cycle[-1] - cycle[-3]).max()),
            "cycle_is_period_two": bool(_classify(study, cycle[None])[0] == 1),
        }
        arrays["cycle_path"] = cycle
    # Exact least squares on the same targets, every η and latent scale.
    ls_ok, ls_rates = [], []
    for s in sorted({scale, *config["latent_scales"]}):
        ls = stage(spec, f"lstsq-scale{s!r}", partial(_lstsq, config, s, etas))
        ls_ok.append(bool(np.all(ls["deviation_final"] < 1e-8)))
        ls_rates.append(float(ls["rate"]))
        if s == scale:
            arrays["ls_path"] = ls["path"]
    mu_ls = max(abs(1 - c * eps), abs(1 - 0.5 * c * eps))
    summary |= {
        "ls_converges": all(ls_ok),
        "ls_rate_measured": max(ls_rates),
        "ls_rate_linear": mu_ls,
    }
    # Thresholds for every latent scale.
    by_scale, by_scale_linear = [], []
    for s in config["latent_scales"]:
        theory = affine_gan_threshold(eps, s, K, c)
        bracket = np.linspace(0.5 * theory, 1.5 * theory, config["refine"] + 2)
        study_s = _AffineStudy(config, s, "gradient")
        found_s = stage(spec, f"threshold-scale{s!r}", partial(_threshold, study_s, bracket))
        by_scale.append(finite_or_none(found_s["eta"]))
        by_scale_linear.append(theory)
    summary |= {
        "latent_scales": list(config["latent_scales"]),
        "eta_threshold_by_scale": by_scale,
        "eta_threshold_linear_by_scale": by_scale_linear,
    }
    arrays["stable_path"] = stable_path
    return Result("mse-divergence", config, summary, arrays)


def _mse_memory(config: dict[str, Any]) -> int:
    """Peak bytes: paths ``(a, b)`` at every iteration of a sweep over the ``n_eta`` steps:
    about five copies (its chunks, their concatenation, the deviations computed from
    them), and three of one vmapped batch of ``refine + 2`` runs on the device (recorded,
    concatenated, copied to the host)."""
    length = 2 * (config["n_iter"] + 1)
    batch = config["refine"] + 2
    sweep = -(-config["n_eta"] // batch) * batch  # padded to whole batches
    return length * (5 * sweep + 3 * batch) * memory.itemsize()


def _mse_work(config: dict[str, Any]) -> float:
    """Operations: every run of the η sweep and of the threshold bisections (two rounds of
    ``refine + 2`` runs per latent scale): iterations × K × quadrature² (data × latent
    expectations)."""
    runs = config["n_eta"] + 2 * (config["refine"] + 2) * (len(config["latent_scales"]) + 1)
    return float(runs) * config["n_iter"] * config["K"] * config["quadrature"] ** 2 * work.PAIR


MSE_DIVERGENCE = Experiment(
    "mse-divergence",
    MSE_DOC,
    MSE_PARAMS,
    run_mse,
    check=_check_mse,
    memory=_mse_memory,
    size_keys=("n_eta", "n_iter"),
    work=_mse_work,
    time_keys=("n_eta", "n_iter", "K", "quadrature"),
)
