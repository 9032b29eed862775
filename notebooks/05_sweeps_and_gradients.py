# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
# ---

# %% [markdown]
# # Sweeps and gradients of outcomes (the setting of study W)
#
# `gandyn.sweep` runs an experiment on a whole grid of hyper-parameters in one compiled,
# vmapped call and returns an `xarray.Dataset`; `gandyn.grad_outcome` differentiates a
# summary number with respect to hyper-parameters through the ODE solve.
#
# 1. A (c, λ) heat-map of the first wall-contact (blow-up) time of toy T1 under hard
#    clipping, against the closed form of DESIGN §1.4.
# 2. A gradient loop on λ under *penalty* clipping (the smoothed model): hit a target
#    value of an outcome. Hard clipping's contact time is piecewise constant in a
#    fixed-step solve (its gradient is 0 almost everywhere), which is why the smoothed
#    model and a smooth outcome are used there.
#
# Set `GANDYN_SMOKE=1` for a quick run with tiny sizes.

# %%
import os
import time
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

import gandyn as gd

jax.config.update("jax_enable_x64", True)
SMOKE = os.environ.get("GANDYN_SMOKE") == "1"
OUT = Path(os.environ.get("GANDYN_NOTEBOOK_OUT", "notebooks/_out")) / "05"
OUT.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## 1. Blow-up time over (c, λ)
#
# T1 starts with the generator's mean y₀ = 1 above the data mean and the critic particles
# at the quantiles of Uniform[−0.1, 0.1] (mean ω̄₀ = 0). Off the walls
# ω̄(t) = −√λ y₀ sin(√λ t) and the critic translates rigidly, so the lowest particle
# (at −0.1 + 0.1/M) reaches the wall −c when sin(√λ t) = a/√λ with a = c − 0.1 + 0.1/M:
#
#     t* = arcsin(a/√λ)/√λ   if a ≤ √λ,   and never otherwise.
#
# One `gandyn.sweep` call runs the whole grid. Heun, not Euler: explicit Euler inflates the
# oscillator's amplitude by (1 + λ dt²)^{1/2} per step, which over a long horizon makes
# late contacts where the exact flow has none.

# %%
side = 5 if SMOKE else 32
n = 8 if SMOKE else 64
base = dict(clip="hard", solver="heun", n_gen=n, n_critic=n, n_snapshots=2)
base |= dict(quadrature=4 if SMOKE else 8)
base |= dict(t1=4.0, dt=0.05) if SMOKE else dict(t1=20.0, dt=0.01)
grid = {
    "c": [float(v) for v in np.linspace(0.15, 1.6, side)],
    "lam": [float(v) for v in np.linspace(0.25, 3.0, side)],
}
start = time.perf_counter()
ds = gd.sweep("toy-shift-linear", grid, base)
print(f"{side * side} runs in one compiled call: {time.perf_counter() - start:.1f} s")

c, lam = np.meshgrid(ds["c"].values, ds["lam"].values, indexing="ij")
a = c - 0.1 + 0.1 / n
ratio = a / np.sqrt(lam)
closed = np.where(ratio <= 1, np.arcsin(np.minimum(ratio, 1)) / np.sqrt(lam), np.nan)
contact = ds["first_contact_time"].transpose("c", "lam").values
both = np.isfinite(closed) & np.isfinite(contact)
print(
    f"contact in {np.isfinite(contact).sum()} of {contact.size} runs "
    f"(closed form: {np.isfinite(closed).sum()}); "
    f"max |swept − closed form| = {np.max(np.abs(contact - closed)[both]):.3g} "
    f"(step dt = {base['dt']}: contacts are read on the step grid)"
)

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
for ax, values, title in (
    (axes[0], contact, "first contact time (sweep)"),
    (axes[1], closed, "closed form t*"),
):
    mesh = ax.pcolormesh(ds["lam"].values, ds["c"].values, values, shading="nearest")
    fig.colorbar(mesh, ax=ax)
    lam_line = np.linspace(ds["lam"].values[0], ds["lam"].values[-1], 200)
    ax.plot(lam_line, np.sqrt(lam_line) + 0.1 - 0.1 / n, "w--", lw=1, label="a = √λ")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("λ")
axes[0].set_ylabel("c")
axes[0].legend(fontsize=7, loc="lower right")
fig.suptitle("T1, hard clipping: blow-up time (blank: the walls are never reached)", fontsize=9)
fig.tight_layout()
fig.savefig(OUT / "contact_time_heatmap.png", dpi=110)

# %% [markdown]
# ## 2. A gradient loop on λ in the smoothed model
#
# Under `PenaltyClip(c, β)` the dynamics are Lipschitz and every outcome built from smooth
# diagnostics has a gradient. Goal: choose the critic's time-scale λ so that at time T the
# generator's mean sits on the data mean, `final_y = 0`. The loop descends
# ½ (final_y − target)² in λ, with the Gauss–Newton step (the gradient divided by its
# curvature (∂ final_y/∂λ)²), which is Newton's method on the residual. Each iteration is
# one forward and one adjoint solve of the ODE, compiled once.

# %%
smooth = dict(clip="penalty", beta=20.0, c=0.3, n_gen=n, n_critic=n, quadrature=8, t1=4.0)
smooth |= dict(dt=0.05) if SMOKE else dict(dt=0.01)
target, lam_k, history = 0.0, 0.1, []
for _ in range(3 if SMOKE else 8):
    value, grad = gd.value_and_grad_outcome(
        "toy-shift-linear", "final_y", ["lam"], smooth | {"lam": lam_k}
    )
    history.append((lam_k, value))
    print(f"λ = {lam_k:.10f}   final_y = {value:+.3e}   ∂/∂λ = {grad['lam']:+.4f}")
    if abs(value - target) < 1e-12:
        break
    lam_k = max(lam_k - (value - target) / grad["lam"], 1e-3)

# %% [markdown]
# A sweep over λ (the forward runs alone, vmapped) shows the curve the loop walked on and
# checks its last iterate independently of the gradient code.

# %%
lams = np.union1d(np.linspace(0.05, 0.6, 6 if SMOKE else 24), [lam_k])
scan = gd.sweep("toy-shift-linear", {"lam": [float(v) for v in lams]}, smooth)
print(f"sweep at λ = {lam_k:.10f}: final_y = {float(scan['final_y'].sel(lam=lam_k)):+.3e}")
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(lams, scan["final_y"].values, label="final_y over λ (sweep)")
ax.plot(*zip(*history, strict=True), "o-", ms=4, label="gradient loop iterates")
ax.axhline(target, color="k", lw=0.6)
ax.set_xlabel("λ")
ax.set_ylabel("y(T)")
ax.legend(fontsize=8)
ax.set_title("PenaltyClip(c = 0.3, β = 20): λ with y(T) = 0", fontsize=9)
fig.tight_layout()
fig.savefig(OUT / "gradient_loop.png", dpi=110)
print(f"figures in {OUT}")
