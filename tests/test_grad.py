"""Gradients of outcomes equal central finite differences (float64), through the ODE's
``diffeqsolve`` and through the literal algorithm's ``lax.scan``.

Central differences with step ``h = 1e-5 |x|`` have truncation error ``O(h²)`` and
round-off ``O(ε/h)``, both far below the stated relative tolerance ``RTOL = 1e-6``.
"""

import math
from typing import Any

import jax
import pytest
from _small import SMALL

import gandyn as gd
from gandyn.experiments import Experiment, Result, RunOptions, resolve_config
from gandyn.experiments.toy import T1_PARAMS, build_t1
from gandyn.sweep import grad_outcome, value_and_grad_outcome

RTOL = 1e-6
PENALTY: dict[str, Any] = SMALL | {"clip": "penalty", "beta": 8.0, "init_sampling": "random"}


def _central(f, at, key):
    h = 1e-5 * abs(at[key])
    return (f(at | {key: at[key] + h}) - f(at | {key: at[key] - h})) / (2 * h)


def test_ode_gradients_match_central_differences():
    at = PENALTY | {"c": 0.12, "lam": 2.0, "seed": 3}
    outcome = "data_distance_final"
    wrt = ["lam", "c", "beta"]
    value, grads = value_and_grad_outcome("toy-shift-linear", outcome, wrt, at)

    def run(config):
        return gd.run_experiment("toy-shift-linear", **config).summary[outcome]

    assert value == pytest.approx(run(at), rel=1e-12)
    for key in wrt:
        fd = _central(run, at, key)
        assert abs(fd) > 1e-3, key  # a gradient that matters
        assert grads[key] == pytest.approx(fd, rel=RTOL), key


@pytest.mark.slow
def test_ode_gradients_of_other_outcomes_and_smooth_clip():
    at = SMALL | {"clip": "smooth", "beta": 20.0, "c": 0.15, "seed": 1, "lam": 1.3}
    at |= {"gen_init_mean": 0.8, "critic_init_high": 0.12}
    for outcome, wrt in (
        ("invariant_final", ["gen_init_mean", "critic_init_high"]),
        ("value_final", ["c", "lam"]),
    ):
        grads = grad_outcome("toy-shift-linear", outcome, wrt, at)
        for key in wrt:
            fd = _central(
                lambda c, o=outcome: gd.run_experiment("toy-shift-linear", **c).summary[o],
                at,
                key,
            )
            assert abs(fd) > 1e-3, (outcome, key)
            assert grads[key] == pytest.approx(fd, rel=RTOL), (outcome, key)


STEP = gd.WGANAlgorithm(PENALTY["dt"], n_critic=2)  # built outside traces: its η_G is concrete


def _algorithm_outcomes(config):
    """Outcomes of the literal algorithm (full-batch sgd, ``η_G = 0.05``) on toy T1."""
    problem, state = build_t1(config)
    trajectory = gd.train_wgan(problem, state, STEP, t1=config["t1"])
    diagnostics = trajectory.diagnostics
    return {
        "value_final": diagnostics["value"][-1],
        "critic_mean_final": diagnostics["critic_mean"][-1, 0],
    }


def _not_run(config: dict[str, Any], options: RunOptions) -> Result:
    raise AssertionError("only the outcomes of this experiment are used")


ALGORITHM = Experiment(
    "toy-sgd", "T1 trained by the algorithm.", T1_PARAMS, _not_run, outcomes=_algorithm_outcomes
)


def test_algorithm_gradients_match_central_differences():
    at = PENALTY | {"c": 0.12, "lam": 1.5}
    wrt = ["lam", "c"]
    grads = grad_outcome(ALGORITHM, "critic_mean_final", wrt, at)
    config = resolve_config(ALGORITHM, at)
    outcome = jax.jit(lambda point: _algorithm_outcomes(config | point)["critic_mean_final"])

    def run(point):
        return float(outcome(point))

    for key in wrt:
        fd = _central(run, {k: at[k] for k in wrt}, key)
        assert abs(fd) > 1e-3, key
        assert grads[key] == pytest.approx(fd, rel=RTOL), key


@pytest.mark.parametrize(
    ("wrt", "match"),
    [
        (["seed"], "seed: an integer key has no derivative"),
        (["clip"], "clip: a discrete key has no derivative"),
        (["n_gen"], "n_gen: an integer key"),
        (["t1"], "t1: cannot be swept or differentiated"),
        (["nope"], "unknown key 'nope'"),
        ([], "wrt: give one or more distinct keys"),
    ],
)
def test_bad_gradient_requests_are_refused(wrt, match):
    with pytest.raises(gd.ConfigError, match=match):
        grad_outcome("toy-shift-linear", "value_final", wrt, SMALL)


@pytest.mark.slow
def test_first_contact_time_gradient_is_that_of_the_crossing_inside_the_step():
    """Tracked at every step and interpolated inside it, the contact time moves continuously
    with the keys (it was the first save on the wall, with gradient zero)."""
    at: dict[str, Any] = PENALTY | {"c": 0.12, "lam": 1.0}
    outcome = "first_contact_time"
    grads = grad_outcome("toy-shift-linear", outcome, ["c", "lam"], at)

    def run(config):
        return gd.run_experiment("toy-shift-linear", **config).summary[outcome]

    assert math.isfinite(run(at))
    for key in ("c", "lam"):
        fd = _central(run, at, key)
        assert abs(fd) > 1e-2, key
        assert grads[key] == pytest.approx(fd, rel=RTOL), key


def test_interpolated_contact_time_is_the_smooth_surrogate():
    """Its gradient matches central differences where the plain contact time's is zero."""
    at: dict[str, Any] = SMALL | {"clip": "penalty", "beta": 50.0, "c": 0.3, "lam": 1.0, "dt": 0.01}
    outcome = "contact_time_interpolated"
    grads = grad_outcome("toy-shift-linear", outcome, ["c", "lam"], at)

    def run(config):
        return gd.run_experiment("toy-shift-linear", **config).summary[outcome]

    for key in ("c", "lam"):
        fd = _central(run, at, key)
        assert abs(fd) > 1e-2, key
        assert grads[key] == pytest.approx(fd, rel=1e-5), key
