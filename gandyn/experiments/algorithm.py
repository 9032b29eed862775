"""Experiment ``mean-field-vs-sgd``: the literal WGAN algorithm beside its mean-field limit."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import diagnostics as dg
from ..distributions import Normal
from ..errors import ConfigError
from ..games import MeanFieldProblem, MeanFieldState
from ..solvers import Trajectory, save_grid, simulate
from ..solvers.algorithm import FullBatch, Minibatch, Simultaneous, WGANAlgorithm, train_wgan
from . import work
from .choices import ACTIVATIONS, CLIP_ORDERS, OPTIMIZERS, UPDATES
from .common import (
    check_common,
    clip_params,
    data_law,
    data_params as _data_params,
    estimate_memory,
    finite_or_none,
    integrate,
    recorded_size,
    run_params,
    trajectory_arrays,
)
from .registry import Experiment, Param, Result, RunOptions
from .toy import build_t1, build_t2, t1_laws, t2_laws

BUILDERS = {"toy-shift-linear": build_t1, "neuron-bimodal-1d": build_t2}
LAWS = {"toy-shift-linear": t1_laws, "neuron-bimodal-1d": t2_laws}
OBSERVABLES = ("value", "generated_mean", "generated_variance", "critic_mean", "wall_fraction")
CONTINUOUS = OBSERVABLES[:4]
"""Observables continuous in the state: their summed gap gives the headline slopes."""

DOC = """The WGAN algorithm at finite width and step beside its mean-field ODE (DESIGN §1.5).

