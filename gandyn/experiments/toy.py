"""Toy models of study W (DESIGN §1.4): T1 ``toy-shift-linear`` and T2 ``neuron-bimodal-1d``."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import diagnostics as dg
from ..distributions import Normal, Uniform
from ..games import MeanFieldGame, MeanFieldProblem
from ..measure import sample_measure
from ..solvers.outcome import MAX_SAVES
from ..units import LinearCritic, NeuronCritic, NeuronUnit, ShiftUnit
from .choices import ACTIVATIONS
from .common import (
    clip_params,
    constraint_from_config,
    data_law,
    data_params as _data_params,
    last_valid,
    particle_experiment,
    run_params,
    valid_saves,
    wall_outcomes,
)
from .registry import Param

T1_DOC = """Toy T1: shift generator against a linear critic in 1-D (DESIGN §1.4).

G(z) = z + m, D(x) = ω̄ x, P* a bimodal Gaussian mixture with mean x̄*. With y = m − x̄*,
off the walls (y, ω̄) is a harmonic oscillator of period 2π/√λ with invariant
H = λ y² + ω̄². Clipping at ±c stops critic particles on the walls, merges them (blow-up
of the critic density) and the motion settles on periodic orbits: no convergence.

The default solver is tsit5 (fixed steps dt, projected after each under hard clipping),
which keeps the invariant: at the defaults with clip=none, invariant_final differs from
invariant_initial by 7e-7 relative (float32 round-off; Euler's (1 + λdt²)^{t1/dt} drift
gave 1.49, Heun's 7e-6) and the period is 2π/√λ to 1e-6; with hard clipping the final
atom's orbit has H = c² to 2e-7.
"""

N_SAVES_DOC = (
    "most diagnostics saves, evenly spaced on the step grid (every step if there are fewer "
    "steps); first-time events are tracked at every step whatever this is"
)

T1_PARAMS: dict[str, Param] = {
    **clip_params(c=0.5, split=True),
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
    **run_params(solver="tsit5", t1=40.0),
    "n_saves": Param(MAX_SAVES, N_SAVES_DOC, minimum=2),
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


def _late_half(ts):
    return ts >= 0.5 * ts[-1]


def t1_laws(config: dict[str, Any]) -> tuple[Normal, Uniform]:
    """Laws of T1's initial generator and critic particles."""
    gen = Normal(config["gen_init_mean"], config["gen_init_std"])
    return gen, Uniform(config["critic_init_low"], config["critic_init_high"])


def build_t1(config: dict[str, Any]):
    return _build(config, ShiftUnit(1), LinearCritic(1), *t1_laws(config))


def summarise_t1(config: dict[str, Any], problem: MeanFieldProblem, traj) -> dict[str, Any]:
    """T1 outcomes: wall contact, period and orbit closure of (y, ω̄), the invariant H.
    Late-time outcomes are NaN when the run stopped early."""
    diag, ts = traj.diagnostics, traj.ts
    valid = valid_saves(traj)
    complete = jnp.all(valid)
    y = diag["generated_mean"][:, 0] - problem.game.data.mean()[0]
    omega_bar = diag["critic_mean"][:, 0]
    period = dg.period(ts, omega_bar, 0.5 * ts[-1])
    closure = dg.orbit_closure_error(ts, jnp.stack([y, omega_bar], axis=1), period)
    return wall_outcomes(problem, traj, valid) | {
        "period": jnp.where(complete, period, jnp.nan),
        "period_free": 2 * jnp.pi / jnp.sqrt(problem.game.lam),
        "orbit_closure_error": jnp.where(complete, closure, jnp.nan),
        "invariant_initial": diag["invariant"][0],
        "invariant_final": last_valid(diag["invariant"], valid),
        "final_y": last_valid(y, valid),
        "final_critic_mean": last_valid(omega_bar, valid),
    }


T2_DOC = """Toy T2: tanh neuron generator against a tanh neuron critic in 1-D, bimodal data.

G(z) = ∫ a σ(w z + b) dμ, D(x) = ∫ α σ(β x + b') dν, critic parameters clipped to
[−c, c]³. No closed form: shows critic parameters piling on the walls of the box (the
blow-up of a real network's parameter density) and a generated law that keeps moving
instead of converging to the data.
"""

T2_PARAMS: dict[str, Param] = {
    **clip_params(c=1.0, split=True),
    "lam": Param(1.0, "critic/generator time-scale ratio λ", positive=True),
    **_data_params(means=(-1.5, 1.5), std=0.4),
    "activation": Param(
        "tanh",
        "activation of both units",
        choices=tuple(ACTIVATIONS),
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
    "n_saves": Param(MAX_SAVES, N_SAVES_DOC, minimum=2),
}


def t2_laws(config: dict[str, Any]) -> tuple[Normal, Uniform]:
    """Laws of T2's initial neurons: ``(a, w, b)`` normal, ``(α, β, b')`` uniform."""
    gen = Normal(np.zeros(3), config["gen_init_std"])
    return gen, Uniform(jnp.full(3, config["critic_init_low"]), config["critic_init_high"])


def build_t2(config: dict[str, Any]):
    act = ACTIVATIONS[config["activation"]]
    return _build(config, NeuronUnit(1, 1, act), NeuronCritic(1, act), *t2_laws(config))


def summarise_t2(config: dict[str, Any], problem: MeanFieldProblem, traj) -> dict[str, Any]:
    """T2 outcomes: wall contact and the range of W1(generated, data) over the late half
    (a range that does not shrink is the non-convergence)."""
    diag = traj.diagnostics
    valid = valid_saves(traj)
    late = valid & _late_half(traj.ts)
    distance = diag["data_distance"]
    return wall_outcomes(problem, traj, valid) | {
        "data_distance_initial": distance[0],
        "data_distance_late_min": jnp.min(jnp.where(late, distance, jnp.inf)),
        "data_distance_late_max": jnp.max(jnp.where(late, distance, -jnp.inf)),
        "generated_mean_final": last_valid(diag["generated_mean"][:, 0], valid),
        "generated_variance_final": last_valid(diag["generated_variance"][:, 0], valid),
    }


TOY_SHIFT_LINEAR = particle_experiment(
    "toy-shift-linear",
    T1_DOC,
    T1_PARAMS,
    build_t1,
    summarise_t1,
    diagnostics=dg.default_diagnostics() | {"invariant": dg.toy_invariant},
)
NEURON_BIMODAL_1D = particle_experiment(
    "neuron-bimodal-1d", T2_DOC, T2_PARAMS, build_t2, summarise_t2
)
