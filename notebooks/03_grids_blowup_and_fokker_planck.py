# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Grids: blow-up seen as a density, and the Jensen–Shannon Fokker–Planck flow
#
# Particles show where mass goes; grids show densities. This notebook solves the same
# mean-field game on finite-volume grids (DESIGN §3):
#
# 1. **Study W, toy T1** (shift generator, linear critic, critic clipped to [−c, c]): the
#    critic's density on a grid whose walls are the clipping walls. Before the first wall
#    contact the sup-norm converges as Δx → 0; after it, mass piles into the wall cells and
#    the sup grows like 1/Δx — the blow-up. With `PenaltyClip` it stays bounded.
# 2. **Cross-check** with the particle solver before contact (W1 between the two).
# 3. **Study J**: the nonlinear Fokker–Planck equation ∂ₜρ = ∇·(ρ_d ∇log(1 + ρ/ρ_d)) in 1-D and
#    2-D, with the facts it must reproduce (mass, monotone JS and χ², min/max principle).

# %%
import os
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

jax.config.update("jax_enable_x64", True)

import gandyn  # noqa: E402
from gandyn.diagnostics import wasserstein1_1d  # noqa: E402
from gandyn.distributions import ring_mixture  # noqa: E402
from gandyn.experiments.common import loglog_slope  # noqa: E402

SMOKE = os.environ.get("GANDYN_SMOKE") == "1"
OUT = Path(os.environ.get("GANDYN_NOTEBOOK_OUT", Path(__file__).parent / "_out")) / "03_grids"
if not SMOKE:
    OUT.mkdir(parents=True, exist_ok=True)


def show(fig, name):
    if not SMOKE:
        fig.savefig(OUT / f"{name}.png", dpi=110)
    plt.close(fig)


# %% [markdown]
# ## 1. Toy T1 on grids, hard clipping
# The generator grid lives on [−3, 4], the critic grid is the clip box [−0.5, 0.5].
# Velocities at the cell faces come from `gandyn.critic_velocity` / `generator_velocity`:
# the same function the particle solver uses.

# %%
data = gandyn.GaussianMixture(np.array([-1.0, 1.0]), None, 0.3)
game = gandyn.MeanFieldGame(
    gandyn.ShiftUnit(1),
    gandyn.LinearCritic(1),
    data.quadrature(8),
    gandyn.Normal(0.0, 1.0).quadrature(8),
)
gen_law, critic_law = gandyn.Normal(0.5, 0.3), gandyn.Normal(0.0, 0.1)
resolutions = [50, 100] if SMOKE else [100, 200, 400, 800]
t1 = 1.0 if SMOKE else 8.0
save_ts = np.linspace(0.0, t1, 41 if SMOKE else 161)
runs = {}
for cells in resolutions:
    problem = gandyn.ContinuityProblem(
        game, gandyn.HardClip(0.5), gandyn.Grid(-3.0, 4.0, cells), gandyn.Grid(-0.5, 0.5, cells)
    )
    runs[cells] = (
        problem,
        gandyn.solve_continuity(
            problem,
            problem.initial_state(gen_law, critic_law),
            t1=t1,
            save_ts=save_ts,
            snapshot_ts=save_ts,
        ),
    )

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
problem, traj = runs[resolutions[-1]]
density = np.asarray(traj.snapshots.critic) / float(problem.critic_grid.volume)
left.pcolormesh(
    traj.snapshot_ts,
    problem.critic_grid.axis_centres(0),
    np.log10(np.maximum(density, 1e-3)).T,
    shading="nearest",
    cmap="magma",
)
left.set(xlabel="t", ylabel="ω", title="log10 critic density (finest grid)")
for cells, (_, run) in runs.items():
    right.semilogy(run.ts, run.diagnostics["critic_sup"], label=f"{cells} cells")
right.set(xlabel="t", ylabel="sup of critic density")
right.legend()
show(fig, "t1_blowup")

dx = [1.0 / n for n in resolutions]
sups = [float(run.diagnostics["critic_sup"].max()) for _, run in runs.values()]
print("blow-up exponent p (max_t sup ∝ Δx^-p):", round(-loglog_slope(dx, sups), 3))
early = [float(run.diagnostics["critic_sup"][2]) for _, run in runs.values()]
print(f"before contact (t = {save_ts[2]:.3f}): sup per resolution", np.round(early, 4))
print(
    "mass error:", max(float(abs(r.diagnostics["critic_mass"] - 1).max()) for _, r in runs.values())
)

# %% [markdown]
# ## 2. Penalty clipping: bounded, growing with β
# The critic grid extends to ±1.5; `PenaltyClip.velocity` adds −β(ω − Πω) at the faces.