Runs the ODE once (reference_width particles at the quantiles of the initial laws) and the
algorithm (a) at each width N = M in `widths` from i.i.d. initial particles, step
width_eta, and (b) from the reference's own initial particles at each step η in `etas`;
`seeds` seeds each, vmapped; both sweeps use batch_size. The gap of an observable is the
time average over [0, t1] of |algorithm − ODE| (L1 in time: a jump shifted by O(η) would
keep a sup gap at O(1)). The headline gap sums F, the generated mean and variance and the
critic mean; its log-log slopes should be −1/2 in N and +1 (full batch) or +1/2 (minibatch
sgd) in η, until the width sweep meets the floor of its step. The critic wall fraction is
reported alone: it is discontinuous in the state, and under minibatch noise an atom stuck
on a wall flickers off it whenever a noisy step points inward, so at a fixed batch size its
gap does not vanish as η → 0. Also checks that full-batch simultaneous sgd with one critic
step is projected Euler (max difference of the final states).
"""


PARAMS: dict[str, Param] = {
    "model": Param(
        "toy-shift-linear",
        "toy model (their keys below; defaults are T1's)",
        choices=tuple(BUILDERS),
    ),
    **clip_params(c=0.5),
    "lam": Param(1.0, "λ = critic_steps·η_D/η_G (fixes the critic step η_D)", positive=True),
    **_data_params(),
    "gen_init_mean": Param(1.0, "T1: mean of the initial generator particles (normal law)"),
    "gen_init_std": Param(
        0.5, "std of the initial generator particles (T2: of a, w, b)", positive=True
    ),
    "critic_init_low": Param(-0.1, "initial critic particles ~ Uniform[low, high]^q"),
    "critic_init_high": Param(0.1, "initial critic particles ~ Uniform[low, high]^q"),
    "activation": Param(
        "tanh",
        "T2: activation of both units",
        choices=tuple(ACTIVATIONS),
    ),
    **run_params(solver="euler", dt=0.001, t1=4.5, n_snapshots=10, quadrature=16),
    "reference_width": Param(1024, "particles N = M of the reference ODE", minimum=1),
    "widths": Param([16, 64, 256, 1024], "algorithm widths N = M (width sweep)", minimum=1),
    "width_eta": Param(0.005, "generator step η_G of the width sweep", positive=True),
    "etas": Param([0.1, 0.05, 0.025, 0.0125], "generator steps η_G (step sweep)", positive=True),
    "seeds": Param(16, "seeds per width and per step (vmapped)", minimum=1),
    "batch_size": Param(
        0, "minibatch size for P* and γ; 0 = full batch on the fixed quadrature", minimum=0
    ),
    "batch_source": Param(
        "quadrature",
        "minibatches drawn from the ODE's quadrature rules or i.i.d. from the laws",
        choices=("quadrature", "law"),
    ),
    "replace": Param(True, "sample the quadrature rules with replacement"),
    "critic_steps": Param(1, "critic steps per generator step (n_critic)", minimum=1),
    "updates": Param("alternating", "update order", choices=tuple(UPDATES)),
    "clip_order": Param(
        "after", "clip after each critic step or before it", choices=tuple(CLIP_ORDERS)
    ),
    "optimizer": Param(
        "sgd", "optax optimizer fed the mean-field gradients", choices=tuple(OPTIMIZERS)
    ),
}


def _multiple(t1: float, step: float) -> bool:
    n = t1 / step
    return n >= 1 and abs(n - round(n)) <= 1e-6 * n


def check(config: dict[str, Any]) -> None:
    check_common(config)
    t1 = config["t1"]
    for key, steps in (("width_eta", [config["width_eta"]]), ("etas", config["etas"])):
        for step in steps:
            if not _multiple(t1, step):
                raise ConfigError(f"{key}: t1 = {t1} must be a multiple of every step, got {step}")
    if config["batch_size"] > 0 and not config["replace"]:
        if config["batch_source"] == "law":
            raise ConfigError("replace: false samples a finite set; needs batch_source quadrature")
        data_size = len(config["data_means"]) * config["quadrature"]
        smallest = min(data_size, config["quadrature"])
        if config["batch_size"] > smallest:
            raise ConfigError(
                f"batch_size: {config['batch_size']} exceeds the {smallest} points of the "
                f"quadrature sets (data {data_size}, latent {config['quadrature']}) sampled "
                "without replacement; use replace: true or a smaller batch"
            )


def _reference(config: dict[str, Any]) -> tuple[MeanFieldProblem, MeanFieldState]:
    """The problem at ``reference_width`` and its initial state: quantiles of the laws."""
    width = config["reference_width"]
    sized = config | {"n_gen": width, "n_critic": width, "init_sampling": "quantile"}
    return BUILDERS[config["model"]](sized)


def _resized(problem: MeanFieldProblem, width: int) -> MeanFieldProblem:
    """The same game and constraint with ``N = M = width`` uniformly weighted particles."""
    weights = jnp.full(width, 1.0 / width, problem.generator_weights.dtype)
    return MeanFieldProblem(problem.game, problem.constraint, weights, weights)


@eqx.filter_jit
def _random_states(problem: MeanFieldProblem, gen_law, critic_law, width: int, keys):
    """i.i.d. initial particles of width ``width``, one state per key ``(S,)``."""

    def draw(key):
        key_gen, key_critic = jax.random.split(key)
        critic = problem.constraint.to_state(critic_law.sample(key_critic, width))
        return MeanFieldState(gen_law.sample(key_gen, width), critic)

    return jax.vmap(draw)(keys)


def _algorithm(config: dict[str, Any], eta: float) -> WGANAlgorithm:
    size = config["batch_size"]
    if size == 0:
        batches = FullBatch()
    elif config["batch_source"] == "law":
        latent = Normal(np.zeros(1), 1.0)
        batches = Minibatch(size, data_law=data_law(config), latent_law=latent)
    else:
        batches = Minibatch(size, replace=config["replace"])
    return WGANAlgorithm(
        eta,
        n_critic=config["critic_steps"],
        updates=UPDATES[config["updates"]],
        clip=CLIP_ORDERS[config["clip_order"]],
        optimizer=OPTIMIZERS[config["optimizer"]],
        batches=batches,
    )


def _seed_keys(config: dict[str, Any], salt: int) -> jax.Array:
    return jax.random.split(
        jax.random.fold_in(jax.random.key(config["seed"]), salt), config["seeds"]
    )


def _observed() -> dict:
    """The diagnostics whose gaps are measured (recorded on both paths)."""
    return {name: fn for name, fn in dg.default_diagnostics().items() if name in OBSERVABLES}


def _train_seeds(config, problem, states, algorithm, keys, snapshot_ts, options, part):
    """``train_wgan`` over seeds (initial states batched or shared, keys batched),
    checkpointed in the sub-folder ``part``; Ctrl-C propagates."""
    runs = train_wgan(
        problem,
        states,
        algorithm,
        t1=config["t1"],
        key=keys,
        snapshot_ts=snapshot_ts,
        diagnostics=_observed(),
        batched=True,
        checkpoint=None if options.checkpoint is None else options.checkpoint.within(part),
        progress=options.progress,
    )
    if runs.interrupted:
        raise KeyboardInterrupt
    return runs


def observable_gaps(reference: Trajectory, runs: Trajectory) -> np.ndarray:
    """``(seeds, observables)``: time average over the reference's save times of
    ``|run − reference|`` (summed over components), the runs (batched over seeds, on one
    time grid) linearly interpolated onto the reference's times."""
    ts, run_ts = np.asarray(reference.ts), np.asarray(runs.ts[0])
    right = np.clip(np.searchsorted(run_ts, ts), 1, len(run_ts) - 1)
    frac = ((ts - run_ts[right - 1]) / (run_ts[right] - run_ts[right - 1]))[:, None]
    gaps = []
    for name in OBSERVABLES:
        ref = np.asarray(reference.diagnostics[name]).reshape(len(ts), -1)
        run = np.asarray(runs.diagnostics[name])
        run = run.reshape(run.shape[0], len(run_ts), -1)
        interp = (1 - frac) * run[:, right - 1] + frac * run[:, right]
        gaps.append(np.mean(np.sum(np.abs(interp - ref), axis=2), axis=1))
    return np.stack(gaps, axis=1)


