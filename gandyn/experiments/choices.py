"""The configuration's names for strategies, and the objects they stand for: the one place
where a string becomes a strategy (DESIGN §4, rule 8). Experiments offer a table's names as
a ``Param``'s ``choices`` and look the chosen name up in it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from .._optax import ADAM, GRADIENT
from ..games import Minimax, NonSaturating, Wasserstein
from ..solvers.algorithm import Alternating, ClipAfter, ClipBefore, Simultaneous
from ..solvers.schemes import MUSCL, Upwind

LOSSES = {"wgan": Wasserstein(), "minimax": Minimax(), "nonsaturating": NonSaturating()}
SCHEMES = {"upwind": Upwind(), "muscl": MUSCL()}
UPDATES = {"alternating": Alternating(), "simultaneous": Simultaneous()}
CLIP_ORDERS = {"after": ClipAfter(), "before": ClipBefore()}
OPTIMIZERS = {"sgd": GRADIENT, "rmsprop": optax.scale_by_rms(), "adam": ADAM}
"""Optimizers without their step (the solvers append it): ``"sgd"`` is the gradient itself,
``"rmsprop"`` and ``"adam"`` optax's defaults."""


def identity(x):
    """The identity activation."""
    return x


ACTIVATIONS = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "softplus": jax.nn.softplus,
    "identity": identity,
}
"""Activations of units and networks (one function object each, so runs share compilations)."""
