# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
# ---

# %% [markdown]
# # The WGAN algorithm beside its mean-field limit (the setting of study W)
#
# The literal algorithm (DESIGN §1.5): `n_critic` clipped critic steps of size η_D, then
# one generator step of size η_G, with the mean-field gradients `N ∂F/∂θ_i`. Step k is
# ODE time `t_k = k η_G` and `λ = n_critic η_D / η_G`. We run it and the mean-field ODE
# from the same initial particles and measure the gap:
#
# * full-batch sgd with simultaneous updates and one critic step **is** projected Euler;
# * the gap to the ODE shrinks like `N^{-1/2}` in the width (i.i.d. initial particles),
#   like `η` for full batch and like `√η` for minibatch sgd;
# * clipping before the critic step (the original WGAN code) lets the stored critic
#   overshoot the wall by one step, and an alternating generator step reads it unclipped.
#
# Set `GANDYN_SMOKE=1` for a quick run with tiny sizes.

# %%
import os
from pathlib import Path
from typing import Any

import jax
import matplotlib.pyplot as plt
import numpy as np

import gandyn as gd
from gandyn.experiments.toy import T2_PARAMS, build_t2
from gandyn.plotting.algorithm import (
    critic_histograms,
    plot_critic_comparison,
    plot_gaps,
    plot_observables,
)

jax.config.update("jax_enable_x64", True)
SMOKE = os.environ.get("GANDYN_SMOKE") == "1"
OUT = Path(os.environ.get("GANDYN_NOTEBOOK_OUT", "notebooks/_out")) / "02"
OUT.mkdir(parents=True, exist_ok=True)
size: dict[str, Any] = (
    dict(  # one width and one step: the pipeline runs, the slopes are undefined
        widths=[8],
        etas=[0.1],
        width_eta=0.1,
        seeds=2,
        t1=1.0,
        dt=0.01,
        reference_width=32,
        n_snapshots=3,
    )
    if SMOKE
    else {}
)

# %% [markdown]
# ## Toy T1: gap against width and step, full batch
#
# Defaults: T1 with walls at ±0.5 (first contact near t = 0.41, the critic collapses onto
# the wall, leaves it as one atom near t = 2.3), t1 = 4.5. The gap of a run is the sum
# over F, the generated mean and variance, the critic mean and the critic wall fraction of
# the time-averaged |algorithm − ODE|.

# %%
full = gd.run_experiment("mean-field-vs-sgd", **size)
for key in (
    "slope_width",
    "slope_width_ci95",
    "slope_eta",
    "slope_eta_ci95",
    "gap_full_batch_vs_projected_euler",
):
    print(f"{key:36s} {full.summary[key]}")
print(plot_gaps(full, OUT / "gaps_full_batch.png"))
print(plot_observables(full, OUT / "observables.png"))

# %% [markdown]
# ## Minibatch sgd: the gap in η becomes √η
#
# Batches of 64 points drawn each step from the ODE's own quadrature rules, so the
# expected gradient is the ODE's and the difference is sampling noise, which accumulates
# like a Brownian path: `O(√η)`. The wall fraction is the exception: an atom stuck on a
# wall leaves it for a step whenever a noisy gradient points inward, so at a fixed batch
# size its gap does not vanish with η (its slope is printed last). Smaller batches make
# the noise comparable to the box itself and the gap saturates.

# %%
mini = gd.run_experiment("mean-field-vs-sgd", batch_size=64, **size)
for key in (
    "slope_width",
    "slope_width_ci95",
    "slope_eta",
    "slope_eta_ci95",
    "slope_eta_wall_fraction",
):
    print(f"{key:36s} {mini.summary[key]}")
print(plot_gaps(mini, OUT / "gaps_minibatch.png"))

# %% [markdown]
# ## Finite-N critic particles against the mean-field critic measure (T1)
#
# Before the first contact the finite critic is a noisy copy of the ODE's; after it both
# have collapsed onto the wall, and then into one atom that leaves the wall.

# %%
times = (0.0, 0.5, 2.5) if not SMOKE else (0.0, 0.5, 1.0)
print(plot_critic_comparison(full, OUT / "critic_t1.png", times))

# %% [markdown]
# ## Toy T2 (tanh neurons): critic histograms before and after blow-up
#
# The same comparison for a real network: the critic's three parameters (α, β, b) of the
# ODE with many particles at quantiles, and of the algorithm at width N from i.i.d.
# particles, at a time before any contact and after mass has piled up on the walls.

