"""Plots of the study-J experiments: particle flow vs grid, GAN paths by K, the affine GAN's
bifurcation diagram."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..experiments.registry import Result  # noqa: E402
from . import finite, save_figure, span  # noqa: E402


def plot_flow(result: Result, out: Path) -> list[Path]:
    """Mean, variance and JS of particles and grid over time; particles against the grid
    density at the last time (1-D histogram or 2-D scatter over contours)."""
    traj, out = result.trajectory, Path(out)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, key, label in zip(
        axes, ("mean", "variance", "js"), ("mean", "variance", "JS"), strict=True
    ):
        particles = finite(ax, traj[f"diag_{key}"], traj["ts"], what="particles")
        grid = finite(ax, traj[f"grid_{key}"], traj["ts"], what="grid")
        ax.plot(traj["ts"], particles, lw=1.2, label="particles")
        ax.plot(traj["ts"], grid, "k--", lw=1, label="grid Fokker–Planck")
        ax.set_xlabel("t")
        ax.set_title(label, fontsize=9)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{result.experiment} ({result.config['estimator']} drift)", fontsize=9)
    paths = [save_figure(fig, out / "flow_moments.png")]

    fig, ax = plt.subplots(figsize=(5, 4))
    final, density = finite(ax, traj["snapshots"][-1]), finite(ax, traj["fp_densities"][-1])
    if "x1" in traj:
        x0, x1 = np.meshgrid(traj["x0"], traj["x1"], indexing="ij")
        ax.contour(x0, x1, density, levels=8, colors="k", linewidths=0.6)
        ax.contour(x0, x1, traj["data_density"], levels=8, colors="g", linewidths=0.4)
        ax.scatter(final[:, 0], final[:, 1], s=2, alpha=0.5)
        ax.set_aspect("equal")
    else:
        shown = final[~np.isnan(final[:, 0]), 0]
        ax.hist(shown, bins=60, range=span(shown), density=True, alpha=0.5, label="particles, t1")
        ax.plot(traj["x0"], density, "k", lw=1, label="grid, t1")
        ax.plot(traj["x0"], traj["data_density"], "g:", lw=1, label="data")
        ax.legend(fontsize=7)
    ax.set_title("final particles and grid density", fontsize=9)
    paths.append(save_figure(fig, out / "flow_final.png"))
    return paths


def plot_gan(result: Result, out: Path) -> list[Path]:
    """Generated points at the snapshots for each K (reference flow in the first row), and
    distance to the data / to the reference flow over iterations."""
    traj, out = result.trajectory, Path(out)
    ks = result.config["K_list"]
    rows = [("ODE reference", traj["reference_snapshots"])]
    rows += [(f"K = {k}", traj[f"K{k}_snapshots"]) for k in ks]
    n_snap = rows[0][1].shape[0]
    fig, axes = plt.subplots(
        len(rows),
        n_snap,
        figsize=(1.9 * n_snap, 1.9 * len(rows)),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    data = traj["data_points"]
    for r, (label, snaps) in enumerate(rows):
        for c in range(n_snap):
            ax = axes[r, c]
            points = finite(ax, snaps[c])
            ax.scatter(data[:, 0], data[:, 1], s=1, c="0.8")
            ax.scatter(points[:, 0], points[:, 1], s=1.5)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"iter {traj['snapshot_iters'][c]}", fontsize=8)
        axes[r, 0].set_ylabel(label, fontsize=8)
    paths = [save_figure(fig, out / "gan_paths.png")]

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    iters = traj["snapshot_iters"]
    for k in ks:
        distance = traj[f"K{k}_data_distance"]
        axes[0].plot(
            finite(axes[0], distance, np.arange(len(distance)), "iter", f"K = {k}"),
            lw=1,
            label=f"K = {k}",
        )
        path = finite(axes[1], traj[f"K{k}_path_distance"], iters, "iter", f"K = {k}")
        axes[1].plot(iters, path, "o-", ms=3, label=f"K = {k}")
        ratio = traj[f"K{k}_displacement_ratio"]
        axes[2].plot(
            finite(axes[2], ratio, np.arange(len(ratio)), "iter", f"K = {k}"),
            lw=0.8,
            label=f"K = {k}",
        )
    reference = finite(axes[0], traj["reference_data_distance"], iters, "iter", "ODE")
    axes[0].plot(iters, reference, "k--", lw=1, label="ODE")
    for ax, title in zip(
        axes,
        ("sliced W1 to the data", "sliced W1 to the ODE path", "realised / intended displacement"),
        strict=True,
    ):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("iteration")
        ax.legend(fontsize=7)
    paths.append(save_figure(fig, out / "gan_distances.png"))
    return paths


def plot_mse(result: Result, out: Path) -> list[Path]:
    """Bifurcation diagram (late values of a against η) with the linear threshold, and the
    paths of a: stable, 2-cycle, least squares."""
    traj, summary, out = result.trajectory, result.summary, Path(out)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    etas, late = traj["etas"], finite(axes[0], traj["late_a"], traj["etas"], "η")
    axes[0].plot(np.repeat(etas, late.shape[1]), late.ravel(), ".", ms=2)
    axes[0].axvline(
        summary["eta_threshold_linear"], color="r", lw=0.8, ls="--", label="linear threshold"
    )
    if summary["eta_threshold"] is not None:
        axes[0].axvline(summary["eta_threshold"], color="k", lw=0.6, label="measured")
    axes[0].set_xlabel("η = λε")
    axes[0].set_ylabel("a (last 16 iterations)")
    axes[0].set_title(f"one MSE step per iteration (K = {result.config['K']})", fontsize=9)
    axes[0].legend(fontsize=7)
    for key, label in (
        ("stable_path", "η below threshold"),
        ("cycle_path", "η above threshold"),
        ("ls_path", "least squares, largest η"),
    ):
        if key in traj:
            path = traj[key][:200, 0]
            axes[1].plot(
                finite(axes[1], path, np.arange(len(path)), "iter", label), lw=0.9, label=label
            )
    axes[1].set_xlabel("iteration")
    axes[1].set_ylabel("a")
    axes[1].legend(fontsize=7)
    return [save_figure(fig, out / "mse_divergence.png")]
