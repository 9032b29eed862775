"""Peak-memory estimates (bytes) of the runs of the non-particle experiments, from their
configs alone: array shapes counted by hand or by ``jax.eval_shape``, nothing compiled or
solved. Each is an upper bound of the arrays a run holds at its peak: the data it keeps
(saves, snapshots, densities) plus the work arrays of its largest step, with coefficients
read off XLA's memory analysis of the compiled loops (``benchmarks/memory.py`` compares
them with measured peaks). The compiler's own memory (a few hundred MiB) is not included.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from ..games._chunks import auto_chunk
from ..solvers.particles import save_grid
from .common import estimate_memory, recorded_size

OPTIMIZER_SLOTS = {"sgd": 0, "rmsprop": 1, "adam": 2}
"""Optimizer state per parameter."""

GRID_DIAGNOSTICS = 14
"""Scalars :func:`~gandyn.solvers.grid.grid_diagnostics` records per save (1-D grids)."""

SLICED_DIRECTIONS = 64
"""Directions of :func:`~gandyn.diagnostics.sliced_wasserstein1` in 2-D."""


def _itemsize() -> int:
    """Bytes of a float at the current precision (float64 when x64 is enabled)."""
    return jax.dtypes.canonicalize_dtype(float).itemsize


# ----------------------------------------------------------------------------- mean-field-vs-sgd


def _steps_on(times: np.ndarray, eta: float) -> int:
    """Distinct steps of the grid ``k eta`` the times round to (as in ``train_wgan``)."""
    return np.unique(np.round(np.asarray(times) / eta)).size


def mean_field_vs_sgd(config: dict[str, Any]) -> int:
    """The reference ODE (:func:`estimate_memory`), kept throughout, plus the largest
    training phase: ``seeds`` copies of the state at a width with their optimizer states,
    the per-node tables of the objective's gradient and of the diagnostics (about half the
    quadrature nodes, or of the two minibatches if more, per parameter), snapshots and
    diagnostics, beside the previous width's results."""
    from .algorithm import _observed, _reference

    problem, state = jax.eval_shape(lambda: _reference(config))
    observed = _observed()
    per_save = recorded_size(problem, state, observed)
    params = state.generator.shape[1] + state.critic.shape[1]
    game = problem.game
    nodes = max(game.data.size + game.latent.size, 2 * config["batch_size"])
    t1 = config["t1"]
    snapshot_ts = np.concatenate([[0.0, t1], np.linspace(0.0, t1, config["n_snapshots"])])
    slots = OPTIMIZER_SLOTS[config["optimizer"]]

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


# ----------------------------------------------------------------------------- grids


def grid_blowup(config: dict[str, Any]) -> int:
    """Every run is kept (hard clipping and each ``PenaltyClip`` at every resolution): per
    run both players' final masses, two snapshots (all saves at the finest resolution) and
    the diagnostics. On top: a finest run's results twice more while they move to the host
    and back, the work of one finest step (~60 arrays of cells and the particle blocks of
    the velocity) and the host copy of the finest critic density."""
    size = config["quadrature"]
    nodes = len(config["data_means"]) * size + size
    finest, saves = max(config["resolutions"]), config["n_saves"]
    results = {
        cells: 2 * cells * ((saves if cells == finest else 2) + 1) + GRID_DIAGNOSTICS * saves
        for cells in config["resolutions"]
    }
    kept = (1 + len(config["penalty_betas"])) * sum(results.values())
    work = 2 * results[finest] + 60 * finest + 4 * auto_chunk(nodes) * nodes + saves * finest
    return (kept + work) * _itemsize()


def fokker_planck_elements(cells: int, saves: int, dim: int, implicit: bool) -> int:
    """Elements of :func:`~gandyn.solvers.fokker_planck.solve_fokker_planck` on ``cells``
    cells: the saved densities twice (scan history and output), the operator, the step's
    work arrays and, implicit, those of conjugate gradients."""
    return cells * (2 * saves + 12 + 6 * dim + (6 if implicit else 0))


def fokker_planck(dim: int):
    """The estimate of ``fp-js-{dim}d``."""

    def memory(config: dict[str, Any]) -> int:
        cells = config["cells"] ** dim
        implicit = config["method"] == "implicit"
        components = config.get("ring_components", len(config.get("data_means", [0.0])))
        elements = fokker_planck_elements(cells, config["n_saves"], dim, implicit)
        return (elements + 2 * cells * components) * _itemsize()  # + the data density

    return memory


# ----------------------------------------------------------------------------- study J


def kde_elements(points: int, dim: int, others: int) -> int:
    """Work of a kernel drift at ``points`` particles, its logit also read at ``others``
    points: the ``points × points`` kernel tables of the value and its gradient."""
    return (4 + 2 * dim) * points**2 + 2 * points * others


def mlp_elements(points: int, width: int, depth: int, dim: int) -> int:
    """Activations of an MLP over ``points`` inputs, with its parameter and input gradients."""
    return points * width * depth * (2 + 3 * dim)


def js_flow_particles(config: dict[str, Any]) -> int:
    """The grid Fokker–Planck solution (kept; read again as a log density by the exact
    drift), then the particle flow: the drift's work (kernel tables, discriminator
    activations), five snapshots and the final particles."""
    dim, n = config["dim"], config["n_particles"]
    components = len(config["data_means"]) // dim
    data = components * config["quadrature"] ** dim
    cells, saves = config["cells"] ** dim, config["n_saves"]
    elements = fokker_planck_elements(cells, saves, dim, implicit=False)
    if config["estimator"] == "kde":
        elements += kde_elements(n, dim, data)
    elif config["estimator"] == "neural":
        width, depth = config["disc_width"], config["disc_depth"]
        elements += mlp_elements(n + data, width, depth, dim)
    else:
        elements += cells * saves + 20 * n
    return (elements + 6 * n * dim) * _itemsize()


def gan_as_ode(config: dict[str, Any]) -> int:
    """Generated points ``m`` = latent nodes: the kernel drift of the reference flow (and of
    the algorithm with ``drift = kde``) on ``m`` points, or the discriminator's activations,
    the generator's, the sliced W1 projections, and every run's snapshots (kept)."""
    m = config["latent_quadrature"] ** 2
    data = config["ring_components"] * config["quadrature"] ** 2
    drift = kde_elements(m, 2, data)
    if config["drift"] == "neural":
        drift = max(drift, mlp_elements(m + data, config["disc_width"], config["disc_depth"], 2))
    generator = mlp_elements(m, config["gen_width"], config["gen_depth"], 2)
    sliced = 6 * SLICED_DIRECTIONS * (m + data)
    snapshots = 2 * m * (config["n_iter"] // config["snapshot_every"] + 1)
    runs = 1 + len(config["K_list"])
    kept = runs * (2 * snapshots + 8 * config["n_iter"])
    return (drift + generator + sliced + kept) * _itemsize()


def mse_divergence(config: dict[str, Any]) -> int:
    """Paths ``(a, b)`` at every iteration of a sweep over the ``n_eta`` steps: about five
    copies (its chunks, their concatenation, the deviations computed from them), and three
    of one vmapped batch of ``refine + 2`` runs on the device (recorded, concatenated,
    copied to the host)."""
    length = 2 * (config["n_iter"] + 1)
    batch = config["refine"] + 2
    sweep = -(-config["n_eta"] // batch) * batch  # padded to whole batches
    return length * (5 * sweep + 3 * batch) * _itemsize()
