"""Shared pieces of the work estimates (elementary operations) that experiments make from
their configs alone (``Experiment.work``, defined beside each experiment).

An operation is one particle–node pair of a velocity evaluation, one cell update of a grid
step or one multiply-add of a network pass. These are orders of magnitude, meant to refuse
runs that would take days or years (:func:`gandyn.admission.check_time`), not to predict
run times: where a step count is only known once a run is built (CFL-limited grid steps),
velocities of order one are assumed.
"""

from __future__ import annotations

from typing import Any

STAGES = {"euler": 1, "heun": 2, "midpoint": 2, "ralston": 2, "bosh3": 3, "tsit5": 6}
"""Vector-field evaluations per step of each explicit solver (others: 12)."""

PAIR = 4
"""A velocity evaluation visits each particle–node pair about four times (forward, and
the forward-over-reverse pass of §1.2)."""


def stages(solver: str) -> int:
    """Vector-field evaluations per step of ``solver``."""
    return STAGES.get(solver, 12)


def particle_ode(config: dict[str, Any]) -> float:
    """Steps × stages × particles × quadrature nodes (data components and latent law)."""
    steps = config["t1"] / config["dt"]
    nodes = (len(config["data_means"]) + 1) * config["quadrature"]
    particles = config["n_gen"] + config["n_critic"]
    return steps * stages(config["solver"]) * particles * nodes * PAIR


def fokker_planck_steps(config: dict[str, Any], dim: int, box: float) -> float:
    """Steps of the explicit solve (0.9 × the diffusive limit ``dx² / (2 dim)``; the
    implicit solve: ten times longer steps, ~20 conjugate-gradient iterations each)."""
    dx = box / config["cells"]
    steps = config["t1"] * 2 * dim / (0.9 * dx**2)
    if config.get("dt", 0.0) > 0:
        steps = config["t1"] / config["dt"]
    return steps * (2.0 if config.get("method") == "implicit" else 1.0)
