"""The literal WGAN training algorithm at finite width, beside the mean-field ODE (DESIGN §1.5).

    repeat:
      n_critic times: batch x ~ P*, z ~ γ;  ω ← clip(ω + η_D ∇(δF̂/δν)(ω))
      once:           batch z ~ γ;          θ ← θ − η_G ∇(δF̂/δμ)(θ)

The gradients are the mean-field ones, ``∂F̂/∂θ_i / w_i`` (``N ∂F̂/∂θ_i`` for uniform weights,
:func:`~gandyn.games.first_variation_gradient` at the particles); optax turns them into steps.
Step ``k`` is ODE time ``t_k = k η_G`` and the critic's time-scale ratio is
``λ = n_critic η_D / η_G``: :func:`train_wgan` takes ``η_D`` from the game's ``lam`` unless it is
given, and then checks that the two agree, so one :class:`MeanFieldProblem` defines both the ODE
(:func:`~gandyn.solvers.simulate`) and the algorithm that discretizes it. Full-batch sgd with
simultaneous updates, ``n_critic = 1`` and clipping after the step **is** projected Euler with
``dt = η_G``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._checks import positive, strategy
from .._optax import GRADIENT, descent
from .._types import Array, Float, Int, PRNGKeyArray, Scalar, ScalarLike
from ..checkpoint import CheckpointSpec, plan_segments, run_segments
from ..constraints import AbstractConstraint
from ..diagnostics import default_diagnostics
from ..distributions import Quadrature
from ..games import (
    Diagnostic,
    MeanFieldGame,
    MeanFieldProblem,
    MeanFieldState,
    first_variation_gradient,
)
from .outcome import Trajectory, checked, finite, interrupt, outcome, save_grid, step_count

# ----------------------------------------------------------------------------- batches


class AbstractBatches(eqx.Module):
    """What one step of the algorithm sees of ``P*`` and ``γ``: a pair of quadrature rules."""

    @abc.abstractmethod
    def draw(self, game: MeanFieldGame, key: PRNGKeyArray) -> tuple[Quadrature, Quadrature]:
        """``(data, latent)`` rules for one step."""

    def check(self, game: MeanFieldGame) -> None:
        """Raise ``ValueError`` if these batches cannot be drawn for ``game``."""


class FullBatch(AbstractBatches):
    """Every step uses the game's fixed quadrature rules: deterministic gradient descent."""

    def draw(self, game: MeanFieldGame, key: PRNGKeyArray) -> tuple[Quadrature, Quadrature]:
        del key
        return game.data, game.latent


def _subsample(rule: Quadrature, key: PRNGKeyArray, size: int, replace: bool) -> Quadrature:
    n = rule.size
    if replace:
        index = jax.random.choice(key, n, (size,), p=rule.weights)
        return Quadrature(rule.nodes[index], jnp.full(size, 1.0 / size, rule.weights.dtype))
    index = jax.random.choice(key, n, (size,), replace=False)
    return Quadrature(rule.nodes[index], rule.weights[index] * (n / size))


