"""Plots of ``mean-field-vs-sgd``: gap vs width and step, observables, critic histograms."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..experiments.registry import Result  # noqa: E402
from . import finite, save_figure, span  # noqa: E402

OBSERVABLE_LABELS = {
    "value": "F(μ, ν)",
    "generated_mean": "mean of G#γ",
    "generated_variance": "variance of G#γ",
    "critic_mean": "ω̄ (critic mean)",
    "wall_fraction": "critic mass on a wall",
}


def _gap_panel(ax, x, total, slope, ci, expected: float, label: str) -> None:
    """Headline gap ``total`` (runs × seeds: the continuous observables' gaps summed),
    mean over seeds (bars: ± one standard error), with the fitted and expected lines."""
    mean = finite(ax, total.mean(axis=1), x, label)
    err = total.std(axis=1, ddof=1) / np.sqrt(total.shape[1]) if total.shape[1] > 1 else None
    err = None if err is None else finite(ax, err, x, label)
    ax.errorbar(x, mean, yerr=err, fmt="o", ms=4, capsize=2, label="measured (mean over seeds)")
    x = np.asarray(x, dtype=float)
    if slope is not None:
        centre = np.exp(np.mean(np.log(mean)) - slope * np.mean(np.log(x)))
        ax.plot(x, centre * x**slope, "C0-", lw=1, label=f"fit: slope {slope:.2f} ± {ci:.2f}")
    anchor = mean[-1] * (x / x[-1]) ** expected
    ax.plot(x, anchor, "k:", lw=1, label=f"slope {expected:g}")
    ax.set_xscale("log")
    if np.any(mean > 0):
        ax.set_yscale("log")
    ax.set_xlabel(label)
    ax.set_ylabel("gap: Σ_obs mean_t |algorithm − ODE|\n(F, generated mean/variance, ω̄)")
    ax.legend(fontsize=7)


def plot_gaps(result: Result, path: Path) -> Path:
    """Gap against width ``N = M`` and against step ``η`` (log-log) with fitted slopes."""
    traj, summary = result.trajectory, result.summary
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    _gap_panel(
        axes[0],
        traj["widths"],
        traj["gap_width_total"],
        summary["slope_width"],
        summary["slope_width_ci95"],
        -0.5,
        "width N = M",
    )
    axes[0].set_title(f"gap vs width (η = {result.config['width_eta']:g})", fontsize=9)
    _gap_panel(
        axes[1],
        traj["etas"],
        traj["gap_eta_total"],
        summary["slope_eta"],
        summary["slope_eta_ci95"],
        summary["slope_eta_expected"],
        "step η_G",
    )
    batch = result.config["batch_size"]
    axes[1].set_title(
        f"gap vs step (N = {result.config['reference_width']}, "
        + ("full batch" if batch == 0 else f"batch {batch}")
        + ")",
        fontsize=9,
    )
    return save_figure(fig, path)


def plot_observables(result: Result, path: Path) -> Path:
    """Each observable of the ODE and of one algorithm run at the largest width."""
    traj = result.trajectory
    names = [n for n in OBSERVABLE_LABELS if f"width_run_diag_{n}" in traj]
    fig, axes = plt.subplots(len(names), 1, figsize=(7, 1.7 * len(names)), sharex=True)
    width = int(traj["widths"][-1])
    for ax, name in zip(np.atleast_1d(axes), names, strict=True):
        ode = traj[f"diag_{name}"].reshape(len(traj["ts"]), -1)[:, 0]
        shown = finite(ax, ode, traj["ts"], what="ODE")
        ax.plot(traj["ts"], shown, "k-", lw=1, label="mean-field ODE")
        run = traj[f"width_run_diag_{name}"]
        ax.plot(
            traj["width_run_ts"],
            finite(ax, run.reshape(len(run), -1)[:, 0], traj["width_run_ts"], what="algorithm"),
            "C1-",
            lw=0.8,
            label=f"algorithm, N = M = {width}",
        )
        ax.set_ylabel(OBSERVABLE_LABELS[name], fontsize=8)
    np.atleast_1d(axes)[0].legend(fontsize=7)
    np.atleast_1d(axes)[-1].set_xlabel("t = k η_G")
    return save_figure(fig, path)


def critic_histograms(ax, ode, network, bins, c: float, label: str) -> None:
    """On ``ax``: densities of one critic coordinate, the ODE's particles ``ode`` (filled)
    against a finite network's ``network`` (outline, ``label``), walls ``±c`` in red."""
    ode, network = finite(ax, ode, what="ODE"), finite(ax, network, what=label)
    ax.hist(ode[~np.isnan(ode)], bins=bins, density=True, color="0.6", label="ODE")
    ax.hist(
        network[~np.isnan(network)],
        bins=bins,
        density=True,
        histtype="step",
        color="C1",
        label=label,
    )
    ax.axvline(-c, color="r", lw=0.6)
    ax.axvline(c, color="r", lw=0.6)
    ax.tick_params(labelsize=6)


def plot_critic_comparison(
    result: Result, path: Path, times: tuple[float, ...] | None = None
) -> Path:
    """Histograms (densities) of the first critic coordinate: the ODE's measure against
    the algorithm's particles at the largest width, at the snapshot times (or ``times``)."""
    traj, c = result.trajectory, result.config["c"]
    snap_ts = traj["snapshot_ts"]
    index = (
        range(len(snap_ts))
        if times is None
        else [int(np.argmin(np.abs(snap_ts - t))) for t in times]
    )
    columns = min(len(index), 5)
    rows = -(-len(index) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 2.4 * rows), squeeze=False)
    lim = span(np.abs(traj["snapshot_critic"]), np.abs(traj["width_run_snapshot_critic"]), [c])[1]
    bins = np.linspace(-lim, lim, 42)
    for ax in axes.flat[len(index) :]:
        ax.set_axis_off()
    width = int(traj["widths"][-1])
    for ax, s in zip(axes.flat, index, strict=False):
        critic_histograms(
            ax,
            traj["snapshot_critic"][s, :, 0],
            traj["width_run_snapshot_critic"][s, :, 0],
            bins,
            c,
            f"N = {width}",
        )
        ax.set_title(f"t = {snap_ts[s]:.3g}", fontsize=8)
    axes[0, 0].legend(fontsize=6)
    fig.suptitle(
        "critic parameter ω[0]: mean-field measure vs finite network (red: walls ±c)", fontsize=9
    )
    return save_figure(fig, path)


def plot_mean_field_vs_sgd(result: Result, out: Path) -> list[Path]:
    """All plots of ``mean-field-vs-sgd`` into ``out``."""
    return [
        plot_gaps(result, out / "gap_vs_width_and_eta.png"),
        plot_observables(result, out / "observables.png"),
        plot_critic_comparison(result, out / "critic_histograms.png"),
    ]