# %%
betas = [1.0] if SMOKE else [1.0, 2.0, 4.0]
for beta in betas:
    sups = []
    for cells in resolutions:
        problem = gandyn.ContinuityProblem(
            game,
            gandyn.PenaltyClip(0.5, beta),
            gandyn.Grid(-3.0, 4.0, cells),
            gandyn.Grid(-1.5, 1.5, cells),
            scheme=gandyn.MUSCL(),
        )
        run = gandyn.solve_continuity(
            problem, problem.initial_state(gen_law, critic_law), t1=t1, save_ts=save_ts
        )
        sups.append(float(run.diagnostics["critic_sup"].max()))
    print(f"beta = {beta:g}: max sup per resolution {np.round(sups, 2)}")

# %% [markdown]
# ## 3. Particles against the grid before first contact
# Without walls T1 translates both densities rigidly; W1 between the critic's particle
# measure and its grid density shrinks as Δx → 0.

# %%
t_check = 0.5
key = jax.random.key(0)
n_particles = 200 if SMOKE else 2000
gen = gandyn.sample_measure(key, gen_law, n_particles, "quantile")
critic = gandyn.sample_measure(key, critic_law, n_particles, "quantile")
particles, state = gandyn.MeanFieldProblem.from_measures(game, None, gen, critic)
ptraj = gandyn.simulate(
    particles, state, t1=t_check, dt=0.005, solver="heun", save_ts=[0.0, t_check]
)
for cells in resolutions:
    problem = gandyn.ContinuityProblem(
        game, None, gandyn.Grid(-3.0, 4.0, cells), gandyn.Grid(-1.5, 1.5, cells), gandyn.MUSCL()
    )
    run = gandyn.solve_continuity(
        problem, problem.initial_state(gen_law, critic_law), t1=t_check, save_ts=[0.0, t_check]
    )
    w1 = wasserstein1_1d(
        ptraj.final.critic[:, 0],
        critic.weights,
        problem.critic_grid.centres()[:, 0],
        run.final.critic,
    )
    print(f"{cells} cells: W1(particles, grid) = {float(w1):.2e}")

# %% [markdown]
# ## 4. Study J: the JS Fokker–Planck flow in 1-D
# ρ_d = N(0, 1), ρ₀ = N(1, 1): the sanity values JS = 0.111421, χ² = e − 1, E[v] = −0.397973.

# %%
cells_1d = 200 if SMOKE else 2000
sol = gandyn.solve_fokker_planck(
    gandyn.GaussianMixture(np.array([0.0]), None, 1.0),
    gandyn.GaussianMixture(np.array([1.0]), None, 1.0),
    (-10.0, 12.0),
    cells_1d,
    0.5 if SMOKE else 5.0,
    n_saves=51,
)
d = sol.diagnostics
print(
    "JS(0) =",
    float(d["js"][0]),
    " χ²(0) − (e − 1) =",
    float(d["chi2"][0]) - (np.e - 1),
    " d mean/dt(0) =",
    float(d["mean_velocity"][0, 0]),
)
print(
    "JS non-increasing:",
    bool(np.all(np.diff(np.asarray(d["js"])) <= 1e-15)),
    " mass error:",
    float(abs(d["mass"] - 1).max()),
)
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
x = sol.grid.axis_centres(0)
for k in range(0, len(sol.ts), 10):
    left.plot(x, sol.densities[k], lw=1, label=f"t = {float(sol.ts[k]):.2g}")
left.plot(x, sol.data_density, "k--", label="ρ_d")
left.set_xlim(-5, 6)
left.legend(fontsize=7)
right.semilogy(sol.ts, d["js"], label="JS")
right.semilogy(sol.ts, d["chi2"], label="χ²")
right.legend()
show(fig, "fp_1d")

# %% [markdown]
# ## 5. Study J in 2-D: towards a ring of eight Gaussians

# %%
sol2 = gandyn.solve_fokker_planck(
    ring_mixture(2.0, 8, 0.4),
    gandyn.GaussianMixture(np.array([[0.5, 0.0]]), None, 0.5),
    (-4.5, 4.5),
    24 if SMOKE else 96,
    0.5 if SMOKE else 5.0,
    n_saves=6,
)
fig, axes = plt.subplots(1, 4, figsize=(13, 3.2))
for ax, k in zip(axes[:3], (0, 2, 5), strict=True):
    ax.imshow(np.asarray(sol2.densities[k]).T, origin="lower", extent=(-4.5, 4.5, -4.5, 4.5))
    ax.set_title(f"t = {float(sol2.ts[k]):.2g}")
axes[3].imshow(np.asarray(sol2.data_density).T, origin="lower", extent=(-4.5, 4.5, -4.5, 4.5))
axes[3].set_title("ρ_d")
show(fig, "fp_2d")
print("2-D JS over time:", np.round(np.asarray(sol2.diagnostics["js"]), 4))
