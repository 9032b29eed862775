"""Particle (Lagrangian) integration of the mean-field continuity equations on diffrax,
in one solve or in checkpointed segments."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from .._types import Array, Float
from ..checkpoint import CheckpointSpec, plan_segments, run_segments
from ..constraints import AbstractConstraint, SplitPenaltyClip
from ..diagnostics import default_diagnostics
from ..games import (
    WALL_CONTACT,
    Diagnostic,
    MeanFieldProblem,
    MeanFieldState,
    Signal,
    with_first_times,
)
from .outcome import (
    RESULTS,
    Trajectory,
    checked,
    nonfinite_event,
    outcome,
    run_times,
    save_grid,
    step_times,
)
from .projected import FirstTimesSolver, ProjectedSolver

SOLVERS: dict[str, type[diffrax.AbstractSolver]] = {
    "euler": diffrax.Euler,
    "heun": diffrax.Heun,
    "midpoint": diffrax.Midpoint,
    "ralston": diffrax.Ralston,
    "bosh3": diffrax.Bosh3,
    "tsit5": diffrax.Tsit5,
    "dopri5": diffrax.Dopri5,
    "dopri8": diffrax.Dopri8,
}


def solver_by_name(name: str) -> diffrax.AbstractSolver:
    """A diffrax ODE solver from its lower-case name (``euler``, ``heun``, ``tsit5``, …)."""
    if name not in SOLVERS:
        raise ValueError(f"unknown solver {name!r}; allowed: {', '.join(SOLVERS)}")
    return SOLVERS[name]()


def stability_polynomial(solver: diffrax.AbstractSolver) -> np.ndarray | None:
    """Coefficients ``r_k`` (``k = 0 … s``) of an explicit Runge–Kutta solver's stability
    polynomial ``R(z) = Σ r_k z^k = 1 + Σ_k (b · A^{k−1} 1) z^k`` (one step of
    ``y' = z y / dt``), from its Butcher tableau; None for solvers that are not explicit
    Runge–Kutta methods (implicit ones, whose ``R`` is rational, among them)."""
    if isinstance(solver, diffrax.Euler):
        return np.array([1.0, 1.0])
    if not isinstance(solver, diffrax.AbstractERK):
        return None
    tableau = solver.tableau
    if not isinstance(tableau, diffrax.ButcherTableau):  # several tableaux (IMEX): not ours
        return None
    stages = tableau.num_stages
    a = np.zeros((stages, stages))
    for i, row in enumerate(tableau.a_lower):
        a[i + 1, : i + 1] = row
    coefficients, power = [1.0], np.ones(stages)
    for _ in range(stages):
        coefficients.append(float(np.asarray(tableau.b_sol) @ power))
        power = a @ power
    return np.array(coefficients)


def stability_bound(solver: diffrax.AbstractSolver | str) -> float:
    """Length ``x`` of the real stability interval ``[−x, 0]`` of ``solver``: the smallest
    root ``x > 0`` of ``R(−x)² = 1`` past which ``|R(−x)| > 1``. A linear decay ``−β``
    stepped with fixed ``dt`` is damped iff ``β dt < x``: 2 for Euler, Heun, Midpoint and
    Ralston, ≈ 2.51 for Bosh3, ≈ 3.31 for Dopri5. ``inf`` for a solver that is not explicit
    Runge–Kutta (see :func:`stability_polynomial`)."""
    solver = solver_by_name(solver) if isinstance(solver, str) else solver
    coefficients = stability_polynomial(solver)
    if coefficients is None:
        return math.inf
    r = np.polynomial.Polynomial(coefficients * (-1.0) ** np.arange(coefficients.size))
    roots = np.concatenate([(r - 1).roots(), (r + 1).roots()])
    for x in np.sort(roots[(np.abs(roots.imag) < 1e-9) & (roots.real > 1e-9)].real):
        if abs(r(x * (1 + 1e-6))) > 1:
            return float(x)
    return math.inf


def stiffness_error(
    constraint: AbstractConstraint, dt: float, solver: diffrax.AbstractSolver | str
) -> str | None:
    """Why fixed steps ``dt`` of ``solver`` cannot integrate ``constraint``'s decay term
    (``β dt`` past the solver's :func:`stability_bound`: the excursion past a wall is not
    damped, and particles stall inside ``c`` or blow up), or None if they can or the rate
    is not concrete (traced under ``vmap``/``jit``)."""
    rate = constraint.decay_rate()
    if rate is None or isinstance(rate, Tracer):
        return None
    rate, bound = float(rate), stability_bound(solver)
    if rate * dt < bound:
        return None
    remedy = _remedy(constraint, solver, f"take dt < {bound / rate:.4g}")
    return f"beta * dt = {rate:g} * {dt:g} = {rate * dt:.4g} is not below {bound:.4g}, {remedy}"


def _remedy(constraint: AbstractConstraint, solver: diffrax.AbstractSolver | str, dt: str) -> str:
    name = solver if isinstance(solver, str) else type(solver).__name__
    return (
        f"the stability bound of {name} for {type(constraint).__name__}'s decay "
        f"-beta (u - clip(u)) past the wall; {dt}, or integrate the decay exactly over each "
        "step, stable for any beta (clip=penalty-split; in Python SplitPenaltyClip, or an "
        "adaptive stepsize_controller)"
    )


def stiffness_guard(
    constraint: AbstractConstraint,
    state: MeanFieldState,
    dt: float,
    solver: diffrax.AbstractSolver | str,
) -> MeanFieldState:
    """``state``, once fixed steps ``dt`` of ``solver`` are known to integrate
    ``constraint``: ``ValueError`` (:func:`stiffness_error`, or a ``SplitPenaltyClip``
    built for another step) when that is decided at trace time; when ``β`` is traced
    (``vmap``/``jit``), ``eqx.error_if`` on the state raises at run time instead."""
    if isinstance(constraint, SplitPenaltyClip) and not isinstance(constraint.dt, Tracer):
        if not math.isclose(float(constraint.dt), dt, rel_tol=1e-9):
            raise ValueError(
                f"SplitPenaltyClip applies the decay over steps of dt = "
                f"{float(constraint.dt):g}, the run steps dt = {dt:g}; build it with the run's dt"
            )
    message = stiffness_error(constraint, dt, solver)
    if message is not None:
        raise ValueError(message)
    rate = constraint.decay_rate()
    if isinstance(rate, Tracer):
        bound = stability_bound(solver)
        message = _remedy(constraint, solver, "take a smaller dt")
        state = eqx.error_if(
            state, rate * dt >= bound, f"beta * dt is not below {bound:.4g}, {message}"
        )
    return state


def simulate(
    problem: MeanFieldProblem,
    state: MeanFieldState,
    *,
    t1: float,
    dt: float,
    t0: float = 0.0,
    solver: diffrax.AbstractSolver | str = "euler",
    stepsize_controller: diffrax.AbstractStepSizeController | None = None,
    save_ts: Sequence[float] | np.ndarray | None = None,
    snapshot_ts: Sequence[float] | np.ndarray = (),
    diagnostics: Mapping[str, Diagnostic] | None = None,
    events: Mapping[str, Signal] = WALL_CONTACT,
    max_steps: int | None = None,
    progress_meter: diffrax.AbstractProgressMeter | None = None,
    adjoint: diffrax.AbstractAdjoint | None = None,
    throw: bool = False,
) -> Trajectory:
    """Integrate the mean-field ODE of ``problem`` from ``state`` over ``[t0, t1]``.

    Fixed steps ``dt`` by default (``t1 − t0`` must be a multiple of ``dt``; the steps
    land exactly on ``t0 + k dt``, as do the default save times); pass a
    ``stepsize_controller`` (e.g. ``diffrax.PIDController``) for adaptive steps, ``dt``
    is then the initial step. Constraints that project (``HardClip``) wrap the solver in
    :class:`ProjectedSolver` and need fixed steps. Diagnostics are recorded at
    ``save_ts`` (default: :func:`save_grid`), snapshots at ``snapshot_ts`` plus ``t0`` and
    ``t1``. The first time each of ``events`` occurs is tracked at every step (in
    ``Trajectory.final.first_times``, continuing those of ``state``). A non-finite state
    stops the run (``Trajectory.status == "nonfinite"``); ``throw=True`` then raises
    ``RuntimeError`` with the failure report.
    Compiled once per shape and static configuration; hyper-parameters inside
    ``problem`` (``λ``, ``c``, ``β``, …) are traced, so ``vmap`` and ``grad`` go through.
    """
    t0, t1, dt = float(t0), float(t1), float(dt)
    if not (np.isfinite([t0, t1, dt]).all() and t1 > t0 and dt > 0):
        raise ValueError(f"need finite t0 < t1 and dt > 0, got t0={t0}, t1={t1}, dt={dt}")
    if stepsize_controller is None:
        step_ts = step_times(t0, t1, dt)
        stepsize_controller = diffrax.StepTo(ts=step_ts)
        max_steps = step_ts.size - 1 if max_steps is None else max_steps
        state = stiffness_guard(problem.constraint, state, dt, solver)
    elif problem.constraint.projects:
        raise ValueError(
            f"{type(problem.constraint).__name__} projects every step and needs fixed steps; "
            "use PenaltyClip or SmoothClip with an adaptive step size controller"
        )
    save_times, snapshot_times = run_times(t0, t1, save_ts, snapshot_ts, save_grid(t0, t1, dt))
    diagnostics = default_diagnostics() if diagnostics is None else dict(diagnostics)
    trajectory = _solve(
        problem,
        with_first_times(state, events),
        solver_by_name(solver) if isinstance(solver, str) else solver,
        stepsize_controller,
        diagnostics,
        dict(events),
        jnp.asarray(save_times),
        jnp.asarray(snapshot_times),
        jnp.asarray(t0),
        jnp.asarray(t1),
        jnp.asarray(dt),
        100_000 if max_steps is None else max_steps,
        diffrax.NoProgressMeter() if progress_meter is None else progress_meter,
        diffrax.RecursiveCheckpointAdjoint() if adjoint is None else adjoint,
    )
    return checked(trajectory, throw)


def simulate_steps(
    problem: MeanFieldProblem,
    state: MeanFieldState,
    step_ts: Float[Array, " K"],
    save_ts: Float[Array, " T"],
    snapshot_ts: Float[Array, " S"],
    *,
    solver: diffrax.AbstractSolver | str,
    diagnostics: Mapping[str, Diagnostic],
    events: Mapping[str, Signal] = WALL_CONTACT,
) -> Trajectory:
    """Fixed steps from ``step_ts[0]`` through ``step_ts`` (sorted), saving at ``save_ts``
    and ``snapshot_ts`` as given (sorted, within the steps; repeated times save twice).
    The low-level path of :func:`simulate`: times are traced, so runs over different
    windows with the same array shapes share one compilation (checkpointed segments)."""
    return _solve(
        problem,
        with_first_times(state, events),
        solver_by_name(solver) if isinstance(solver, str) else solver,
        diffrax.StepTo(ts=step_ts),
        dict(diagnostics),
        dict(events),
        save_ts,
        snapshot_ts,
        step_ts[0],
        step_ts[-1],
        step_ts[1] - step_ts[0],
        step_ts.shape[0] - 1,
        diffrax.NoProgressMeter(),
        diffrax.RecursiveCheckpointAdjoint(),
    )


@eqx.filter_jit
def _solve(
    problem: MeanFieldProblem,
    state: MeanFieldState,
    solver,
    stepsize_controller,
    diagnostics: dict[str, Diagnostic],
    events: dict[str, Signal],
    save_ts,
    snapshot_ts,
    t0,
    t1,
    dt,
    max_steps: int,
    progress_meter,
    adjoint,
) -> Trajectory:
    def record(t, y, args):
        return {name: fn(problem, y) for name, fn in diagnostics.items()}

    def observe(t, y, args):
        return MeanFieldState(y.generator, problem.constraint.observe(y.critic))

    saveat = diffrax.SaveAt(
        subs=[
            diffrax.SubSaveAt(ts=save_ts, fn=record),
            diffrax.SubSaveAt(ts=snapshot_ts, fn=observe),
            diffrax.SubSaveAt(t1=True),
        ],
        solver_state=True,
    )
    signals = {name: jax.tree_util.Partial(fn, problem) for name, fn in events.items()}
    assert state.first_times is not None  # set by with_first_times
    solver = FirstTimesSolver(solver, signals, state.first_times)
    if problem.constraint.projects:  # outside: the events see the unprojected step
        solver = ProjectedSolver(solver, jax.tree_util.Partial(MeanFieldProblem.project, problem))
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(problem.vector_field),
        solver,
        t0,
        t1,
        None if isinstance(stepsize_controller, diffrax.StepTo) else dt,
        MeanFieldState(state.generator, state.critic),
        saveat=saveat,
        stepsize_controller=stepsize_controller,
        event=diffrax.Event(nonfinite_event),
        max_steps=max_steps,
        progress_meter=progress_meter,
        adjoint=adjoint,
        throw=False,
    )
    assert sol.ys is not None and sol.ts is not None and sol.solver_state is not None
    diag, snaps, final = sol.ys
    final = jax.tree_util.tree_map(lambda x: x[-1], final)
    final_t = sol.ts[2][-1]
    return Trajectory(
        ts=save_ts,
        diagnostics=diag,
        snapshot_ts=snapshot_ts,
        snapshots=snaps,
        final=MeanFieldState(final.generator, final.critic, sol.solver_state[1]),
        final_t=final_t,
        result=outcome(final, final_t, t1),
        num_steps=sol.stats["num_accepted_steps"],
        entries="particles",
    )


def _padded(times: np.ndarray, size: int, fill: float) -> jax.Array:
    """``times`` followed by ``fill`` up to ``size`` entries (a fixed shape per segment)."""
    return jnp.asarray(np.concatenate([times, np.full(size - times.size, fill)]))


def simulate_checkpointed(
    problem: MeanFieldProblem,
    state: MeanFieldState,
    spec: CheckpointSpec,
    *,
    t1: float,
    dt: float,
    solver: str,
    snapshot_ts,
    diagnostics: Mapping[str, Diagnostic],
    save_ts=None,
    progress: bool = False,
    throw: bool = False,
) -> Trajectory:
    """:func:`simulate` in checkpointed segments (fixed steps from ``t0 = 0``).

    Returns the same :class:`Trajectory` as one call would, assembled from the segments;
    stops at the first segment that does not finish ``ok``. Ctrl-C between or during
    segments returns what was computed with status ``interrupted``. ``save_ts``: the
    diagnostics' times (default :func:`save_grid`). Segments
    (:func:`~gandyn.checkpoint.plan_segments`) of equal length share one compiled solve
    (their save and snapshot times are padded to one shape with the segment's last step;
    the padding is dropped). ``throw``: as :func:`simulate`.
    """
    t0 = 0.0
    step_ts = step_times(t0, t1, dt)
    save_ts, snapshot_ts = run_times(t0, t1, save_ts, snapshot_ts, save_grid(t0, t1, dt))
    windows = plan_segments(step_ts, save_ts, snapshot_ts, spec.interval(t1, dt))
    n_saves = max(1, *(w.saves.size for w in windows))
    n_snaps = max(1, *(w.snapshots.size for w in windows))
    last: list[Trajectory] = []

    def segment(index: int, state: MeanFieldState):
        window = windows[index]
        steps = step_ts[window.k_a : window.k_b + 1]
        saves, snaps = save_ts[window.saves], snapshot_ts[window.snapshots]
        trajectory = simulate_steps(
            problem,
            state,
            jnp.asarray(steps),
            _padded(saves, n_saves, steps[-1]),
            _padded(snaps, n_snaps, steps[-1]),
            solver=solver,
            diagnostics=diagnostics,
        )
        last[:] = [trajectory]
        records = {f"diag_{k}": v[: saves.size] for k, v in trajectory.diagnostics.items()}
        records |= {
            "ts": trajectory.ts[: saves.size],
            "steps": np.asarray(trajectory.num_steps)[None],
            "snap_ts": trajectory.snapshot_ts[: snaps.size],
            "snap_generator": trajectory.snapshots.generator[: snaps.size],
            "snap_critic": trajectory.snapshots.critic[: snaps.size],
        }
        return records, trajectory.final, trajectory.status == "ok"

    run = run_segments(spec, with_first_times(state), len(windows), segment, progress=progress)
    arrays = run.records
    diagnostics_so_far = {k[5:]: jnp.asarray(v) for k, v in arrays.items() if k.startswith("diag_")}
    snapshots = MeanFieldState(
        jnp.asarray(arrays.get("snap_generator", np.zeros((0, *state.generator.shape)))),
        jnp.asarray(arrays.get("snap_critic", np.zeros((0, *state.critic.shape)))),
    )
    if run.failed:
        final_t, result = last[0].final_t, last[0].result
    else:
        final_t = jnp.asarray(step_ts[windows[run.done - 1].k_b if run.done else 0])
        result = RESULTS.interrupted if run.interrupted else RESULTS.ok
    trajectory = Trajectory(
        ts=jnp.asarray(arrays.get("ts", np.array([t0]))),
        diagnostics=diagnostics_so_far,
        snapshot_ts=jnp.asarray(arrays.get("snap_ts", np.zeros(0))),
        snapshots=snapshots,
        final=run.carry,
        final_t=final_t,
        result=result,
        num_steps=jnp.asarray(int(arrays.get("steps", np.zeros(0, int)).sum())),
        entries="particles",
    )
    return checked(trajectory, throw)
