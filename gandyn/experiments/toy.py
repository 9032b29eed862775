"""Toy models of study W (DESIGN §1.4): T1 ``toy-shift-linear`` and T2 ``neuron-bimodal-1d``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import diagnostics as dg
from ..distributions import Normal, Uniform
from ..games import MeanFieldGame
from ..measure import sample_measure
from ..solvers import MeanFieldProblem
from ..units import LinearCritic, NeuronCritic, NeuronUnit, ShiftUnit
from .common import (
    check_common,
    clip_params,
    constraint_from_config,
    data_law,
    finite_or_none,
    integrate,
    result_from,
    run_params,
)
from .common import data_params as _data_params
from .registry import Experiment, Param, Result, RunOptions, register

T1_DOC = """Toy T1: shift generator against a linear critic in 1-D (DESIGN §1.4).

G(z) = z + m, D(x) = ω̄ x, P* a bimodal Gaussian mixture with mean x̄*. With y = m − x̄*,
off the walls (y, ω̄) is a harmonic oscillator of period 2π/√λ with invariant
H = λ y² + ω̄². Clipping at ±c stops critic particles on the walls, merges them (blow-up
of the critic density) and the motion settles on periodic orbits: no convergence.
"""

T1_PARAMS: dict[str, Param] = {
    **clip_params(c=0.5),
    "lam": Param(1.0, "critic/generator time-scale ratio λ", positive=True),
    **_data_params(),
    "gen_init_mean": Param(1.0, "mean of the initial generator particles (normal law)"),
    "gen_init_std": Param(0.5, "std of the initial generator particles", positive=True),
    "critic_init_low": Param(-0.1, "initial critic particles ~ Uniform[low, high]"),
    "critic_init_high": Param(0.1, "initial critic particles ~ Uniform[low, high]"),
    "init_sampling": Param(
        "quantile",
        "initial particles: i.i.d. draws or quantiles (k+½)/n",
        choices=("random", "quantile"),
    ),
    "n_gen": Param(64, "generator particles N", minimum=1),
    "n_critic": Param(64, "critic particles M", minimum=1),
    **run_params(t1=40.0),
}


def _build(config: dict[str, Any], generator, critic, gen_law, critic_law):
    latent_dim = generator.latent_dim
    game = MeanFieldGame(
        generator,
        critic,
        data_law(config).quadrature(config["quadrature"]),
        Normal(np.zeros(latent_dim), 1.0).quadrature(config["quadrature"]),
        lam=config["lam"],
    )
    key_gen, key_critic = jax.random.split(jax.random.key(config["seed"]))
    method = config["init_sampling"]
    gen = sample_measure(key_gen, gen_law, config["n_gen"], method)
    critic_measure = sample_measure(key_critic, critic_law, config["n_critic"], method)
    return MeanFieldProblem.from_measures(game, constraint_from_config(config), gen, critic_measure)


def _late(ts: np.ndarray) -> float:
    return 0.5 * float(ts[-1])


def _wall_summary(traj) -> dict[str, Any]:
    diag = traj.diagnostics
    return {
        "first_contact_time": finite_or_none(dg.first_time(traj.ts, diag["wall_fraction"] > 0)),
        "wall_fraction_final": float(diag["wall_fraction"][-1]),
        "wall_fraction_max": float(jnp.max(diag["wall_fraction"])),
        "critic_max_abs": float(diag["critic_max_abs"][-1]),
        "critic_support_width_final": float(diag["critic_support_width"][-1]),
        "value_final": float(diag["value"][-1]),
        "data_distance_final": float(diag["data_distance"][-1]),
    }


def run_t1(config: dict[str, Any], options: RunOptions) -> Result:
    problem, state = _build(
        config,
        ShiftUnit(1),
        LinearCritic(1),
        Normal(config["gen_init_mean"], config["gen_init_std"]),
        Uniform(config["critic_init_low"], config["critic_init_high"]),
    )
    diagnostics = dg.default_diagnostics() | {"invariant": dg.toy_invariant}
    traj = integrate(config, options, problem, state, diagnostics)
    done = traj.completed()
    diag = done.diagnostics
    y = diag["generated_mean"][:, 0] - float(problem.game.data.mean()[0])
    omega_bar = diag["critic_mean"][:, 0]
    period = dg.period(done.ts, omega_bar, _late(np.asarray(done.ts)))
    phase = jnp.stack([y, omega_bar], axis=1)
    summary = _wall_summary(done) | {
        "period": finite_or_none(period),
        "period_free": 2 * math.pi / math.sqrt(config["lam"]),
        "orbit_closure_error": finite_or_none(dg.orbit_closure_error(done.ts, phase, period)),
        "invariant_initial": float(diag["invariant"][0]),
        "invariant_final": float(diag["invariant"][-1]),
        "final_y": float(y[-1]),
        "final_critic_mean": float(omega_bar[-1]),
    }
    return result_from("toy-shift-linear", config, traj, summary)


T2_DOC = """Toy T2: tanh neuron generator against a tanh neuron critic in 1-D, bimodal data.

