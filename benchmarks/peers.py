"""Peer baselines: the mean-field WGAN velocities written by hand in NumPy and PyTorch.

What a competent user writes without gandyn, for tanh neuron units (generator
``Φ(θ, z) = a tanh(w·z + b)``, critic ``Ψ(ω, x) = α tanh(β·x + b)``) and the WGAN loss:
whole-array matmuls, ``N × quadrature`` intermediates, closed-form gradients. PyTorch is
optional: :func:`torch_or_none` returns ``None`` (and a reason) when it is not installed.

Shapes: generator particles ``(N, K + L + 1)`` with weights ``(N,)``, critic particles
``(M, K + 2)`` with weights ``(M,)``, latent nodes ``(Q, L)``, data nodes ``(Q', K)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Case:
    """Everything the velocities depend on, as plain float arrays (NumPy)."""

    gen: np.ndarray
    gen_weights: np.ndarray
    critic: np.ndarray
    critic_weights: np.ndarray
    latent: np.ndarray
    latent_weights: np.ndarray
    data: np.ndarray
    data_weights: np.ndarray
    lam: float

    @property
    def data_dim(self) -> int:
        return self.data.shape[1]

    @classmethod
    def from_game(cls, game, gen, critic) -> Case:
        """The case of a gandyn ``MeanFieldGame`` with neuron units and measures."""
        return cls(
            *(
                np.asarray(a)
                for a in (
                    gen.positions,
                    gen.weights,
                    critic.positions,
                    critic.weights,
                    game.latent.nodes,
                    game.latent.weights,
                    game.data.nodes,
                    game.data.weights,
                )
            ),
            lam=float(game.lam),
        )


def numpy_velocities(case: Case, gen: np.ndarray, critic: np.ndarray):
    """``(V_G (N, p), V_D (M, q))`` at the particles, vectorised NumPy."""
    k = case.data_dim
    a, w, b = gen[:, :k], gen[:, k:-1], gen[:, -1:]
    alpha, beta, c = critic[:, :1], critic[:, 1 : 1 + k], critic[:, -1:]
    s = np.tanh(w @ case.latent.T + b)  # (N, Q)
    y = s.T @ (case.gen_weights[:, None] * a)  # (Q, K) = G(z)
    t = np.tanh(beta @ y.T + c)  # (M, Q)
    va = case.critic_weights[:, None] * alpha  # (M, 1)
    grad_d = ((1 - t * t) * va).T @ beta  # (Q, K) = ∇D(G(z))
    g = -case.latent_weights[:, None] * grad_d  # ∂F/∂y
    u = (a @ g.T) * (1 - s * s)  # (N, Q)
    v_gen = -np.concatenate([s @ g, u @ case.latent, u.sum(1, keepdims=True)], axis=1)
    nodes = np.concatenate([case.data, y])
    coef = np.concatenate([case.data_weights, -case.latent_weights])
    t_all = np.tanh(beta @ nodes.T + c)  # (M, Q' + Q)
    e = alpha * (1 - t_all * t_all) * coef
    v_critic = np.concatenate([t_all @ coef[:, None], e @ nodes, e.sum(1, keepdims=True)], 1)
    return v_gen, case.lam * v_critic


def numpy_run(case: Case, steps: int, dt: float, c: float):
    """``steps`` projected Euler steps (simultaneous updates, critic clipped to ``[−c, c]``)."""
    gen, critic = case.gen.copy(), case.critic.copy()
    dt = np.asarray(dt, dtype=gen.dtype)
    for _ in range(steps):
        v_gen, v_critic = numpy_velocities(case, gen, critic)
        gen = gen + dt * v_gen
        critic = np.clip(critic + dt * v_critic, -c, c)
    return gen, critic


def torch_or_none() -> tuple[Any, str]:
    """``(torch, "")`` if PyTorch imports, else ``(None, reason)``."""
    try:
        import torch
    except ImportError as err:
        return None, f"PyTorch column skipped: {err}"
    return torch, ""


class TorchPeer:
    """The same computation in eager PyTorch on the CPU (tensors converted once)."""

    def __init__(self, case: Case):
        torch, reason = torch_or_none()
        if torch is None:
            raise RuntimeError(reason)
        self.torch = torch
        self.k = case.data_dim
        self.lam = case.lam

        def t(array: np.ndarray):
            return torch.from_numpy(np.array(array))

        self.gen_weights, self.critic_weights = t(case.gen_weights), t(case.critic_weights)
        self.latent, self.latent_weights = t(case.latent), t(case.latent_weights)
        self.data, self.data_weights = t(case.data), t(case.data_weights)
        self.gen, self.critic = t(case.gen), t(case.critic)

    def velocities(self, gen, critic):
        """``(V_G, V_D)`` as tensors."""
        torch, k = self.torch, self.k
        with torch.no_grad():
            a, w, b = gen[:, :k], gen[:, k:-1], gen[:, -1:]
            alpha, beta, c = critic[:, :1], critic[:, 1 : 1 + k], critic[:, -1:]
            s = torch.tanh(w @ self.latent.T + b)
            y = s.T @ (self.gen_weights[:, None] * a)
            t = torch.tanh(beta @ y.T + c)
            va = self.critic_weights[:, None] * alpha
            grad_d = ((1 - t * t) * va).T @ beta
            g = -self.latent_weights[:, None] * grad_d
            u = (a @ g.T) * (1 - s * s)
            v_gen = -torch.cat([s @ g, u @ self.latent, u.sum(1, keepdim=True)], 1)
            nodes = torch.cat([self.data, y])
            coef = torch.cat([self.data_weights, -self.latent_weights])
            t_all = torch.tanh(beta @ nodes.T + c)
            e = alpha * (1 - t_all * t_all) * coef
            v_critic = torch.cat([t_all @ coef[:, None], e @ nodes, e.sum(1, keepdim=True)], 1)
            return v_gen, self.lam * v_critic

    def run(self, steps: int, dt: float, c: float):
        """``steps`` projected Euler steps, as :func:`numpy_run`."""
        gen, critic = self.gen.clone(), self.critic.clone()
        for _ in range(steps):
            v_gen, v_critic = self.velocities(gen, critic)
            gen = gen + dt * v_gen
            critic = self.torch.clamp(critic + dt * v_critic, -c, c)
        return gen, critic
