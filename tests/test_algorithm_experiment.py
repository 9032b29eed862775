"""Experiment ``mean-field-vs-sgd``: configuration checks, a small run, the default slopes."""

import numpy as np
import pytest

from gandyn.experiments import ConfigError, get_experiment, resolve_config, run_experiment
from gandyn.experiments.algorithm import OBSERVABLES, fit_slope
from gandyn.plotting.registry import plot_result

EXPERIMENT = get_experiment("mean-field-vs-sgd")
SMALL = {
    "widths": [8, 32],
    "etas": [0.1, 0.05],
    "width_eta": 0.05,
    "seeds": 3,
    "t1": 1.0,
    "dt": 0.01,
    "reference_width": 64,
    "n_snapshots": 3,
}


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"widths": []}, "widths: expected a non-empty list"),
        ({"etas": [0.1, -0.05]}, "etas: expected list of numbers > 0, got -0.05"),
        ({"etas": [0.0]}, "etas: expected list of numbers > 0, got 0.0"),
        ({"width_eta": 0.0}, "width_eta: expected float > 0"),
        ({"critic_steps": 0}, "critic_steps: expected int >= 1, got 0"),
        ({"etas": [0.1, 0.07]}, "etas: t1 = 4.5 must be a multiple of every step, got 0.07"),
        (
            {"batch_size": 64, "replace": False},
            "batch_size: 64 exceeds the 16 points of the quadrature sets",
        ),
        (
            {"batch_size": 8, "replace": False, "batch_source": "law"},
            "replace: false samples a finite set",
        ),
        ({"model": "gan"}, "model: unknown value 'gan'"),
    ],
)
def test_bad_configuration_is_refused_naming_the_key(overrides, match):
    with pytest.raises(ConfigError, match=match):
        resolve_config(EXPERIMENT, overrides)


def test_fit_slope_recovers_a_power_law_and_widens_with_seed_noise():
    x = np.array([10.0, 20.0, 40.0, 80.0])
    exact = np.repeat((3.0 * x**-0.5)[:, None], 4, axis=1)
    slope, ci = fit_slope(x, exact)
    assert slope == pytest.approx(-0.5, abs=1e-12)
    assert ci == pytest.approx(0.0, abs=1e-12)
    noisy = exact * np.array([0.9, 1.1, 0.95, 1.05])[None, :]
    assert fit_slope(x, noisy)[0] == pytest.approx(-0.5, abs=1e-12)
    assert fit_slope(x, noisy)[1] > 0


@pytest.fixture(scope="module")
def small_result():
    return run_experiment("mean-field-vs-sgd", **SMALL)


def test_small_run_reports_gaps_slopes_and_the_projected_euler_identity(small_result):
    result = small_result
    assert result.status == "ok"
    summary = result.summary
    assert summary["gap_full_batch_vs_projected_euler"] < 1e-12
    assert summary["slope_eta_expected"] == 1.0
    for key in ("slope_width", "slope_width_ci95", "slope_eta", "slope_eta_ci95"):
        assert isinstance(summary[key], float)
    assert result.trajectory["gap_width"].shape == (2, 3, len(OBSERVABLES))
    assert result.trajectory["gap_eta"].shape == (2, 1, len(OBSERVABLES))  # full batch: one run
    # T1's shift generator pushes γ by a translation: the generated variance never moves
    assert summary["slope_width_generated_variance"] is None
    assert np.all(result.trajectory["gap_width"][..., OBSERVABLES.index("value")] > 0)


def test_plots_are_written(small_result, tmp_path):
    paths = plot_result(small_result, tmp_path)
    assert len(paths) == 3
    assert all(path.exists() and path.stat().st_size > 0 for path in paths)


@pytest.mark.slow
@pytest.mark.parametrize(("batch_size", "expected_eta"), [(0, 1.0), (64, 0.5)])
def test_default_experiment_measures_the_expected_slopes(batch_size, expected_eta):
    """Defaults (T1 with walls, 16 seeds): the headline gap ∝ N^{-1/2} and ∝ η (full
    batch) or √η (minibatch). Tolerance 0.2: the reported 95% half-widths are ≤ 0.15.
    With batches the wall fraction flickers (see the experiment's doc): its own slope in
    η stays far below 1/2."""
    result = run_experiment("mean-field-vs-sgd", batch_size=batch_size)
    summary = result.summary
    assert summary["gap_full_batch_vs_projected_euler"] < 1e-10
    assert summary["slope_width"] == pytest.approx(-0.5, abs=0.2)
    assert summary["slope_eta"] == pytest.approx(expected_eta, abs=0.2)
    if batch_size:
        assert summary["slope_eta_wall_fraction"] < 0.3
