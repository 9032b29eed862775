"""Constraints: the box projection, the projected field, the two smoothings."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

import gandyn as gd

finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False)
params = arrays(np.float64, (6, 3), elements=finite)


@settings(max_examples=40, deadline=None)
@given(params, params, st.floats(0.01, 5.0))
def test_projection_is_idempotent_nonexpansive_and_in_the_box(a, b, c):
    clip = gd.HardClip(c)
    pa, pb = clip.project(jnp.asarray(a)), clip.project(jnp.asarray(b))
    np.testing.assert_array_equal(clip.project(pa), pa)
    assert float(jnp.max(jnp.abs(pa))) <= c
    assert float(jnp.linalg.norm(pa - pb)) <= float(np.linalg.norm(a - b)) + 1e-12


def test_penalty_velocity_is_moreau_yosida():
    pen = gd.PenaltyClip(0.5, 20.0)
    u = jnp.array([[0.7, -0.2, -0.9]])
    v = jnp.ones((1, 3))
    np.testing.assert_allclose(pen.velocity(u, v), [[1 - 20 * 0.2, 1.0, 1 + 20 * 0.4]])


@pytest.mark.parametrize("beta", [2.0, 20.0, 200.0])
def test_smooth_clip_is_invertible_tends_to_clip_and_has_the_right_slope(beta):
    smooth = gd.SmoothClip(0.5, beta)
    u = jnp.linspace(-3, 3, 601)[:, None]
    omega = smooth.observe(u)
    assert float(jnp.max(jnp.abs(omega))) <= 0.5 + 1e-12  # < c up to round-off
    # sup |s_β − clip| ≤ log(2)/β (attained at the walls)
    assert float(jnp.max(jnp.abs(omega - jnp.clip(u, -0.5, 0.5)))) <= np.log(2) / beta + 1e-12
    slope = jax.vmap(jax.grad(lambda x: smooth.observe(x[None, None])[0, 0]))(u[:, 0])
    np.testing.assert_allclose(smooth.slope(u)[:, 0], slope, rtol=1e-10, atol=1e-14)
    inside = jnp.linspace(-0.499, 0.499, 51)[:, None]
    np.testing.assert_allclose(smooth.observe(smooth.to_state(inside)), inside, atol=1e-12)


@pytest.mark.parametrize(
    "make",
    [
        lambda: gd.HardClip(0.0),
        lambda: gd.PenaltyClip(1.0, -1.0),
        lambda: gd.SmoothClip(float("nan"), 1.0),
    ],
)
def test_bad_constants_are_refused(make):
    with pytest.raises(ValueError, match="finite and > 0"):
        make()


def test_constants_are_traced_so_they_can_be_vmapped():
    cs = jnp.array([0.1, 0.5, 2.0])
    out = jax.vmap(lambda c: gd.HardClip(c).project(jnp.array([[1.0, -3.0]])))(cs)
    np.testing.assert_allclose(out[:, 0], [[0.1, -0.1], [0.5, -0.5], [1.0, -2.0]])