class Minibatch(AbstractBatches):
    """``size`` fresh points per step for each of ``P*`` and ``γ``.

    A side with a law (``data_law``/``latent_law``: anything with ``sample(key, n)``, e.g.
    :class:`~gandyn.GaussianMixture`) draws i.i.d. from it, weights ``1/size``. A side
    without one samples the game's own rule (a finite data set such as
    :class:`~gandyn.Empirical`, or the ODE's quadrature): with replacement in proportion to
    its weights (weights ``1/size``), or without replacement uniformly with weights
    ``(n/size) w_k`` (unbiased: ``E Σ_{k∈S} (n/size) w_k f(x_k) = Σ_k w_k f(x_k)``).
    """

    size: int = eqx.field(static=True)
    replace: bool = eqx.field(static=True)
    data_law: Any
    latent_law: Any

    def __init__(self, size: int, replace: bool = True, data_law=None, latent_law=None):
        if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
            raise ValueError(f"batch size must be a positive integer, got {size!r}")
        if not replace and data_law is not None and latent_law is not None:
            raise ValueError(
                "replace=False samples a finite rule without replacement, but both sides "
                "draw i.i.d. from a law; leave data_law or latent_law as None"
            )
        self.size, self.replace = int(size), bool(replace)
        self.data_law, self.latent_law = data_law, latent_law

    def check(self, game: MeanFieldGame) -> None:
        if self.replace:
            return
        for name, law, rule in (
            ("data", self.data_law, game.data),
            ("latent", self.latent_law, game.latent),
        ):
            if law is None and self.size > rule.size:
                raise ValueError(
                    f"batch size {self.size} exceeds the {rule.size} points of the {name} set "
                    "when sampling without replacement; use replace=True or a batch of at "
                    f"most {rule.size}"
                )

    def _side(self, law, rule: Quadrature, key: PRNGKeyArray) -> Quadrature:
        if law is None:
            return _subsample(rule, key, self.size, self.replace)
        points = jnp.asarray(law.sample(key, self.size), rule.nodes.dtype)
        return Quadrature(points, jnp.full(self.size, 1.0 / self.size, points.dtype))

    def draw(self, game: MeanFieldGame, key: PRNGKeyArray) -> tuple[Quadrature, Quadrature]:
        key_data, key_latent = jax.random.split(key)
        return (
            self._side(self.data_law, game.data, key_data),
            self._side(self.latent_law, game.latent, key_latent),
        )


# ----------------------------------------------------------------------------- orders


class AbstractUpdateOrder(eqx.Module):
    """Which critic the generator's step reads within one iteration of the algorithm."""

    @abc.abstractmethod
    def iterate(
        self,
        critic_steps: Callable[[Array], tuple[Array, Any]],
        generator_gradient: Callable[[Array], Array],
        critic: Array,
    ) -> tuple[Array, tuple[Array, Any]]:
        """``generator_gradient`` at the critic it reads, and ``critic_steps(critic)`` (the
        new critic and its optimizer state); ``critic`` is the one the iteration starts
        from."""


class Alternating(AbstractUpdateOrder):
    """The critic steps, then the generator reads the new critic."""

    def iterate(self, critic_steps, generator_gradient, critic):
        stepped = critic_steps(critic)
        return generator_gradient(stepped[0]), stepped


class Simultaneous(AbstractUpdateOrder):
    """The generator step and the critic steps all read the critic the iteration starts
    from."""

    def iterate(self, critic_steps, generator_gradient, critic):
        return generator_gradient(critic), critic_steps(critic)


class AbstractClipOrder(eqx.Module):
    """Where a projecting constraint (``HardClip``) acts in a critic step: on the critic a
    gradient reads (``read``) or on the critic a step stores (``store``)."""

    @abc.abstractmethod
    def read(self, constraint: AbstractConstraint, critic: Array) -> Array:
        """The critic as the gradients read it."""

    @abc.abstractmethod
    def store(self, constraint: AbstractConstraint, critic: Array) -> Array:
        """The critic as a step leaves it."""


class ClipAfter(AbstractClipOrder):
    """Project after each critic step: every stored critic coordinate is in ``[−c, c]``."""

    def read(self, constraint, critic):
        return critic

    def store(self, constraint, critic):
        return constraint.project(critic)


class ClipBefore(AbstractClipOrder):
    """Project before each gradient (the original WGAN code): the stored critic may overshoot
    the wall by one step, and the generator of an alternating iteration reads it so."""

    def read(self, constraint, critic):
        return constraint.project(critic)

    def store(self, constraint, critic):
        return critic


# ----------------------------------------------------------------------------- algorithm


