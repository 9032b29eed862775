"""Hyper-parameter checks in two tiers: a concrete bad value is a ``ValueError`` at once, a
traced one (``jit``, ``vmap``) an ``eqx.error_if`` when the computation runs — never a
silent pass. Gradients go through the check unchanged."""

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

import gandyn as gd


def test_concrete_bad_value_raises_at_once_naming_the_key():
    with pytest.raises(ValueError, match=r"beta must be finite and > 0, got -2\.0"):
        gd.PenaltyClip(0.5, -2.0)
    with pytest.raises(ValueError, match="c must be finite and > 0"):
        gd.HardClip(float("nan"))


@pytest.mark.parametrize("bad", [-1.0, 0.0, float("inf"), float("nan")])
def test_traced_bad_value_raises_at_run_time_under_jit(bad):
    clip_level = eqx.filter_jit(lambda c: gd.HardClip(c).c)
    assert float(clip_level(0.5)) == 0.5
    with pytest.raises(eqx.EquinoxRuntimeError, match="c must be finite and > 0"):
        jax.block_until_ready(clip_level(bad))


def test_one_bad_value_in_a_vmapped_sweep_is_not_silent():
    betas = jnp.array([1.0, 10.0, -1.0])
    make = jax.jit(jax.vmap(lambda b: gd.PenaltyClip(0.5, b).beta))
    assert jnp.array_equal(make(betas[:2]), betas[:2])
    # under plain jax.jit the error reaches Python wrapped by XLA, with the message
    with pytest.raises(Exception, match="beta must be finite and > 0"):
        jax.block_until_ready(make(betas))


def test_the_check_does_not_change_gradients():
    # d/dc of the projection of 2.0 onto [-c, c] is 1 where the wall is active
    slope = jax.grad(lambda c: gd.HardClip(c).project(jnp.array([[2.0]]))[0, 0])(0.5)
    assert float(slope) == 1.0
