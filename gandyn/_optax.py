"""Optimizers are optax transformations without their step; gandyn appends it (:func:`descent`)
so that the step stays a traced array (``vmap`` and ``grad`` over it work).

``jit`` tells optax transformations apart by their functions, so the defaults are single
objects (:data:`GRADIENT`, :data:`ADAM`): runs built with them share their compilations.
"""

from __future__ import annotations

import optax

from ._types import ScalarLike

GRADIENT = optax.identity()
"""The gradient itself: with the step, plain gradient descent (``optax.sgd``)."""
ADAM = optax.scale_by_adam()
"""Adam's direction: with the step, ``optax.adam`` (default settings)."""


def descent(
    optimizer: optax.GradientTransformation, step: ScalarLike
) -> optax.GradientTransformation:
    """``optimizer`` followed by the step ``−step`` (``optax.scale_by_learning_rate``):
    ``descent(optax.scale_by_adam(), η)`` updates as ``optax.adam(η)`` does, bit for bit."""
    return optax.chain(optimizer, optax.scale_by_learning_rate(step))
