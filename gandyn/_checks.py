"""Input checks shared by the modules that take user hyper-parameters.

Two of diffrax's three error tiers: a concrete bad value raises ``ValueError`` at once
(trace time); a traced one (under ``jit``, ``vmap``, ``grad``) is checked by
``eqx.error_if`` when the computation runs, so a bad value in a sweep never passes
silently.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._types import Array, ScalarLike


def positive(name: str, value: ScalarLike | Array) -> Array:
    """``value`` as a float array whose every entry must be finite and ``> 0``:
    ``ValueError`` naming ``name`` if it is concrete and is not; an ``eqx.error_if`` on
    the array if it is traced."""
    array = jnp.asarray(value, dtype=float)
    try:
        concrete = np.asarray(array)
    except jax.errors.TracerArrayConversionError:
        return eqx.error_if(array, ~jnp.all(jnp.isfinite(array) & (array > 0)), _message(name))
    if not (np.all(np.isfinite(concrete)) and np.all(concrete > 0)):
        raise ValueError(f"{_message(name)}, got {concrete.tolist()}")
    return array


def _message(name: str) -> str:
    return f"{name} must be finite and > 0"


def strategy(name: str, value, kind: type):
    """``value`` if it is a ``kind`` (a strategy's base class, e.g. ``AbstractLoss``), else
    ``TypeError`` naming ``name``: names of strategies are for the configuration only."""
    if not isinstance(value, kind):
        raise TypeError(f"{name} must be an instance of {kind.__name__}, got {value!r}")
    return value
