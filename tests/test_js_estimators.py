"""Each drift estimator owns its part of the JS flow: the particles' velocity ``c v`` against
its closed form, and the parameters that move with the particles (a neural drift's ``φ``,
at the gradient of the BCE objective, checked by central finite differences)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gandyn as gd

DATA = gd.GaussianMixture([0.0])
CURRENT = gd.GaussianMixture([1.0])


def measure(law, size=12):
    rule = law.quadrature(size)
    return gd.ParticleMeasure(rule.nodes, rule.weights)


@pytest.mark.parametrize(("normalisation", "c"), [("v", 1.0), ("js", 0.5)])
def test_exact_velocity_is_c_sigmoid_logit_times_its_gradient(normalisation, c):
    """ρ_d = N(0, 1), ρ_t = N(1, 1): ℓ(y) = 1/2 − y, so c v(y) = −c sigmoid(1/2 − y)."""
    particles = measure(CURRENT)
    y = particles.positions
    velocity = gd.ExactDrift(DATA, CURRENT).velocity(y, particles, normalisation=normalisation)
    np.testing.assert_allclose(velocity, -c * jax.nn.sigmoid(0.5 - y), rtol=1e-12)


@pytest.mark.parametrize("estimator", [gd.ExactDrift(DATA, CURRENT), gd.KDEDrift(DATA)])
def test_estimators_without_parameters_carry_none_through_the_flow(estimator):
    particles, data = measure(CURRENT), measure(DATA)
    assert estimator.parameters() is None
    assert estimator.with_parameters(None) is estimator
    assert estimator.parameter_velocity(data, particles) is None
    problem = gd.JSFlowProblem(estimator, data, particles.weights, rate=3.0)
    assert problem.vector_field(0.0, problem.initial_state(particles.positions)).parameters is None


def _directional_fd(objective, params, direction, h=1e-5):
    def shifted(sign):
        return jax.tree.map(lambda p, u: p + sign * h * u, params, direction)

    return (objective(shifted(1.0)) - objective(shifted(-1.0))) / (2 * h)


def test_neural_parameters_move_at_rate_times_the_bce_gradient():
    """The parameter part of the flow's vector field, read along a random direction ``u``,
    equals ``rate × d/dh objective(φ + h u)`` by central differences."""
    disc = gd.Discriminator(1, 8, 2, key=jax.random.key(0))
    estimator = gd.NeuralDrift(disc)
    particles, data = measure(CURRENT), measure(DATA)
    params = estimator.parameters()
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(1), len(leaves))
    direction = jax.tree.unflatten(
        treedef, [jax.random.normal(k, leaf.shape) for k, leaf in zip(keys, leaves, strict=True)]
    )

    def objective(p):
        return gd.discriminator_objective(
            estimator.with_parameters(p).discriminator, data, particles
        )

    expected = _directional_fd(objective, params, direction)
    rate = 2.5
    problem = gd.JSFlowProblem(estimator, data, particles.weights, rate=rate)
    d_params = problem.vector_field(0.0, problem.initial_state(particles.positions)).parameters
    along = sum(
        jnp.vdot(g, u)
        for g, u in zip(jax.tree.leaves(d_params), jax.tree.leaves(direction), strict=True)
    )
    np.testing.assert_allclose(along, rate * expected, rtol=1e-7)
    # the parameters read back into the estimator give the discriminator's own logits
    y = particles.positions
    np.testing.assert_array_equal(
        jax.vmap(estimator.with_parameters(params).discriminator)(y), jax.vmap(disc)(y)
    )