def fit_slope(x, gaps) -> tuple[float, float]:
    """Least-squares slope of ``log mean gap`` on ``log x`` and its 95% half-width.

    ``gaps``: ``(points, seeds)``. The standard error adds the seeds' sampling error of
    each point (delta method: ``var log ḡ ≈ var g / (S ḡ²)``) propagated through the
    least-squares weights, and the lack of fit (residual variance, with ≥ 3 points).
    """
    gaps = np.asarray(gaps, dtype=float)
    mean = gaps.mean(axis=1)
    if np.any(~np.isfinite(mean)) or np.any(mean <= 0) or len(x) < 2:
        return float("nan"), float("nan")
    lx, ly = np.log(np.asarray(x, dtype=float)), np.log(mean)
    dx = lx - lx.mean()
    sxx = dx @ dx
    slope = dx @ ly / sxx
    seeds = gaps.shape[1]
    var_log = gaps.var(axis=1, ddof=1) / (seeds * mean**2) if seeds > 1 else np.zeros_like(mean)
    var = (dx**2) @ var_log / sxx**2
    if len(x) > 2:
        residual = ly - ly.mean() - slope * dx
        var += residual @ residual / (len(x) - 2) / sxx
    return float(slope), float(1.96 * np.sqrt(var))


def _nonfinite(label: str, runs: Trajectory) -> str | None:
    """Which seeds of ``runs`` (batched over seeds) went non-finite, when, and what first:
    the particles of a state that stopped the run, or the observables recorded (an
    overflowing product of finite particles) before it stopped."""
    ts, final_t = np.asarray(runs.ts), np.asarray(runs.final_t)
    stopped = final_t < ts[:, -1]
    recorded = ts < np.where(stopped, final_t, np.inf)[:, None]  # (seeds, T) saves made
    broken = {
        name: recorded & ~np.isfinite(np.asarray(v).reshape(*ts.shape, -1)).all(axis=2)
        for name, v in runs.diagnostics.items()
    }
    any_broken = np.any(list(broken.values()), axis=0) if broken else np.zeros_like(recorded)
    first = np.where(
        any_broken.any(axis=1), ts[np.arange(len(ts)), any_broken.argmax(axis=1)], np.inf
    )
    when = np.where(stopped, np.minimum(final_t, first), first)
    bad = np.isfinite(when)
    if not bad.any():
        return None
    seed = int(np.argmin(when))
    where = []
    for name in ("generator", "critic"):
        rows = ~np.all(np.isfinite(np.asarray(getattr(runs.final, name)[seed])), axis=1)
        if stopped[seed] and rows.any():
            where.append(f"{name} particles {np.flatnonzero(rows)[:8].tolist()}")
    names = [name for name, b in broken.items() if b[seed].any()]
    if names:
        where.append(f"observables {', '.join(names)}")
    return (
        f"{label}: {int(bad.sum())} of {bad.size} run(s) non-finite; seed {seed} at "
        f"t = {float(when[seed]):.6g} ({', '.join(where)})"
    )


def _one(trajectory: Trajectory) -> Trajectory:
    """An unbatched trajectory as a batch of one seed."""
    return jax.tree.map(lambda leaf: leaf[None], trajectory)


