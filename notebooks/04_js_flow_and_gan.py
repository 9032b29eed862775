# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
# ---

# %% [markdown]
# # The Jensen–Shannon flow on particles, and the GAN that simulates it (the setting of study J)
#
# Three levels, side by side (DESIGN §2):
#
# 1. the particle ODE `dY/dt = sigmoid(ℓ)∇ℓ`, `ℓ = log ρ_d − log ρ_t`, with the **exact**
#    drift (ρ_t read from the grid Fokker–Planck solution: the particles are its
#    characteristics);
# 2. the same ODE with the drift **estimated** from the particles (kernel density estimate,
#    or a neural discriminator trained by binary cross-entropy);
# 3. the **GAN**: a generator network fitted by mean squared error to the particles moved one
#    Euler step, `K` gradient steps per iteration (`K = 1` is the original GAN step).
#
# Then the affine GAN with the exact discriminator shows that one MSE step per iteration
# diverges (a period-doubling at η = λε = 2/s²) where exact least-squares fitting converges.
#
# Set `GANDYN_SMOKE=1` for a quick run with tiny sizes.

# %%
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt

import gandyn as gd

jax.config.update("jax_enable_x64", True)
SMOKE = os.environ.get("GANDYN_SMOKE") == "1"
OUT = Path(os.environ.get("GANDYN_NOTEBOOK_OUT", "notebooks/_out")) / "04"
OUT.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## Sanity values of DESIGN §2.2
# ρ_d = N(0, 1), ρ₀ = N(1, 1): ℓ(y) = (1 − 2y)/2, v(0) = −sigmoid(½), JS = 0.111421,
# E[v] = −0.397973 (expectations by Gauss–Hermite quadrature).

# %%
data, rho0 = gd.GaussianMixture([0.0]), gd.GaussianMixture([1.0])
exact = gd.ExactDrift(data, rho0)
q0, qd = rho0.quadrature(60), data.quadrature(60)
m0, md = gd.ParticleMeasure(q0.nodes, q0.weights), gd.ParticleMeasure(qd.nodes, qd.weights)
print("v(0)   =", float(exact.drift(jnp.zeros((1, 1)), m0)[0, 0]))
print("JS     =", float(gd.js_estimate(exact, m0, md)))
print("E[v]   =", float(q0.weights @ exact.drift(q0.nodes, m0)[:, 0]))

# %% [markdown]
# ## Levels 1 and 2: particles against the grid Fokker–Planck solution
# Bimodal data ρ_d = ½N(−1, ½²) + ½N(1, ½²), ρ₀ = N(2, ½²). Far from the data D* ≈ 0 and
# mass barely moves (the saturation of the original GAN loss). The exact drift tracks the
# grid within the CLT error of N particles; the estimated drifts add their own bias.

# %%
flow_size: dict[str, Any] = (
    dict(n_particles=200, t1=0.5, dt=0.05, n_saves=6, cells=100, disc_pretrain=100)
    if SMOKE
    else dict(n_particles=2000, t1=2.0, dt=0.02, n_saves=21, cells=400)
)
estimators = ["exact"] if SMOKE else ["exact", "kde", "neural"]
flows = {e: gd.run_experiment("js-flow-particles", estimator=e, **flow_size) for e in estimators}
for e, result in flows.items():
    s = result.summary
    print(
        f"{e:6s} mean {s['mean_final'][0]:.4f} (grid {s['mean_final_grid'][0]:.4f}, "
        f"SE {s['mean_standard_error']:.4f})  variance {s['variance_final'][0]:.4f} "
        f"(grid {s['variance_final_grid'][0]:.4f})  JS {s['js_final']:.4f} "
        f"(grid {s['js_final_grid']:.4f})"
    )

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
grid = next(iter(flows.values())).trajectory
for ax, key in zip(axes, ("mean", "variance", "js"), strict=True):
    ax.plot(grid["ts"], grid[f"grid_{key}"], "k--", lw=1.5, label="grid")
    for e, result in flows.items():
        ax.plot(result.trajectory["ts"], result.trajectory[f"diag_{key}"], lw=1, label=e)
    ax.set(xlabel="t", title=key)
axes[0].legend()
fig.tight_layout()
fig.savefig(OUT / "flow_vs_grid.png", dpi=110)

# %% [markdown]
# ## Level 3: the GAN on a ring of 8 Gaussians, K MSE steps per iteration
# The reference is the particle ODE with the kernel drift from the same initial points;
# iteration k corresponds to ODE time kε. One step (K = 1, the original GAN step) realises
# only λ × (generator kernel) of the intended displacement; persistent fitting realises more.

# %%
gan_size: dict[str, Any] = (
    dict(
        n_iter=10, snapshot_every=5, K_list=[1, 5], latent_quadrature=5, quadrature=3, gen_width=16
    )
    if SMOKE
    else {}
)
gan = gd.run_experiment("gan-as-ode", **gan_size)
for key, value in gan.summary.items():
    print(f"{key:34s} {value}")

# %%
from gandyn.plotting.js import plot_gan, plot_mse  # noqa: E402

plot_gan(gan, OUT)

# %% [markdown]
# ## MSE fitting alone diverges: the affine GAN with the exact discriminator
# G(z) = a z + b, z ~ N(0, s²), ρ_d = N(0, 1). Linearising at (a, b) = (1/s, 0) gives the
# eigenvalues μ_a = 1 − ηs², μ_b = 1 − η/2 for one MSE step (`gd.affine_gan_eigenvalues`,
# derived in `gandyn.solvers.affine_gan`): stable iff η < min(2/s², 4), then a 2-cycle of a.
# Exact least squares has μ_a = 1 − ε, μ_b = 1 − ε/2 whatever η and s.

# %%
mse_size: dict[str, Any] = (
    dict(n_eta=13, n_iter=1000, latent_scales=[1.25], refine=6) if SMOKE else {}
)
mse = gd.run_experiment("mse-divergence", **mse_size)
s = mse.summary
print(
    "threshold: measured",
    s["eta_threshold"],
    "± ",
    s["eta_threshold_resolution"],
    "| linear",
    s["eta_threshold_linear"],
    "| autodiff Jacobian",
    s["eta_threshold_jacobian"],
)
print("2-cycle at η =", s["cycle_eta"], ":", s["cycle_values"])
print(
    "least squares converges:",
    s["ls_converges"],
    "rate",
    s["ls_rate_measured"],
    "(linear",
    s["ls_rate_linear"],
    ")",
)
print(
    "by latent scale",
    s["latent_scales"],
    s["eta_threshold_by_scale"],
    "linear",
    s["eta_threshold_linear_by_scale"],
)
plot_mse(mse, OUT)
