"""Input checks shared by the modules that take user hyper-parameters."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ._types import Array, ScalarLike


def positive(name: str, value: ScalarLike | Array) -> Array:
    """``value`` as a float array; ``ValueError`` naming ``name`` unless every entry is
    finite and ``> 0``. Checked when concrete; traced values (``vmap``, ``grad``) pass."""
    array = jnp.asarray(value, dtype=float)
    try:
        concrete = np.asarray(array)
    except jax.errors.TracerArrayConversionError:
        return array
    if not (np.all(np.isfinite(concrete)) and np.all(concrete > 0)):
        raise ValueError(f"{name} must be finite and > 0, got {concrete.tolist()}")
    return array