class WGANAlgorithm(eqx.Module):
    """How the finite networks are trained (DESIGN §1.5).

    - ``eta``: generator step ``η_G`` (ODE time per generator step; it sets the number of
      steps, so it is concrete when training starts); ``eta_d``: critic step ``η_D``
      (default: ``λ η_G / n_critic`` from the game's ``lam``);
    - ``n_critic``: critic steps per generator step;
    - ``updates``: an :class:`AbstractUpdateOrder`, :class:`Alternating` (default) or
      :class:`Simultaneous`;
    - ``clip``: an :class:`AbstractClipOrder`, :class:`ClipAfter` (default) or
      :class:`ClipBefore`. Only projecting constraints (``HardClip``) clip; others enter
      through their velocity (penalty, reparametrisation);
    - ``optimizer``: an optax ``GradientTransformation`` without its step, e.g.
      ``optax.scale_by_adam()`` (default: the gradient itself, i.e. sgd); the step is
      appended, ``optax.scale_by_learning_rate`` at ``η_G`` for the generator and at ``η_D``
      for the critic, so that the steps stay traced arrays (``optax.scale_by_rms()`` then
      gives ``optax.rmsprop(η)``'s updates; reuse one object across runs: compilations
      are keyed on its functions). It is fed the mean-field gradients; for the
      critic, with a projecting constraint the raw gradient ``g`` (the literal algorithm),
      otherwise the constraint's velocity at ``λ g`` divided by ``λ`` (its smoothing acts per
      unit of ODE time, as in the ODE);
    - ``batches``: :class:`FullBatch` (default) or :class:`Minibatch`.
    """

    eta: Scalar
    eta_d: Scalar | None
    batches: AbstractBatches
    updates: AbstractUpdateOrder
    clip: AbstractClipOrder
    optimizer: optax.GradientTransformation
    n_critic: int = eqx.field(static=True)

    def __init__(
        self,
        eta: ScalarLike,
        *,
        eta_d: ScalarLike | None = None,
        n_critic: int = 1,
        updates: AbstractUpdateOrder | None = None,
        clip: AbstractClipOrder | None = None,
        optimizer: optax.GradientTransformation = GRADIENT,
        batches: AbstractBatches | None = None,
    ):
        self.eta = positive("eta", eta)
        self.eta_d = None if eta_d is None else positive("eta_d", eta_d)
        if isinstance(n_critic, bool) or not isinstance(n_critic, int | np.integer) or n_critic < 1:
            raise ValueError(f"n_critic must be an integer >= 1, got {n_critic!r}")
        self.n_critic = int(n_critic)
        self.updates = strategy(
            "updates", Alternating() if updates is None else updates, AbstractUpdateOrder
        )
        self.clip = strategy("clip", ClipAfter() if clip is None else clip, AbstractClipOrder)
        self.optimizer = strategy("optimizer", optimizer, optax.GradientTransformation)
        self.batches = FullBatch() if batches is None else batches

    def critic_step_size(self, game: MeanFieldGame) -> Scalar:
        """``η_D``: given, or ``λ η_G / n_critic``. A given ``η_D`` must match the game's λ."""
        if self.eta_d is None:
            return game.lam * self.eta / self.n_critic
        try:
            implied = float(np.asarray(self.n_critic * self.eta_d / self.eta))
            lam = float(np.asarray(game.lam))
        except jax.errors.TracerArrayConversionError:  # traced: nothing to check here
            return self.eta_d
        if abs(implied - lam) > 1e-6 * lam:
            raise ValueError(
                f"n_critic * eta_d / eta = {implied:.6g} must equal the game's lam = {lam:.6g} "
                "(the ODE's time-scale ratio); set lam to it, e.g. "
                "eqx.tree_at(lambda p: p.game.lam, problem, value), or omit eta_d"
            )
        return self.eta_d


def _generator_gradient(problem: MeanFieldProblem, game: MeanFieldGame, theta, u) -> Array:
    """``∇(δF_G/δμ)(θ_i) = ∂F_G/∂θ_i / w_i`` for the game ``game`` (one batch)."""
    gen, critic = problem.measures(MeanFieldState(theta, u))
    return first_variation_gradient(lambda m: game.generator_objective(m, critic), gen)


def _critic_gradient(problem: MeanFieldProblem, game: MeanFieldGame, theta, u) -> Array:
    """``∇(δF_D/δν)(ω_j) = ∂F_D/∂ω_j / v_j`` for the game ``game`` (one batch)."""
    gen, critic = problem.measures(MeanFieldState(theta, u))
    return first_variation_gradient(lambda m: game.critic_objective(gen, m), critic)


class _Carry(eqx.Module):
    state: MeanFieldState
    opt_gen: Any
    opt_critic: Any


