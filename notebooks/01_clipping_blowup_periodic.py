# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
# ---

# %% [markdown]
# # Clipping, blow-up and periodic orbits (the setting of study W)
#
# Toy T1 (shift generator, linear critic, DESIGN §1.4) and toy T2 (tanh neurons) under
# the three critic constraints: hard clipping (projection), penalty clipping
# (Moreau–Yosida, parameter β) and smooth clipping (reparametrisation ω = s_β(u)).
#
# * Off the walls T1 is a harmonic oscillator of period 2π/√λ.
# * Hard clipping stops critic particles on the walls and merges them: the critic density
#   blows up at the first contact time, and the motion settles on a periodic orbit.
# * Penalty clipping lets particles overshoot the wall by about v/β: no merging in finite
#   time, and it tends to hard clipping as β grows.
# * Smooth clipping agrees with hard clipping up to the first contact, then lags
#   (hysteresis): u creeps past the wall and needs time to come back.
#
# Set `GANDYN_SMOKE=1` for a quick run with tiny sizes.

# %%
import os
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

import gandyn as gd

jax.config.update("jax_enable_x64", True)
SMOKE = os.environ.get("GANDYN_SMOKE") == "1"
OUT = Path(os.environ.get("GANDYN_NOTEBOOK_OUT", "notebooks/_out")) / "01"
OUT.mkdir(parents=True, exist_ok=True)
size = dict(n_gen=8, n_critic=8, t1=4.0, quadrature=4) if SMOKE else dict(t1=40.0)

# %% [markdown]
# ## T1 under the three constraints

# %%
runs = {
    clip: gd.run_experiment(
        "toy-shift-linear", clip=clip, beta=200.0, solver="heun", dt=0.005, **size
    )
    for clip in ("none", "hard", "penalty", "smooth")
}
for clip, result in runs.items():
    s = result.summary
    print(
        f"{clip:8s} first contact {s['first_contact_time']}  period {s['period']}  "
        f"H: {s['invariant_initial']:.4f} -> {s['invariant_final']:.4f}  "
        f"critic width {s['critic_support_width_final']:.2e}"
    )

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
for clip, result in runs.items():
    traj, cfg = result.trajectory, result.config
    data_mean = np.dot(cfg["data_means"], cfg["data_weights"]) / np.sum(cfg["data_weights"])
    y = traj["diag_generated_mean"][:, 0] - data_mean
    axes[0].plot(y, traj["diag_critic_mean"][:, 0], lw=0.8, label=clip)
    axes[1].plot(traj["ts"], traj["diag_invariant"], lw=0.8, label=clip)
c = runs["hard"].config["c"]
for ax in axes[:1]:
    ax.axhline(c, color="r", lw=0.5)
    ax.axhline(-c, color="r", lw=0.5)
axes[0].set(xlabel="y = mean(G) − mean(data)", ylabel="ω̄", title="phase portraits")
axes[1].axhline(c**2, color="g", ls="--", lw=0.6)
axes[1].set(xlabel="t", ylabel="H = λy² + ω̄²", title="invariant (green: c², one atom)")
axes[0].legend()
fig.tight_layout()
fig.savefig(OUT / "t1_phase_and_invariant.png", dpi=110)

# %% [markdown]
# ## Blow-up: the critic collapses on the wall
# Histograms of the critic parameters at the snapshots of the hard-clipped run: the
# spread measure at t = 0 becomes atoms on the walls.

# %%
from gandyn.plotting.toy import plot_critic_histograms  # noqa: E402

plot_critic_histograms(runs["hard"], OUT / "t1_hard_critic_histograms.png")

# %% [markdown]
# ## Penalty clipping approaches hard clipping as β grows

# %%
betas = [5.0, 50.0] if SMOKE else [5.0, 20.0, 80.0, 320.0]
hard = gd.run_experiment("toy-shift-linear", clip="hard", solver="heun", dt=0.001, **size)
errors = []
for beta in betas:
    pen = gd.run_experiment(
        "toy-shift-linear", clip="penalty", beta=beta, solver="heun", dt=0.001, **size
    )
    errors.append(
        np.max(np.abs(pen.trajectory["diag_critic_mean"] - hard.trajectory["diag_critic_mean"]))
    )
print("beta:", betas, "max |ω̄_penalty − ω̄_hard|:", np.round(errors, 5))
fig, ax = plt.subplots(figsize=(4.5, 3.5))
ax.loglog(betas, errors, "o-")
ax.set(xlabel="β", ylabel="sup_t |ω̄_β − ω̄_hard|", title="penalty → hard")
fig.tight_layout()
fig.savefig(OUT / "penalty_convergence.png", dpi=110)

# %% [markdown]
# ## T2: tanh neurons, hard clipping
# Critic parameters pile on the faces of the box [−c, c]³ and the distance of the
# generated law to the data keeps oscillating.

# %%
t2_size = dict(n_gen=16, n_critic=16, t1=3.0, quadrature=6) if SMOKE else {}
t2 = {
    clip: gd.run_experiment("neuron-bimodal-1d", clip=clip, beta=100.0, **t2_size)
    for clip in ("hard", "smooth")
}
fig, axes = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
for clip, result in t2.items():
    traj = result.trajectory
    axes[0].plot(traj["ts"], traj["diag_wall_fraction"], label=clip)
    axes[1].plot(traj["ts"], traj["diag_data_distance"], label=clip)
axes[0].set_ylabel("critic mass on a wall")
axes[1].set(xlabel="t", ylabel="W1(generated, data)")
axes[0].legend()
fig.tight_layout()
fig.savefig(OUT / "t2_walls_and_distance.png", dpi=110)
print({clip: r.summary["wall_fraction_max"] for clip, r in t2.items()})
