"""Particle measures, initial sampling and quadrature rules against closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import gandyn as gd


def test_quantile_sampling_is_the_quantiles_of_the_law():
    n = 11
    levels = (np.arange(n) + 0.5) / n
    normal = gd.sample_measure(jax.random.key(0), gd.Normal(1.5, 0.7), n, "quantile")
    np.testing.assert_allclose(normal.positions[:, 0], stats.norm.ppf(levels, 1.5, 0.7), rtol=1e-12)
    uniform = gd.sample_measure(jax.random.key(0), gd.Uniform(-0.2, 0.4), n, "quantile")
    np.testing.assert_allclose(uniform.positions[:, 0], -0.2 + 0.6 * levels, rtol=1e-12)
    np.testing.assert_allclose(normal.weights, np.full(n, 1 / n))


def test_quantile_sampling_in_3d_is_a_latin_hypercube():
    law = gd.Uniform(np.zeros(3), 1.0)
    positions = gd.sample_measure(jax.random.key(3), law, 16, "quantile").positions
    for k in range(3):  # every coordinate takes each level exactly once
        np.testing.assert_allclose(np.sort(positions[:, k]), (np.arange(16) + 0.5) / 16)
    assert not np.allclose(positions[:, 0], positions[:, 1])


def test_random_sampling_depends_on_the_key_and_bad_input_is_refused():
    law = gd.Normal(0.0, 1.0)
    a = gd.sample_measure(jax.random.key(0), law, 5).positions
    b = gd.sample_measure(jax.random.key(1), law, 5).positions
    assert not np.allclose(a, b)
    with pytest.raises(ValueError, match="positive"):
        gd.sample_measure(jax.random.key(0), law, 0)
    with pytest.raises(ValueError, match="allowed"):
        gd.sample_measure(jax.random.key(0), law, 3, "sobol")


@pytest.mark.parametrize("size", [1, 3, 8])
def test_gauss_hermite_is_exact_up_to_degree_2n_minus_1(size):
    rule = gd.Normal(0.3, 1.7).quadrature(size)
    for degree in range(2 * size):
        exact = stats.norm(0.3, 1.7).moment(degree)
        assert float(rule.weights @ rule.nodes[:, 0] ** degree) == pytest.approx(exact, rel=1e-10)


def test_mixture_rule_has_the_mixture_moments():
    means, weights, std = np.array([-1.0, 2.0]), np.array([0.25, 0.75]), 0.4
    rule = gd.GaussianMixture(means[:, None], weights, std).quadrature(6)
    mean = weights @ means
    var = weights @ (means**2 + std**2) - mean**2
    assert float(rule.mean()[0]) == pytest.approx(mean, rel=1e-12)
    assert float(rule.weights @ (rule.nodes[:, 0] - mean) ** 2) == pytest.approx(var, rel=1e-12)
    assert float(jnp.sum(rule.weights)) == pytest.approx(1.0, rel=1e-14)


def test_two_dimensional_rules_are_tensor_products():
    rule = gd.Normal([0.0, 1.0], [1.0, 2.0]).quadrature(5)
    assert rule.size == 25
    x, y = rule.nodes[:, 0], rule.nodes[:, 1] - 1.0
    assert float(rule.weights @ (x**2 * y**2)) == pytest.approx(4.0, rel=1e-12)
    uni = gd.Uniform([0.0, 0.0], [1.0, 2.0]).quadrature(4)
    assert float(uni.weights @ (uni.nodes[:, 0] ** 3 * uni.nodes[:, 1])) == pytest.approx(0.25)


def test_high_dimensional_rules_are_fixed_samples_and_need_a_key():
    law = gd.Normal(np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="needs a key"):
        law.quadrature(10)
    a, b = law.quadrature(10, jax.random.key(1)), law.quadrature(10, jax.random.key(1))
    np.testing.assert_array_equal(a.nodes, b.nodes)


def test_mixture_log_prob_matches_scipy():
    mix = gd.GaussianMixture([[0.0], [3.0]], [0.3, 0.7], [1.0, 0.5])
    for x in (-1.0, 0.5, 3.2):
        expected = np.log(0.3 * stats.norm.pdf(x, 0, 1) + 0.7 * stats.norm.pdf(x, 3, 0.5))
        assert float(mix.log_prob(jnp.array([x]))) == pytest.approx(expected, rel=1e-12)


def test_measure_shapes_are_checked():
    with pytest.raises(ValueError, match=r"shape \(n, p\)"):
        gd.ParticleMeasure(jnp.zeros(3))
    with pytest.raises(ValueError, match="weights"):
        gd.ParticleMeasure(jnp.zeros((3, 1)), jnp.ones(2))
