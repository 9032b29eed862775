"""Plots of the study-W particle experiments: time series, phase portrait, critic histograms."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..experiments.registry import Result  # noqa: E402
from . import finite, save_figure, span  # noqa: E402

SERIES = (
    ("diag_value", "F(μ, ν)"),
    ("diag_data_distance", "W1(generated, data)"),
    ("diag_wall_fraction", "critic mass on a wall"),
    ("diag_critic_max_abs", "max |ω|"),
    ("diag_critic_support_width", "critic support width"),
    ("diag_invariant", "H = λy² + ω̄²"),
)


def plot_time_series(result: Result, path: Path) -> Path:
    """One panel per recorded scalar diagnostic against time."""
    traj = result.trajectory
    panels = [(key, label) for key, label in SERIES if key in traj]
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 1.8 * len(panels)), sharex=True)
    for ax, (key, label) in zip(np.atleast_1d(axes), panels, strict=True):
        ax.plot(traj["ts"], finite(ax, traj[key], traj["ts"]), lw=1)
        ax.set_ylabel(label, fontsize=8)
        if result.summary.get("first_contact_time") is not None:
            ax.axvline(result.summary["first_contact_time"], color="r", lw=0.6, ls="--")
    np.atleast_1d(axes)[-1].set_xlabel("t")
    fig.suptitle(f"{result.experiment}: time series (dashed: first wall contact)", fontsize=9)
    return save_figure(fig, path)


def plot_phase_portrait(result: Result, path: Path) -> Path:
    """T1: the curve (y, ω̄) with the free-oscillator ellipse of the start and ``H = c²``."""
    traj, cfg = result.trajectory, result.config
    means, weights = np.asarray(cfg["data_means"]), np.asarray(cfg["data_weights"])
    fig, ax = plt.subplots(figsize=(5, 5))
    y = finite(ax, traj["diag_generated_mean"][:, 0] - weights @ means / weights.sum(), traj["ts"])
    omega = finite(ax, traj["diag_critic_mean"][:, 0], traj["ts"])
    lam, c = cfg["lam"], cfg["c"]
    angle = np.linspace(0, 2 * np.pi, 400)
    ax.plot(y, omega, lw=0.8, label="trajectory")
    h0 = finite(ax, traj["diag_invariant"][:1])[0]
    ax.plot(
        np.sqrt(h0 / lam) * np.cos(angle),
        np.sqrt(h0) * np.sin(angle),
        "k:",
        lw=0.8,
        label="free orbit H = H(0)",
    )
    ax.plot(
        c / np.sqrt(lam) * np.cos(angle),
        c * np.sin(angle),
        "g--",
        lw=0.8,
        label="H = c² (single atom)",
    )
    ax.axhline(c, color="r", lw=0.5)
    ax.axhline(-c, color="r", lw=0.5)
    ax.plot(y[0], omega[0], "ko", ms=4)
    ax.set_xlabel("y = mean(G) − mean(data)")
    ax.set_ylabel("ω̄ (critic mean)")
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title("phase portrait (red: clip walls ±c)", fontsize=9)
    return save_figure(fig, path)


def plot_critic_histograms(result: Result, path: Path) -> Path:
    """Histograms of each critic coordinate at the snapshots; atoms on the walls show as
    spikes at ±c (log counts)."""
    traj, c = result.trajectory, result.config.get("c")
    critic, times = traj["snapshot_critic"], traj["snapshot_ts"]
    n_snap, _, q = critic.shape
    fig, axes = plt.subplots(q, n_snap, figsize=(2.2 * n_snap, 1.8 * q), squeeze=False)
    lim = span(np.abs(critic), [c or 0.0])[1]
    for j in range(q):
        for s in range(n_snap):
            ax = axes[j, s]
            values = finite(ax, critic[s, :, j])
            shown = values[~np.isnan(values)]
            ax.hist(shown, bins=41, range=(-lim, lim), log=bool(shown.size), color="C0")
            if c is not None:
                ax.axvline(-c, color="r", lw=0.6)
                ax.axvline(c, color="r", lw=0.6)
            if j == 0:
                ax.set_title(f"t = {times[s]:.3g}", fontsize=8)
            if s == 0:
                ax.set_ylabel(f"ω[{j}] count", fontsize=8)
            ax.tick_params(labelsize=6)
    fig.suptitle("critic parameters at snapshots (red: walls ±c)", fontsize=9)
    return save_figure(fig, path)


def plot_toy(result: Result, out: Path) -> list[Path]:
    """All plots of a toy experiment into ``out``."""
    paths = [plot_time_series(result, out / "time_series.png")]
    if "diag_invariant" in result.trajectory:
        paths.append(plot_phase_portrait(result, out / "phase_portrait.png"))
    paths.append(plot_critic_histograms(result, out / "critic_histograms.png"))
    return paths