G(z) = ∫ a σ(w z + b) dμ, D(x) = ∫ α σ(β x + b') dν, critic parameters clipped to
[−c, c]³. No closed form: shows critic parameters piling on the walls of the box (the
blow-up of a real network's parameter density) and a generated law that keeps moving
instead of converging to the data.
"""

T2_PARAMS: dict[str, Param] = {
    **clip_params(c=1.0),
    "lam": Param(1.0, "critic/generator time-scale ratio λ", positive=True),
    **_data_params(means=(-1.5, 1.5), std=0.4),
    "activation": Param(
        "tanh",
        "activation of both units",
        choices=("tanh", "relu", "sigmoid", "softplus", "identity"),
    ),
    "gen_init_std": Param(1.0, "generator parameters (a, w, b) ~ N(0, std²)", positive=True),
    "critic_init_low": Param(-0.5, "critic parameters (α, β, b) ~ Uniform[low, high]³"),
    "critic_init_high": Param(0.5, "critic parameters (α, β, b) ~ Uniform[low, high]³"),
    "init_sampling": Param(
        "random",
        "initial particles: i.i.d. draws or Latin-hypercube quantiles",
        choices=("random", "quantile"),
    ),
    "n_gen": Param(128, "generator neurons N", minimum=1),
    "n_critic": Param(128, "critic neurons M", minimum=1),
    **run_params(t1=30.0, quadrature=24),
}


def run_t2(config: dict[str, Any], options: RunOptions) -> Result:
    act = config["activation"]
    problem, state = _build(
        config,
        NeuronUnit(1, 1, act),
        NeuronCritic(1, act),
        Normal(np.zeros(3), config["gen_init_std"]),
        Uniform(np.full(3, config["critic_init_low"]), config["critic_init_high"]),
    )
    traj = integrate(config, options, problem, state)
    done = traj.completed()
    diag = done.diagnostics
    late = np.asarray(done.ts) >= _late(np.asarray(done.ts))
    distance = np.asarray(diag["data_distance"])[late]
    summary = _wall_summary(done) | {
        "data_distance_initial": float(diag["data_distance"][0]),
        "data_distance_late_min": float(distance.min()),
        "data_distance_late_max": float(distance.max()),
        "generated_mean_final": float(diag["generated_mean"][-1, 0]),
        "generated_variance_final": float(diag["generated_variance"][-1, 0]),
    }
    return result_from("neuron-bimodal-1d", config, traj, summary)


def plot(result: Result, out: Path) -> list[Path]:
    from ..plotting.toy import plot_toy

    return plot_toy(result, out)


TOY_SHIFT_LINEAR = register(
    Experiment("toy-shift-linear", T1_DOC, T1_PARAMS, run_t1, plot, check=check_common)
)
NEURON_BIMODAL_1D = register(
    Experiment("neuron-bimodal-1d", T2_DOC, T2_PARAMS, run_t2, plot, check=check_common)
)