def _iteration(problem: MeanFieldProblem, algorithm: WGANAlgorithm, eta_d: Scalar):
    """One generator step (with its ``n_critic`` critic steps) as ``(carry, key) -> carry``."""
    constraint, clip = problem.constraint, algorithm.clip
    opt_gen = descent(algorithm.optimizer, algorithm.eta)
    opt_critic = descent(algorithm.optimizer, eta_d)
    batches = algorithm.batches
    lam = algorithm.n_critic * eta_d / algorithm.eta

    def batch_game(key):
        data, latent = batches.draw(problem.game, key)
        return eqx.tree_at(lambda g: (g.data, g.latent), problem.game, (data, latent))

    def generator_descent(theta, u, key):
        return _generator_gradient(problem, batch_game(key), theta, u)

    def critic_step(theta, carry, key):
        u, opt_state = carry
        u = clip.read(constraint, u)
        g = _critic_gradient(problem, batch_game(key), theta, u)
        # a constraint's velocity is per unit of ODE time (PenaltyClip's β): take it at λ g
        direction = g if constraint.projects else constraint.velocity(u, lam * g) / lam
        step, opt_state = opt_critic.update(-direction, opt_state, u)
        u = jnp.asarray(optax.apply_updates(u, step))
        return (clip.store(constraint, u), opt_state), None

    def iteration(carry: _Carry, key) -> _Carry:
        key_gen, key_critic = jax.random.split(key)
        theta = carry.state.generator

        def critic_steps(u):
            keys = jax.random.split(key_critic, algorithm.n_critic)
            steps = jax.lax.scan(lambda c, k: critic_step(theta, c, k), (u, carry.opt_critic), keys)
            return steps[0]

        g_gen, (u, opt_critic_state) = algorithm.updates.iterate(
            critic_steps,
            lambda u: generator_descent(theta, u, key_gen),
            clip.read(constraint, carry.state.critic),
        )
        step, opt_gen_state = opt_gen.update(g_gen, carry.opt_gen, theta)
        theta = jnp.asarray(optax.apply_updates(theta, step))
        return _Carry(MeanFieldState(theta, u), opt_gen_state, opt_critic_state)

    return iteration, opt_gen, opt_critic


