"""The mean-field problem of a game and the state of its players (what every solver of
the particle ODE consumes), and the state functions recorded or tracked by a run."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._types import Array, ArrayLike, Float, PyTree, Scalar
from ..constraints import AbstractConstraint, NoConstraint
from ..measure import ParticleMeasure
from .velocity import critic_velocity, generator_velocity
from .wgan import MeanFieldGame


class MeanFieldState(eqx.Module):
    """Positions of both players: generator ``(n, p)``; critic ``(m, q)`` in the
    constraint's coordinates (``u``; read ``ω = constraint.observe(u)``).

    ``first_times``: event name → first time the event occurred so far (``inf``: not
    yet), as :func:`~gandyn.simulate` leaves it in ``Trajectory.final``; a run started
    from such a state continues it (checkpointed segments). ``None`` on a state no run
    has made.
    """

    generator: Float[Array, "n p"]
    critic: Float[Array, "m q"]
    first_times: dict[str, Float[ArrayLike, ""]] | None = None


class MeanFieldProblem(eqx.Module):
    """Everything but the solver: the game, the critic's constraint and the particle
    weights (constant in time). Its ``vector_field`` is the mean-field ODE."""

    game: MeanFieldGame
    constraint: AbstractConstraint
    generator_weights: Float[Array, " n"]
    critic_weights: Float[Array, " m"]

    def __init__(
        self,
        game: MeanFieldGame,
        constraint: AbstractConstraint | None,
        generator_weights: Float[Array, " n"],
        critic_weights: Float[Array, " m"],
    ):
        self.game = game
        self.constraint = NoConstraint() if constraint is None else constraint
        self.generator_weights = jnp.asarray(generator_weights)
        self.critic_weights = jnp.asarray(critic_weights)

    @classmethod
    def from_measures(
        cls,
        game: MeanFieldGame,
        constraint: AbstractConstraint | None,
        gen: ParticleMeasure,
        critic: ParticleMeasure,
    ) -> tuple[MeanFieldProblem, MeanFieldState]:
        """The problem and its initial state for initial measures ``gen`` and ``critic``."""
        if gen.dim != game.generator.param_dim:
            raise ValueError(
                f"generator particles have {gen.dim} coordinates, the unit needs "
                f"{game.generator.param_dim}"
            )
        if critic.dim != game.critic.param_dim:
            raise ValueError(
                f"critic particles have {critic.dim} coordinates, the unit needs "
                f"{game.critic.param_dim}"
            )
        problem = cls(game, constraint, gen.weights, critic.weights)
        state = MeanFieldState(gen.positions, problem.constraint.to_state(critic.positions))
        return problem, state

    def measures(self, state: MeanFieldState) -> tuple[ParticleMeasure, ParticleMeasure]:
        """Generator and critic measures (critic read through the constraint)."""
        return (
            ParticleMeasure(state.generator, self.generator_weights),
            ParticleMeasure(self.constraint.observe(state.critic), self.critic_weights),
        )

    def vector_field(self, t, state: MeanFieldState, args=None) -> MeanFieldState:
        """``d state/dt``: ``V_G`` for the generator, the constrained ``λ V_D`` for the critic."""
        del t, args
        gen, critic = self.measures(state)
        v_gen = generator_velocity(self.game, gen, critic)
        v_critic = critic_velocity(self.game, gen, critic)
        return MeanFieldState(v_gen, self.constraint.velocity(state.critic, v_critic))

    def project(self, state: MeanFieldState) -> MeanFieldState:
        """The constraint's projection of the critic part."""
        return MeanFieldState(state.generator, self.constraint.project(state.critic))

    def wall_gap(self, state: MeanFieldState) -> Scalar:
        """``max_k |u_k| − c`` over the critic's state: ``≥ 0`` exactly when some
        coordinate is on (or past) a wall of the box (``−inf`` without walls)."""
        return jnp.max(jnp.abs(state.critic)) - getattr(self.constraint, "c", jnp.inf)


Diagnostic = Callable[[MeanFieldProblem, MeanFieldState], PyTree]
"""A function of the state recorded at the save times of a run (``gandyn.diagnostics``)."""

Signal = Callable[[MeanFieldProblem, MeanFieldState], Scalar]
"""An event of a run: it occurs when the signal is ``≥ 0``."""

WALL_CONTACT: dict[str, Signal] = {"wall_contact": MeanFieldProblem.wall_gap}
"""The events every run tracks unless told otherwise: some critic coordinate on a wall."""


def with_first_times(
    state: MeanFieldState, events: Mapping[str, Signal] = WALL_CONTACT
) -> MeanFieldState:
    """``state`` with a ``first_times`` entry for each of ``events``: its own if it has
    them (it must track exactly these), otherwise ``inf`` (not yet)."""
    if state.first_times is None:
        # a host scalar, uncommitted: it follows the state onto whatever devices it is on
        inf = np.full((), np.inf, dtype=jax.dtypes.canonicalize_dtype(float))
        return MeanFieldState(state.generator, state.critic, {name: inf for name in events})
    if set(state.first_times) != set(events):
        raise ValueError(
            f"the state tracks the events {sorted(state.first_times)}, the run "
            f"{sorted(events)}; give the same events"
        )
    return state
