"""The test suite's own settings are on (``tests/conftest.py``, ``pyproject.toml``), so that
nobody turns them off silently: float64, rank promotion raising and a derandomized
hypothesis profile."""

import jax
import jax.numpy as jnp
import pytest
from hypothesis import settings


def test_float64_is_on():
    assert jax.config.jax_enable_x64
    assert jnp.zeros(1).dtype == jnp.float64


def test_rank_promotion_raises():
    assert jax.config.jax_numpy_rank_promotion == "raise"
    with pytest.raises(ValueError, match="rank_promotion"):
        jnp.ones(3) + jnp.ones((2, 3))
    # Written out, the same broadcast is fine.
    assert (jnp.ones(3)[None, :] + jnp.ones((2, 3))).shape == (2, 3)


def test_hypothesis_profile_is_derandomized():
    assert settings().derandomize
    assert settings().deadline is None