def run(config: dict[str, Any], options: RunOptions) -> Result:
    t1 = config["t1"]
    snapshot_ts = np.linspace(0.0, t1, config["n_snapshots"])
    problem, state = _reference(config)
    spec = options.checkpoint
    reference = integrate(
        config,
        replace(options, checkpoint=None if spec is None else spec.within("reference")),
        problem,
        state,
        _observed(),
    )
    if reference.interrupted:
        raise KeyboardInterrupt
    gen_law, critic_law = LAWS[config["model"]](config)
    messages = [reference.failure_report() or _nonfinite("reference ODE", _one(reference))]

    widths, etas = config["widths"], config["etas"]
    width_gaps, width_runs = [], None
    for i, width in enumerate(widths):
        problem_w = _resized(problem, width)
        keys = _seed_keys(config, 2 * i)
        states = _random_states(problem_w, gen_law, critic_law, width, keys)
        algorithm = _algorithm(config, config["width_eta"])
        keys = _seed_keys(config, 2 * i + 1)
        width_runs = _train_seeds(
            config, problem_w, states, algorithm, keys, snapshot_ts, options, f"width-{width}"
        )
        width_gaps.append(observable_gaps(reference, width_runs))
        messages.append(_nonfinite(f"width {width}", width_runs))

    stochastic = config["batch_size"] > 0
    eta_gaps = []
    for j, eta in enumerate(etas):
        keys = _seed_keys(config, 1000 + j)[: config["seeds"] if stochastic else 1]
        algorithm = _algorithm(config, eta)
        runs = _train_seeds(
            config, problem, state, algorithm, keys, snapshot_ts, options, f"eta-{j}"
        )
        eta_gaps.append(observable_gaps(reference, runs))
        messages.append(_nonfinite(f"eta {eta}", runs))

    # projected Euler at the reference's step: the reference itself when it is Euler
    euler = reference
    if config["solver"] != "euler":
        euler = simulate(
            problem, state, t1=t1, dt=config["dt"], snapshot_ts=snapshot_ts, diagnostics=_observed()
        )
        messages.append(euler.failure_report())
    plain = WGANAlgorithm(config["dt"], updates=Simultaneous())
    literal = _train_seeds(
        config, problem, state, plain, jax.random.key(0)[None], (), options, "literal"
    )
    messages.append(_nonfinite("projected-Euler sgd", literal))
    equivalence = max(
        float(jnp.max(jnp.abs(euler.final.generator - literal.final.generator[0]))),
        float(jnp.max(jnp.abs(euler.final.critic - literal.final.critic[0]))),
    )

    gap_w = np.stack(width_gaps)  # (widths, seeds, observables)
    gap_e = np.stack(eta_gaps)  # (etas, seeds', observables)
    headline = [OBSERVABLES.index(name) for name in CONTINUOUS]
    total_w, total_e = gap_w[..., headline].sum(axis=2), gap_e[..., headline].sum(axis=2)
    slope_w, ci_w = fit_slope(widths, total_w)
    slope_e, ci_e = fit_slope(etas, total_e)
    summary: dict[str, Any] = {
        "slope_width": finite_or_none(slope_w),
        "slope_width_ci95": finite_or_none(ci_w),
        "slope_eta": finite_or_none(slope_e),
        "slope_eta_ci95": finite_or_none(ci_e),
        "slope_eta_expected": 0.5 if stochastic else 1.0,
        "gap_full_batch_vs_projected_euler": finite_or_none(equivalence),
        "gap_largest_width": finite_or_none(total_w[-1].mean()),
        "gap_smallest_eta": finite_or_none(total_e[-1].mean()),
    }
    round_off = 100 * np.finfo(gap_w.dtype).eps  # an observable that never moves (T1's variance)
    for k, name in enumerate(OBSERVABLES):
        for sweep, x, gaps in (("width", widths, gap_w[..., k]), ("eta", etas, gap_e[..., k])):
            moved = np.max(gaps.mean(axis=1)) > round_off
            summary[f"slope_{sweep}_{name}"] = (
                finite_or_none(fit_slope(x, gaps)[0]) if moved else None
            )

    assert width_runs is not None
    arrays = trajectory_arrays(reference) | {
        "widths": np.asarray(widths),
        "etas": np.asarray(etas),
        "gap_width": gap_w,
        "gap_eta": gap_e,
        "gap_width_total": total_w,
        "gap_eta_total": total_e,
        "width_run_ts": np.asarray(width_runs.ts[0]),
        **{
            f"width_run_diag_{name}": np.asarray(width_runs.diagnostics[name][0])
            for name in OBSERVABLES
        },
        "width_run_snapshot_critic": np.asarray(width_runs.snapshots.critic[0]),
    }
    problems = [m for m in messages if m is not None]
    status = "ok" if not problems else "nonfinite"
    return Result(
        experiment="mean-field-vs-sgd",
        config=config,
        summary={"status": status} | summary,
        trajectory=arrays,
        status=status,
        message="; ".join(problems) or None,
    )


