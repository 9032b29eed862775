"""Plots of the grid experiments: critic density heat-map and sup-norms (``grid-blowup``),
densities and divergences over time (``fp-js-1d``, ``fp-js-2d``)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from ..experiments.registry import Result  # noqa: E402
from . import finite, save_figure  # noqa: E402


def plot_blowup(result: Result, out_dir: Path) -> list[Path]:
    """``critic_density.png``: heat-map over (t, ω) at the finest grid (log colour);
    ``sup_norms.png``: sup of the critic density over time per resolution, hard (solid)
    and penalty (dashed), and the max over time against Δx with the fitted slopes."""
    out_dir = Path(out_dir)
    traj, cfg, summary = result.trajectory, result.config, result.summary
    ts, omega = traj["ts"], traj["critic_centres"]
    fig, ax = plt.subplots(figsize=(7, 4))
    density = np.maximum(finite(ax, traj["critic_density"], ts), 1e-6)
    vmax = 1.0 if np.isnan(density).all() else np.nanmax(density)
    mesh = ax.pcolormesh(
        ts,
        omega,
        density.T,
        norm=LogNorm(vmin=1e-3, vmax=vmax),
        shading="nearest",
        cmap="magma",
    )
    fig.colorbar(mesh, ax=ax, label="critic density")
    if summary.get("contact_time") is not None:
        ax.axvline(summary["contact_time"], color="c", lw=0.8, ls="--")
    ax.set_xlabel("t")
    ax.set_ylabel("ω")
    ax.set_title(
        f"grid-blowup ({cfg['model']}, {cfg['scheme']}, {len(omega)} cells, "
        f"c = {cfg['c']:g}); dashed: first wall contact",
        fontsize=9,
    )
    paths = [save_figure(fig, out_dir / "critic_density.png")]

    resolutions = [int(n) for n in traj["resolutions"]]
    labels = ["hard"] + [f"penalty_{b:g}" for b in traj["penalty_betas"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(resolutions)))
    for colour, n in zip(colours, resolutions, strict=True):
        hard = finite(left, traj[f"sup_hard_{n}"], ts)
        left.semilogy(ts, hard, color=colour, lw=1, label=f"hard, {n} cells")
        for label in labels[1:]:
            sup = finite(left, traj[f"sup_{label}_{n}"], ts)
            left.semilogy(ts, sup, color=colour, lw=0.8, ls="--")
    left.set_xlabel("t")
    left.set_ylabel("sup of critic density")
    left.set_title(
        "solid: HardClip; dashed: PenaltyClip β = "
        + ", ".join(f"{b:g}" for b in traj["penalty_betas"]),
        fontsize=9,
    )
    left.legend(fontsize=7)
    width = 2 * cfg["c"]
    for label in labels:
        margin = 0.0 if label == "hard" else cfg["penalty_margin"]
        dx = [(width + 2 * margin) / n for n in resolutions]
        sup = finite(right, [traj[f"sup_{label}_{n}"].max() for n in resolutions], dx, "Δx")
        right.loglog(dx, sup, "o-", ms=3, label=label)
    right.set_xlabel("Δx")
    right.set_ylabel("max over t of sup density")
    exponent = summary.get("blowup_exponent")
    right.set_title(
        "hard-clip exponent "
        + ("undefined" if exponent is None else f"{exponent:.3f}")
        + " (sup ∝ Δx^-p)",
        fontsize=9,
    )
    right.legend(fontsize=7)
    paths.append(save_figure(fig, out_dir / "sup_norms.png"))
    return paths


def plot_fokker_planck(result: Result, out_dir: Path) -> list[Path]:
    """``densities.png``: ρ_t at a few times against ρ_d (curves in 1-D, heat-maps in 2-D);
    ``divergences.png``: JS, χ² and the range of u = ρ/ρ_d over time."""
    out_dir = Path(out_dir)
    traj = result.trajectory
    ts, densities, data = traj["ts"], traj["densities"], traj["data_density"]
    picks = np.unique(np.linspace(0, len(ts) - 1, 5).round().astype(int))
    if densities.ndim == 2:
        fig, ax = plt.subplots(figsize=(7, 4))
        colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(picks)))
        densities = finite(ax, densities, ts)
        for colour, k in zip(colours, picks, strict=True):
            ax.plot(traj["x0"], densities[k], color=colour, lw=1, label=f"t = {ts[k]:.3g}")
        ax.plot(traj["x0"], data, "k--", lw=1, label="ρ_d")
        ax.set_xlabel("x")
        ax.set_ylabel("density")
        ax.legend(fontsize=7)
    else:
        fig, axes = plt.subplots(1, len(picks) + 1, figsize=(3 * (len(picks) + 1), 3))
        extent = (traj["x0"][0], traj["x0"][-1], traj["x1"][0], traj["x1"][-1])
        for ax, k in zip(axes[:-1], picks, strict=True):
            density = finite(ax, densities[k])
            ax.imshow(density.T, origin="lower", extent=extent, cmap="magma")
            ax.set_title(f"t = {ts[k]:.3g}", fontsize=8)
        axes[-1].imshow(data.T, origin="lower", extent=extent, cmap="magma")
        axes[-1].set_title("ρ_d", fontsize=8)
    fig.suptitle(f"{result.experiment}: densities", fontsize=9)
    paths = [save_figure(fig, out_dir / "densities.png")]

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.semilogy(ts, finite(left, traj["diag_js"], ts), label="JS(ρ_t, ρ_d)")
    left.semilogy(ts, finite(left, traj["diag_chi2"], ts), label="χ²(ρ_t, ρ_d)")
    left.set_xlabel("t")
    left.legend(fontsize=8)
    right.semilogy(ts, finite(right, traj["diag_u_max"], ts), label="max u")
    right.semilogy(ts, finite(right, traj["diag_u_min"], ts), label="min u")
    right.set_xlabel("t")
    right.set_title("u = ρ/ρ_d stays in [min u₀, max u₀]", fontsize=9)
    right.legend(fontsize=8)
    paths.append(save_figure(fig, out_dir / "divergences.png"))
    return paths
