"""Shared pieces of the peak-memory estimates (bytes) that experiments make from their
configs alone: array shapes counted by hand or by ``jax.eval_shape``, nothing compiled or
solved. Each experiment's estimate (``Experiment.memory``, defined beside it) is an upper
bound of the arrays a run holds at its peak: the data it keeps (saves, snapshots,
densities) plus the work arrays of its largest step, with coefficients read off XLA's
memory analysis of the compiled loops (``benchmarks/memory.py`` compares them with
measured peaks). The compiler's own memory (a few hundred MiB) is not included.
"""

from __future__ import annotations

import jax


def itemsize() -> int:
    """Bytes of a float at the current precision (float64 when x64 is enabled)."""
    return jax.dtypes.canonicalize_dtype(float).itemsize


def fokker_planck_elements(cells: int, saves: int, dim: int, implicit: bool) -> int:
    """Elements of :func:`~gandyn.solvers.fokker_planck.solve_fokker_planck` on ``cells``
    cells: the saved densities twice (scan history and output), the operator, the step's
    work arrays and, implicit, those of conjugate gradients."""
    return cells * (2 * saves + 12 + 6 * dim + (6 if implicit else 0))


def kde_elements(points: int, dim: int, others: int) -> int:
    """Work of a kernel drift at ``points`` particles, its logit also read at ``others``
    points: the ``points × points`` kernel tables of the value and its gradient."""
    return (4 + 2 * dim) * points**2 + 2 * points * others


def mlp_elements(points: int, width: int, depth: int, dim: int) -> int:
    """Activations of an MLP over ``points`` inputs, with its parameter and input gradients."""
    return points * width * depth * (2 + 3 * dim)