def optimizer_slots(optimizer: optax.GradientTransformation) -> int:
    """Parameter-sized arrays in ``optimizer``'s state (plain gradient 0, RMSProp 1, Adam 2),
    counted from the state it builds for a probe parameter."""
    probe = jax.ShapeDtypeStruct((7,), jnp.float32)
    state = jax.eval_shape(optimizer.init, probe)
    return sum(leaf.shape == probe.shape for leaf in jax.tree.leaves(state))


def _steps_on(times: np.ndarray, eta: float) -> int:
    """Distinct steps of the grid ``k eta`` the times round to (as in ``train_wgan``)."""
    return np.unique(np.round(np.asarray(times) / eta)).size


def memory_estimate(config: dict[str, Any]) -> int:
    """Peak bytes: the reference ODE (:func:`estimate_memory`), kept throughout, plus the
    largest training phase: ``seeds`` copies of the state at a width with their optimizer
    states, the per-node tables of the objective's gradient and of the diagnostics (about
    half the quadrature nodes, or of the two minibatches if more, per parameter),
    snapshots and diagnostics, beside the previous width's results."""
    problem, state = jax.eval_shape(lambda: _reference(config))
    observed = _observed()
    per_save = recorded_size(problem, state, observed)
    params = state.generator.shape[1] + state.critic.shape[1]
    game = problem.game
    nodes = max(game.data.size + game.latent.size, 2 * config["batch_size"])
    t1 = config["t1"]
    snapshot_ts = np.concatenate([[0.0, t1], np.linspace(0.0, t1, config["n_snapshots"])])
    slots = optimizer_slots(OPTIMIZERS[config["optimizer"]])

    def training(width: int, seeds: int, eta: float) -> tuple[int, int]:
        """Elements held while training (peak) and kept afterwards (results)."""
        weights = seeds * width * params
        kept = weights * (_steps_on(snapshot_ts, eta) + 1)
        kept += seeds * len(save_grid(0.0, t1, eta)) * per_save
        return kept + weights * (nodes // 2 + 24 + 2 * slots), kept

    reference_width = config["reference_width"]
    phases, previous = [], 0
    for width in config["widths"]:
        peak, kept = training(width, config["seeds"], config["width_eta"])
        phases.append(peak + previous)
        previous = kept
    eta_seeds = config["seeds"] if config["batch_size"] else 1
    phases += [training(reference_width, eta_seeds, eta)[0] for eta in config["etas"]]
    phases.append(training(reference_width, 1, config["dt"])[0])
    itemsize = state.generator.dtype.itemsize
    return estimate_memory(problem, state, config, observed) + max(phases) * itemsize


def work_estimate(config: dict[str, Any]) -> float:
    """Operations (:mod:`~gandyn.experiments.work`): the reference ODE, then every training
    run: per generator step ``critic_steps + 1`` gradient evaluations of both players over
    the quadrature (or two minibatches)."""
    nodes = (len(config["data_means"]) + 1) * config["quadrature"]
    if config["batch_size"]:
        nodes = min(nodes, 2 * config["batch_size"])
    t1, per_step = config["t1"], (config["critic_steps"] + 1) * nodes * work.PAIR

    def training(width: int, seeds: int, eta: float) -> float:
        return seeds * (t1 / eta) * 2 * width * per_step

    reference = config["reference_width"]
    total = work.particle_ode(config | {"n_gen": reference, "n_critic": reference})
    total += sum(training(w, config["seeds"], config["width_eta"]) for w in config["widths"])
    eta_seeds = config["seeds"] if config["batch_size"] else 1
    total += sum(training(reference, eta_seeds, eta) for eta in config["etas"])
    return total + training(reference, 1, config["dt"])


MEAN_FIELD_VS_SGD = Experiment(
    "mean-field-vs-sgd",
    DOC,
    PARAMS,
    run,
    check=check,
    memory=memory_estimate,
    size_keys=("reference_width", "widths"),
    work=work_estimate,
    time_keys=("reference_width", "widths", "quadrature", "critic_steps"),
)
