"""Work estimates (elementary operations) of every experiment's run, from its config alone.

An operation is one particle–node pair of a velocity evaluation, one cell update of a grid
step or one multiply-add of a network pass. These are orders of magnitude, meant to refuse
runs that would take days or years (:func:`gandyn.admission.check_time`), not to predict
run times: where a step count is only known once a run is built (CFL-limited grid steps),
velocities of order one are assumed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

STAGES = {"euler": 1, "heun": 2, "midpoint": 2, "ralston": 2, "bosh3": 3, "tsit5": 6}
"""Vector-field evaluations per step of each explicit solver (others: 12)."""

PAIR = 4
"""A velocity evaluation visits each particle–node pair about four times (forward, and
the forward-over-reverse pass of §1.2)."""


def _stages(solver: str) -> int:
    return STAGES.get(solver, 12)


def particle_ode(config: dict[str, Any]) -> float:
    """Steps × stages × particles × quadrature nodes (data components and latent law)."""
    steps = config["t1"] / config["dt"]
    nodes = (len(config["data_means"]) + 1) * config["quadrature"]
    particles = config["n_gen"] + config["n_critic"]
    return steps * _stages(config["solver"]) * particles * nodes * PAIR


def mean_field_vs_sgd(config: dict[str, Any]) -> float:
    """The reference ODE, then every training run: per generator step ``critic_steps + 1``
    gradient evaluations of both players over the quadrature (or two minibatches)."""
    nodes = (len(config["data_means"]) + 1) * config["quadrature"]
    if config["batch_size"]:
        nodes = min(nodes, 2 * config["batch_size"])
    t1, per_step = config["t1"], (config["critic_steps"] + 1) * nodes * PAIR

    def training(width: int, seeds: int, eta: float) -> float:
        return seeds * (t1 / eta) * 2 * width * per_step

    reference = config["reference_width"]
    total = particle_ode(config | {"n_gen": reference, "n_critic": reference})
    total += sum(training(w, config["seeds"], config["width_eta"]) for w in config["widths"])
    eta_seeds = config["seeds"] if config["batch_size"] else 1
    total += sum(training(reference, eta_seeds, eta) for eta in config["etas"])
    return total + training(reference, 1, config["dt"])


def grid_blowup(config: dict[str, Any]) -> float:
    """Every resolution, hard clipping and each β: steps (CFL ½ with velocities of order
    one on the critic box) × faces × quadrature nodes."""
    nodes = (len(config["data_means"]) + 1) * config["quadrature"]
    runs = 1 + len(config["penalty_betas"])
    total = 0.0
    for cells in config["resolutions"]:
        steps = max(config["n_saves"], 4.0 * config["t1"] * cells / (2 * config["c"]))
        total += runs * steps * 2 * cells * nodes * PAIR
    return total


def fokker_planck_steps(config: dict[str, Any], dim: int, box: float) -> float:
    """Steps of the explicit solve (0.9 × the diffusive limit ``dx² / (2 dim)``; the
    implicit solve: ten times longer steps, ~20 conjugate-gradient iterations each)."""
    dx = box / config["cells"]
    steps = config["t1"] * 2 * dim / (0.9 * dx**2)
    if config.get("dt", 0.0) > 0:
        steps = config["t1"] / config["dt"]
    return steps * (2.0 if config.get("method") == "implicit" else 1.0)


def fokker_planck(dim: int):
    """The estimate of ``fp-js-{dim}d``: steps × cells × ~30 operations, and the data
    density on the grid (one evaluation per cell and component)."""

    def work(config: dict[str, Any]) -> float:
        low, high = config["domain"][:2]
        cells = float(config["cells"]) ** dim
        components = config.get("ring_components", len(config.get("data_means", [0.0])))
        return cells * (30 * fokker_planck_steps(config, dim, high - low) + components)

    return work


def js_flow_particles(config: dict[str, Any]) -> float:
    """The grid solution on a box of ±``margin`` stds (``cells`` per axis), then the
    particle flow: per stage a kernel drift (particles²), an exact drift (particles ×
    mixture components) or a discriminator pass (particles × width² × depth)."""
    dim, n = config["dim"], config["n_particles"]
    box = 2 * config["margin"] * config["data_std"] + np.ptp(config["data_means"])
    grid = (
        float(config["cells"]) ** dim
        * 30
        * fokker_planck_steps({"cells": config["cells"], "t1": config["t1"]}, dim, box)
    )
    per_particle = {
        "kde": n,
        "exact": len(config["data_means"]) // dim,
        "neural": config["disc_width"] ** 2 * config["disc_depth"],
    }[config["estimator"]]
    steps = config["t1"] / config["dt"]
    return grid + steps * _stages(config["solver"]) * n * per_particle * PAIR


def gan_as_ode(config: dict[str, Any]) -> float:
    """Per iteration of each run (and of the reference flow): the drift on the ``m``
    generated points (kernel: m × (m + data); neural: discriminator passes) and ``K``
    generator passes (m × width² × depth)."""
    m = config["latent_quadrature"] ** 2
    data = config["ring_components"] * config["quadrature"] ** 2
    if config["drift"] == "kde":
        drift = m * (m + data) * PAIR
    else:
        passes = config["n_disc_steps"] * (m + data) * config["disc_width"] ** 2
        drift = passes * config["disc_depth"] * 3
    generator = m * config["gen_width"] ** 2 * config["gen_depth"] * 3
    pretrain = config["disc_pretrain"] * (m + data) * config["disc_width"] ** 2 * 3
    per_k = [config["n_iter"] * (drift + k * generator) for k in config["K_list"]]
    return sum(per_k) + config["n_iter"] * (m * (m + data) * PAIR) + pretrain


def mse_divergence(config: dict[str, Any]) -> float:
    """Every run of the η sweep and of the threshold bisections (two rounds of ``refine + 2``
    runs per latent scale): iterations × K × quadrature² (data × latent expectations)."""
    runs = config["n_eta"] + 2 * (config["refine"] + 2) * (len(config["latent_scales"]) + 1)
    return float(runs) * config["n_iter"] * config["K"] * config["quadrature"] ** 2 * PAIR