def _on_steps(times, eta: float, n_steps: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``times`` rounded to the step grid ``k η`` (unique, sorted) and, for each step
    ``0..n_steps``, the index of the time recorded after it, or −1."""
    times = np.asarray(times, dtype=float)
    if (
        times.ndim != 1
        or times.size == 0
        or times.min() < 0
        or times.max() > n_steps * eta * (1 + 1e-12)
    ):
        raise ValueError(f"{name} must be a non-empty list of times in [0, {n_steps * eta}]")
    steps = np.unique(np.round(times / eta).astype(int))
    slots = np.full(n_steps + 1, -1, dtype=np.int32)
    slots[steps] = np.arange(steps.size)
    return steps * eta, slots


def train_wgan(
    problem: MeanFieldProblem,
    state: MeanFieldState,
    algorithm: WGANAlgorithm,
    *,
    t1: float,
    key: PRNGKeyArray | None = None,
    save_ts: Sequence[float] | np.ndarray | None = None,
    snapshot_ts: Sequence[float] | np.ndarray = (),
    diagnostics: Mapping[str, Diagnostic] | None = None,
    batched: bool = False,
    checkpoint: CheckpointSpec | None = None,
    progress: bool = False,
    throw: bool = False,
) -> Trajectory:
    """Train the finite networks of ``problem`` from ``state`` for ``t1/η_G`` generator steps.

    Same inputs and output as :func:`~gandyn.solvers.simulate`: diagnostics are the same
    functions ``(problem, state) -> array``, evaluated on ``problem`` (the game's fixed
    rules, not the batch) at ``save_ts`` (default :func:`save_grid`); snapshots (critic as
    parameters ``ω``) at ``snapshot_ts`` plus 0 and ``t1``. ``t1`` must be a multiple of
    ``η_G``; saved times are rounded to the step grid ``k η_G`` (the trajectory's ``ts`` and
    ``snapshot_ts`` are the rounded times). ``key`` drives the minibatches (needed for
    :class:`Minibatch`; step ``k`` uses ``fold_in(key, k)``). The first non-finite state
    stops training: ``status == "nonfinite"``, ``final`` is that state and ``final_t`` its
    time; saves after it are NaN.

    ``vmap`` over ``state`` and ``key`` runs several seeds at once; so does
    ``batched=True`` (``key`` with a leading seed axis, ``state`` with one or shared),
    which also works with a ``checkpoint``: a :class:`~gandyn.checkpoint.CheckpointSpec`
    trains in segments of ``checkpoint.interval(t1, η_G)`` (rounded to whole steps) and
    saves the optimizer states, the key and the diagnostics so far after each (not under
    ``jit``/``vmap``);
    ``checkpoint.resume`` continues from the newest good one. ``progress`` shows a bar
    over the segments. ``throw=True`` raises ``RuntimeError`` with the failure report if
    the status is not ``ok``.
    """
    t1 = float(t1)
    n_steps = step_count(0.0, t1, float(algorithm.eta), "eta")
    eta = t1 / n_steps  # the step grid, free of the array's round-off
    algorithm.batches.check(problem.game)
    if isinstance(algorithm.batches, Minibatch) and key is None:
        raise ValueError("minibatches are random: pass key=jax.random.key(seed)")
    if key is None:
        key = jax.random.key(0)
        key = key[None] if batched else key
    saves, save_slots = _on_steps(
        save_grid(0.0, t1, eta) if save_ts is None else save_ts, eta, n_steps, "save_ts"
    )
    snapshots, snap_slots = _on_steps(
        np.concatenate([[0.0, t1], np.asarray(snapshot_ts, dtype=float)]),
        eta,
        n_steps,
        "snapshot_ts",
    )
    plan = _Plan(
        problem,
        algorithm,
        algorithm.critic_step_size(problem.game),
        _diagnostics_or_default(diagnostics),
        jnp.asarray(saves),
        jnp.asarray(snapshots),
        jnp.asarray(save_slots),
        jnp.asarray(snap_slots),
    )
    state_axis = 0 if batched and state.generator.ndim == 3 else None
    loop = _start(plan, state, key, state_axis if batched else False)
    if checkpoint is None:
        return checked(_finish(plan, _advance(plan, loop, 0, n_steps, batched)), throw)
    # saves and snapshots go to their step's slot in the carried buffers: each is written
    # by the segment holding its step, once, so only the windows' steps are needed here
    windows = plan_segments(
        eta * np.arange(n_steps + 1), saves, snapshots, checkpoint.interval(t1, eta)
    )

    def segment(index: int, loop: _Loop):
        loop = _advance(plan, loop, windows[index].k_a, windows[index].k_b, batched)
        return {}, loop, not bool(jnp.any(loop.first_bad <= n_steps))

    run = run_segments(checkpoint, loop, len(windows), segment, progress=progress)
    trajectory = _finish(plan, run.carry, reached=windows[run.done - 1].k_b if run.done else 0)
    return checked(interrupt(trajectory) if run.interrupted else trajectory, throw)


def _diagnostics_or_default(diagnostics: Mapping[str, Diagnostic] | None) -> dict:
    return default_diagnostics() if diagnostics is None else dict(diagnostics)


class _Plan(eqx.Module):
    """What a training run is, fixed before it starts (save slots per step ``0..n``)."""

    problem: MeanFieldProblem
    algorithm: WGANAlgorithm
    eta_d: Scalar
    diagnostics: dict[str, Diagnostic]
    save_ts: Float[Array, " T"]
    snapshot_ts: Float[Array, " S"]
    save_slots: Int[Array, " n+1"]
    snap_slots: Int[Array, " n+1"]

    @property
    def n_steps(self) -> int:
        return self.save_slots.shape[0] - 1

    def record(self, state: MeanFieldState) -> dict[str, Array]:
        return {name: fn(self.problem, state) for name, fn in self.diagnostics.items()}

    def observe(self, state: MeanFieldState) -> MeanFieldState:
        return MeanFieldState(state.generator, self.problem.constraint.observe(state.critic))


class _Loop(eqx.Module):
    """Everything training needs to go on: networks, optimizer states, the buffers of
    diagnostics and snapshots, the step of the first non-finite state (``n + 1`` if none)
    and the key."""

    carry: _Carry
    diagnostics: dict[str, Array]
    snapshots: MeanFieldState
    first_bad: Int[Array, ""]
    key: PRNGKeyArray


def _write(buffers, fn, state, slot):
    """``fn(state)`` into row ``slot`` of ``buffers`` (nothing if ``slot < 0``)."""

    def put(b):
        return jax.tree.map(lambda x, v: x.at[slot].set(v), b, fn(state))

    return jax.lax.cond(slot >= 0, put, lambda b: b, buffers)


@eqx.filter_jit
def _start(plan: _Plan, state: MeanFieldState, key: PRNGKeyArray, state_axis) -> _Loop:
    """The loop before step 1 (``state_axis``: ``False`` unbatched, else the vmap axis of
    ``state``, ``None`` for a state shared by the seeds of a batched ``key``)."""
    _, opt_gen, opt_critic = _iteration(plan.problem, plan.algorithm, plan.eta_d)

    def one(state, key):
        def empty(values, count):
            return jax.tree.map(lambda v: jnp.full((count, *v.shape), jnp.nan, v.dtype), values)

        diag = empty(plan.record(state), plan.save_ts.shape[0])
        snaps = empty(plan.observe(state), plan.snapshot_ts.shape[0])
        return _Loop(
            _Carry(state, opt_gen.init(state.generator), opt_critic.init(state.critic)),
            _write(diag, plan.record, state, plan.save_slots[0]),
            _write(snaps, plan.observe, state, plan.snap_slots[0]),
            jnp.asarray(plan.n_steps + 1, dtype=jnp.int32),
            key,
        )

    return one(state, key) if state_axis is False else jax.vmap(one, (state_axis, 0))(state, key)


def _advance(plan: _Plan, loop: _Loop, k_a: int, k_b: int, batched: bool) -> _Loop:
    """Steps ``k_a + 1 .. k_b``; once a state is non-finite, the loop stands still."""
    return _steps(plan, loop, jnp.arange(k_a + 1, k_b + 1, dtype=jnp.int32), batched)


@eqx.filter_jit
def _steps(plan: _Plan, loop: _Loop, steps: Int[Array, " k"], batched: bool) -> _Loop:
    """:func:`_advance` compiled once per number of steps (the step indices are traced)."""
    iteration, _, _ = _iteration(plan.problem, plan.algorithm, plan.eta_d)
    n_steps = plan.n_steps

    def body(loop: _Loop, inputs) -> tuple[_Loop, None]:
        k, save_slot, snap_slot = inputs

        def step(loop: _Loop) -> _Loop:
            carry = iteration(loop.carry, jax.random.fold_in(loop.key, k))
            s = carry.state
            bad = ~finite(s)
            return _Loop(
                carry,
                _write(loop.diagnostics, plan.record, s, jnp.where(bad, -1, save_slot)),
                _write(loop.snapshots, plan.observe, s, jnp.where(bad, -1, snap_slot)),
                jnp.where(bad, k, loop.first_bad),
                loop.key,
            )

        return jax.lax.cond(loop.first_bad > n_steps, step, lambda lp: lp, loop), None

    def run(loop: _Loop) -> _Loop:
        inputs = (steps, plan.save_slots[steps], plan.snap_slots[steps])
        return jax.lax.scan(body, loop, inputs)[0]

    return jax.vmap(run)(loop) if batched else run(loop)


def _finish(plan: _Plan, loop: _Loop, reached: int | None = None) -> Trajectory:
    """The trajectory of a loop that has run to step ``reached`` (default: the end);
    batched loops give batched trajectories."""
    if loop.first_bad.ndim:
        return jax.vmap(lambda lp: _finish(plan, lp, reached))(loop)
    reached = plan.n_steps if reached is None else reached
    done = jnp.where(loop.first_bad > plan.n_steps, reached, loop.first_bad)
    return Trajectory(
        ts=plan.save_ts,
        diagnostics=loop.diagnostics,
        snapshot_ts=plan.snapshot_ts,
        snapshots=loop.snapshots,
        final=loop.carry.state,
        final_t=plan.algorithm.eta * done,
        result=outcome(loop.carry.state, done, plan.n_steps),
        num_steps=jnp.asarray(done),
        entries="particles",
    )
