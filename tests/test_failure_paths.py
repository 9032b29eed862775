"""Failure paths keep their data and plots never crash a run (issue 13, item 4).

Six experiments are driven non-finite by a small config and run through the CLI with plots
on: exit 1, ``run.json`` status ``nonfinite`` with a message saying when and where,
``summary.json``, ``trajectory.npz`` and every PNG written, no traceback.

Three cannot be driven non-finite by a config, so their plot functions are given a
``Result`` whose arrays hold NaN and infinities instead:

* ``grid-blowup``: the finite-volume step is conservative and, under its CFL step (taken at
  every step from the face velocities), keeps masses non-negative, so every cell holds at
  most the total mass. Only velocities that overflow (λ near the float maximum, 1e308) reach
  a non-finite state, and then the CFL step is 0 and most runs end ``max_steps`` first
  (measured: ``lam=1e308``, resolutions [8, 16]); that is an input overflow (issue 13 item 5),
  not a state the dynamics reach.
* ``fp-js-1d`` / ``fp-js-2d``: an explicit ``dt`` above the diffusive limit is refused
  (exit 2); below it the scheme is monotone (u = ρ/ρ_d stays in [min u₀, max u₀], mass
  conserved); backward Euler stayed finite at every step tried (dt = 1000 on 20 cells); data
  laws whose density underflows on the box are refused (exit 2).
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

import gandyn as gd
from gandyn.cli import app
from gandyn.experiments.registry import Result
from gandyn.plotting import BOUND, NOTE, algorithm, finite, grids, js, save_figure, span, sweep, toy
from gandyn.plotting.sweep import _save as save_sweep, plot_sweep

runner = CliRunner()


@pytest.fixture
def notes(monkeypatch):
    """The non-finite notes of every figure the plot functions save: file name -> texts."""
    seen: dict[str, list[str]] = {}

    def record(fig, path, dpi=110):
        texts = [t.get_text() for ax in fig.axes for t in ax.texts if t.get_gid() == NOTE]
        seen[Path(path).name] = texts
        return save_figure(fig, path, dpi)

    def record_sweep(fig, title, path):
        seen[Path(path).name] = [t.get_text() for ax in fig.axes for t in ax.texts]
        return save_sweep(fig, title, path)

    for module in (toy, algorithm, grids, js):
        monkeypatch.setattr(module, "save_figure", record)
    monkeypatch.setattr(sweep, "_save", record_sweep)
    return seen


def _refuse(constant: str):
    raise ValueError(f"{constant} in a JSON file")


def _t1_euler_blowup_time(lam: float, dt: float, y0: float) -> float:
    """First time at which explicit Euler of the free T1 oscillator (clip none),
    ``y' = ω̄, ω̄' = −λ y``, leaves the floats: an independent float64 recursion."""
    y, omega, t = np.float64(y0), np.float64(0.0), 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        while np.isfinite(y) and np.isfinite(omega):
            y, omega, t = y + dt * omega, omega - lam * dt * y, t + dt
    return t


TINY_PARTICLES = ["n_gen=4", "n_critic=4", "quadrature=4", "n_snapshots=3"]
CASES = {
    # Euler with λ dt² = 1e100: H = λy² + ω̄² grows by 1 + λdt² per step.
    "toy-shift-linear": (
        ['clip="none"', 'solver="euler"', "dt=1.0", "lam=1e100", "t1=8", *TINY_PARTICLES],
        rf"at t = {_t1_euler_blowup_time(1e100, 1.0, 1.0):g}; non-finite: critic particles",
        ["time_series.png", "phase_portrait.png", "critic_histograms.png"],
    ),
    # Identity units make T2 polynomial in its parameters: Euler overflows in a few steps.
    "neuron-bimodal-1d": (
        ['clip="none"', 'activation="identity"', 'solver="euler"', "dt=1.0", "lam=1e100", "t1=8"]
        + TINY_PARTICLES,
        r"at t = \d+(\.\d+)?; non-finite: generator particles \[.*\], critic particles",
        ["time_series.png", "critic_histograms.png"],
    ),
    "mean-field-vs-sgd": (
        ['clip="none"', "lam=1e100", "dt=0.05", "t1=0.5", "n_snapshots=2", "quadrature=4"]
        + ["reference_width=8", "widths=[4,8]", "width_eta=0.05", "etas=[0.1,0.05]", "seeds=2"],
        r"width 4: 2 of 2 run\(s\) non-finite; seed 0 at t = [\d.]+ \(",
        ["gap_vs_width_and_eta.png", "observables.png", "critic_histograms.png"],
    ),
    # A kernel of width 1e-200 squares to 0: the score divides 0 by 0.
    "js-flow-particles": (
        ['bandwidth_rule="fixed"', "bandwidth=1e-200", "dt=0.5", "t1=1", "n_saves=3"]
        + ["n_particles=8", "cells=16", "quadrature=4"],
        r"run stopped \(nonfinite\) in step 1 at t = 0\.5; non-finite: particles \[0, 1,",
        ["flow_moments.png", "flow_final.png"],
    ),
    # A learning rate of 1e200 throws the generator out of the floats in one iteration.
    "gan-as-ode": (
        ["lr=1e200", "K_list=[1]", "n_iter=4", "snapshot_every=2", "gen_width=4"]
        + ["latent_quadrature=4", "quadrature=2", "ring_components=2"],
        r"generated points went non-finite: K = 1 after iteration 1 \(t = 0\.05\)",
        ["gan_paths.png", "gan_distances.png"],
    ),
    # An initial offset of 1e200: the least-squares rate is inf/inf. run_mse checks no path
    # itself, so the message names the summary value, not an iteration.
    "mse-divergence": (
        ["perturbation=1e200", "n_iter=100", "n_eta=3", "refine=2", "latent_scales=[1.0]"]
        + ["quadrature=4"],
        r"summary values not finite \(written as null\): ls_rate_measured",
        ["mse_divergence.png"],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_nonfinite_run_keeps_its_data_and_plots(name, tmp_path, notes):
    sets, message, pngs = CASES[name]
    out = tmp_path / "run"
    args = ["run", name, *[a for s in sets for a in ("--set", s)], "--out", str(out)]
    result = runner.invoke(app, [*args, "--no-progress"])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "nonfinite"
    assert re.search(message, record["message"]), record["message"]
    summary = json.loads((out / "summary.json").read_text(), parse_constant=_refuse)
    assert summary and "status" in summary
    arrays = gd.io.load_trajectory(out / "trajectory.npz")
    assert arrays
    for png in pngs:
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    if name != "mse-divergence":
        # mse-divergence's summary still says "ok": Result.finite nulls the value and sets
        # run.json's status but leaves the summary's own status key (reported, not ours).
        assert summary["status"] == "nonfinite"
        # The non-finite saves are left out of the figures and the figures say so.
        assert any(text for texts in notes.values() for text in texts), notes
    if name == "toy-shift-linear":
        # The reported time is also where the saved critic first leaves the floats.
        first = int(np.argmin(np.isfinite(arrays["diag_critic_max_abs"])))
        assert arrays["ts"][first] == _t1_euler_blowup_time(1e100, 1.0, 1.0) == 7.0
        assert f"non-finite from t = {arrays['ts'][first]:g}" in notes["time_series.png"]


# ----------------------------------------------------------------------------- plots alone


def test_finite_masks_and_says_when():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ts = np.array([0.0, 0.5, 1.0, 1.5])
    shown = finite(ax, [1.0, -2.0, np.inf, np.nan], ts)
    np.testing.assert_array_equal(shown, [1.0, -2.0, np.nan, np.nan])
    finite(ax, [[1.0, 2 * BOUND], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0]], ts)  # beyond BOUND at 0
    finite(ax, [1.0, 2.0, 3.0, 4.0], ts)  # nothing to say
    finite(ax, [1.0, -2.0, np.inf, np.nan], ts)  # said once
    other, empty = plt.subplots(1, 2)[1]
    finite(other, np.full((2, 3), -np.inf))
    finite(empty, [np.nan, 1.0, np.inf])
    text = [t.get_text() for t in ax.texts if t.get_gid() == NOTE]
    assert text == ["non-finite from t = 1\nnon-finite or beyond ±1e+300 from t = 0"]
    assert [t.get_text() for t in other.texts] == ["no finite values"]
    assert [t.get_text() for t in empty.texts] == ["2 of 3 values non-finite"]
    plt.close("all")


def test_span_uses_the_finite_values_only():
    assert span([np.nan, -1.0, np.inf, 3.0]) == pytest.approx((-1.2, 3.2))
    assert span([2.0], room=0.5) == (1.0, 3.0)
    assert span([np.nan, -np.inf, 2 * BOUND]) == (-1.0, 1.0)


def _poisoned(result: Result, empty: str) -> Result:
    """``result`` with every float array along the save times NaN from the middle save on
    (the middle one +inf), the array ``empty`` entirely NaN, and every summary number
    undefined."""
    traj = dict(result.trajectory)
    n = len(traj["ts"])
    names = [
        k for k, v in traj.items() if k != "ts" and v.dtype.kind == "f" and v.shape[:1] == (n,)
    ]
    assert names
    for key in names:
        values = traj[key].copy()
        values[n // 2 :] = np.nan
        values[n // 2] = np.inf
        traj[key] = values
    traj[empty] = np.full_like(traj[empty], np.nan)
    summary = {k: None if isinstance(v, float) else v for k, v in result.summary.items()}
    return Result(result.experiment, result.config, summary, traj, "nonfinite", "poisoned")


GRID_CASES = {
    "grid-blowup": (
        dict(resolutions=[8, 16], penalty_betas=[1.0], t1=0.5, n_saves=5, quadrature=4),
        "sup_hard_8",
        grids.plot_blowup,
        ["critic_density.png", "sup_norms.png"],
    ),
    "fp-js-1d": (
        dict(cells=20, t1=0.5, n_saves=5),
        "diag_js",
        grids.plot_fokker_planck,
        ["densities.png", "divergences.png"],
    ),
    "fp-js-2d": (
        dict(cells=8, t1=0.5, n_saves=5, ring_components=2),
        "diag_js",
        grids.plot_fokker_planck,
        ["densities.png", "divergences.png"],
    ),
}


@pytest.mark.parametrize("name", sorted(GRID_CASES))
def test_grid_plots_survive_nonfinite_arrays(name, tmp_path, notes):
    overrides, empty, plot, pngs = GRID_CASES[name]
    result = _poisoned(gd.run_experiment(name, **overrides), empty)
    ts = result.trajectory["ts"]
    paths = plot(result, tmp_path)
    assert sorted(p.name for p in paths) == sorted(pngs)
    for png in pngs:
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    said = "\n".join(text for texts in notes.values() for text in texts)
    assert f"non-finite from t = {ts[len(ts) // 2]:.4g}" in said, said
    assert "no finite values" in said, said


def test_sweep_plots_survive_nonfinite_outcomes(tmp_path, notes):
    a, b, t = [1.0, 2.0, 3.0], [0.1, 0.2], [0.0, 1.0, 2.0]
    outcome = np.array([[1.0, 2.0], [np.inf, 3.0], [np.nan, -np.inf]])
    dataset = xr.Dataset(
        {
            "gap": (("a", "b"), outcome),
            "undefined": (("a", "b"), np.full((3, 2), np.nan)),
            "series_x": (("a", "b", "t"), np.broadcast_to(outcome[..., None], (3, 2, 3))),
        },
        coords={"a": a, "b": b, "t": t},
        attrs={"experiment": "toy-shift-linear"},
    )
    paths = plot_sweep(dataset, tmp_path)
    assert sorted(p.name for p in paths) == ["heatmaps.png", "lines.png", "series.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Panels: gap, undefined. Lines over a, one per b; series over t, one per a (b = 0.1).
    assert notes["heatmaps.png"] == ["3 of 6 values non-finite", "no finite values"]
    assert notes["lines.png"] == [
        "b = 0.1: non-finite from a = 2\nb = 0.2: non-finite from a = 3",
        "b = 0.1: no finite values\nb = 0.2: no finite values",
    ]
    assert notes["series.png"] == ["a = 2: no finite values\na = 3: no finite values"]
