"""Linear stability of the GAN-as-ODE iteration (:mod:`gandyn.solvers.gan_as_ode`) for the
affine generator at its fixed point.

Generator ``G(z) = a z + b``, latent ``z ~ N(0, s²)``, data ``ρ_d = N(0, 1)``, exact
discriminator: ``ρ_t = N(b, σ²)`` with ``σ = |a| s``, ``ℓ(y) = −y²/2 + (y − b)²/(2σ²) + log σ``,
drift ``c v`` with ``v = sigmoid(ℓ) ℓ'`` (``c = 1`` for ``v``, ½ for ``js``). Fixed point:
``a = 1/s``, ``b = 0`` (``ℓ ≡ 0``). Write ``a = (1 + α)/s``. To first order
``sigmoid(ℓ) ℓ' = ½ ℓ'`` (``ℓ₀' ≡ 0``) and ``ℓ'(y) = −2α y − b``; at ``y = z/s =: u ~ N(0,1)``:

    E[v z] = −α s,    E[v] = −b/2.

The MSE ``½E|a z + b − ζ|²`` has Hessian ``H = diag(s², 1)`` in ``(a, b)`` and its exact
least-squares solution moves ``(a, b)`` by ``Δ_LS = (cε E[v z]/s², cε E[v])``. ``K`` gradient
steps of rate ``λ`` realise ``(I − (I − λH)^K) Δ_LS``, so the one-iteration map has the
eigenvalues (directions ``α`` and ``b``)

    μ_a = 1 − cε [1 − (1 − λ s²)^K],      μ_b = 1 − (cε/2) [1 − (1 − λ)^K].

``K = 1`` (the GAN step, ``η = λε``): ``μ_a = 1 − cη s²``, ``μ_b = 1 − cη/2``; stable iff
``η < η* = min(2/s², 4)/c`` — ``η* = 2`` for ``s = 1``, ``v``. At ``η*`` (``s² > ½``) ``μ_a``
crosses −1: a period-doubling bifurcation, and the iteration settles on a 2-cycle of ``a``
around ``1/s`` (``b → 0``; measured half-width ≈ 0.33 √(η − η*) at ``s = 1``); further
above come higher periods and irregular orbits. The stiffness of the ``a`` direction grows
with ``s²`` (the latent scale sets ``∂G/∂a = z``): that is what one step of MSE fitting
overshoots. Exact least squares (the limit ``K → ∞`` when ``λ max(s², 1) < 2``) gives
``μ_a = 1 − cε``, ``μ_b = 1 − cε/2`` — independent of ``λ`` and
``s``: it converges for every ``η`` whenever the Euler step itself is stable (``cε < 2``).
"""

from __future__ import annotations

import numpy as np


def affine_gan_eigenvalues(eta, eps, scale, K: int, c: float):
    """Closed-form eigenvalues ``(μ_a, μ_b)`` of the affine GAN map at its fixed point."""
    lam = np.asarray(eta) / eps
    mu_a = 1 - c * eps * (1 - (1 - lam * scale**2) ** K)
    mu_b = 1 - 0.5 * c * eps * (1 - (1 - lam) ** K)
    return mu_a, mu_b


def affine_gan_threshold(eps: float, scale: float, K: int, c: float) -> float:
    """Smallest ``η`` with ``max(|μ_a|, |μ_b|) ≥ 1`` (bisection on the closed form)."""

    def unstable(eta):
        mu_a, mu_b = affine_gan_eigenvalues(eta, eps, scale, K, c)
        return np.maximum(np.abs(mu_a), np.abs(mu_b)) >= 1

    grid = np.linspace(1e-6, 8 * max(1.0, scale**-2) / c, 200_001)
    hi = grid[np.argmax(unstable(grid))]
    lo = hi - (grid[1] - grid[0])
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if unstable(mid) else (mid, hi)
    return float(hi)