# %%
t2_config = {key: p.default for key, p in T2_PARAMS.items()} | {
    "c": 0.5,
    "critic_init_low": -0.3,
    "critic_init_high": 0.3,
    "quadrature": 12,
}
width, reference_width = (16, 32) if SMOKE else (256, 2048)
t1_t2, eta_t2 = (0.5, 0.05) if SMOKE else (8.0, 0.01)
problem, state = build_t2(
    t2_config | {"n_gen": reference_width, "n_critic": reference_width, "init_sampling": "quantile"}
)
small_problem, small_state = build_t2(t2_config | {"n_gen": width, "n_critic": width})
snapshots = np.linspace(0.0, t1_t2, 5)
ode = gd.simulate(problem, state, t1=t1_t2, dt=eta_t2, snapshot_ts=snapshots)
sgd = gd.train_wgan(
    small_problem, small_state, gd.WGANAlgorithm(eta_t2), t1=t1_t2, snapshot_ts=snapshots
)
contact = gd.diagnostics.first_time(ode.ts, ode.diagnostics["wall_fraction"] > 0)
print("first wall contact of the ODE at t =", float(contact))

c = t2_config["c"]
fig, axes = plt.subplots(3, len(snapshots), figsize=(2.4 * len(snapshots), 6), squeeze=False)
bins = np.linspace(-1.05 * c, 1.05 * c, 36)
for s, t in enumerate(np.asarray(ode.snapshot_ts)):
    for j, name in enumerate(("α", "β", "b")):
        ax = axes[j, s]
        ode_nodes, sgd_nodes = ode.snapshots.critic[s, :, j], sgd.snapshots.critic[s, :, j]
        critic_histograms(ax, ode_nodes, sgd_nodes, bins, c, f"N = {width}")
        if s == 0:
            ax.set_ylabel(name)
    axes[0, s].set_title(f"t = {t:.2g}", fontsize=8)
axes[0, 0].legend(fontsize=6)
fig.suptitle(f"T2 critic parameters (first contact of the ODE at t ≈ {float(contact):.2g})")
fig.tight_layout()
fig.savefig(OUT / "critic_t2.png", dpi=110)
plt.close(fig)

# %% [markdown]
# ## Clip before or after the critic step
#
# With alternating updates the two orderings agree until the first wall contact. After
# it, clip-before stores critic parameters up to one step `η_D |∇|` past the wall, and
# the generator step reads them; clip-after keeps every coordinate in [−c, c].

# %%
t1_config = {key: p.default for key, p in gd.experiments.toy.T1_PARAMS.items()}
problem1, state1 = gd.experiments.toy.build_t1(t1_config | {"n_gen": 64, "n_critic": 64})
eta, horizon = (0.2, 2.0) if SMOKE else (0.1, 8.0)
runs = {
    name: gd.train_wgan(problem1, state1, gd.WGANAlgorithm(eta, clip=clip), t1=horizon)
    for name, clip in (("after", gd.ClipAfter()), ("before", gd.ClipBefore()))
}
fig, axes = plt.subplots(2, 1, figsize=(7, 4), sharex=True)
for clip, traj in runs.items():
    axes[0].plot(traj.ts, traj.diagnostics["critic_max_abs"], label=f"clip {clip}")
    axes[1].plot(traj.ts, traj.diagnostics["generated_mean"][:, 0], label=f"clip {clip}")
axes[0].axhline(t1_config["c"], color="r", lw=0.6)
axes[0].set_ylabel("max |ω|")
axes[1].set_ylabel("mean of G#γ")
axes[1].set_xlabel("t = k η_G")
axes[0].legend(fontsize=7)
fig.tight_layout()
fig.savefig(OUT / "clip_orders.png", dpi=110)
plt.close(fig)

# %% [markdown]
# ## What to expect at large N
#
# The gap falls like `N^{-1/2}` until it meets the discretization floor of the step:
# `O(η)` with full batches, `O(√η)` with minibatches. Past that width only a smaller
# step helps. One caveat of the clipped dynamics: on T1's limit cycle the single critic
# atom touches the wall tangentially (its orbit is `H = c²`), so whether it is "on the
# wall" is decided by the discretization; over horizons that include those grazing
# contacts the wall fraction's gap does not shrink with η.
