"""The plots of each experiment, looked up by the experiment's name: each reads only the
:class:`~gandyn.experiments.registry.Result` (config, summary, trajectory)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ..experiments.registry import Result
from .algorithm import plot_mean_field_vs_sgd
from .grids import plot_blowup, plot_fokker_planck
from .js import plot_flow, plot_gan, plot_mse
from .toy import plot_toy

PLOTS: dict[str, Callable[[Result, Path], Sequence[Path]]] = {
    "toy-shift-linear": plot_toy,
    "neuron-bimodal-1d": plot_toy,
    "mean-field-vs-sgd": plot_mean_field_vs_sgd,
    "grid-blowup": plot_blowup,
    "fp-js-1d": plot_fokker_planck,
    "fp-js-2d": plot_fokker_planck,
    "js-flow-particles": plot_flow,
    "gan-as-ode": plot_gan,
    "mse-divergence": plot_mse,
}
"""Experiment name → its plot function, writing PNG files into a folder."""


def plot_result(result: Result, folder: Path) -> list[Path]:
    """Write the plots of ``result`` (those of its experiment, none if it has none) into
    ``folder``; returns their paths."""
    plot = PLOTS.get(result.experiment)
    return [] if plot is None else list(plot(result, folder))
