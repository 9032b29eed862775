"""Particle ensembles sharded over devices (DESIGN §4, §5).

A 1-D :class:`jax.sharding.Mesh` over the particle axis: each device holds ``n / d``
generator and ``m / d`` critic particles (positions and weights); the quadrature rules and
the hyper-parameters are replicated. ``simulate`` and ``train_wgan`` are compiled
functions, so they run on sharded inputs unchanged: XLA partitions the per-particle work
and turns the sums over particles (``G[μ](z)``, ``D[ν](x)``) into cross-device reductions.
Results equal those of one device up to the order of those sums (round-off)::

    from gandyn.sharding import particle_mesh, shard_problem

    mesh = particle_mesh()                             # all devices
    problem, state = shard_problem(problem, state, mesh)
    trajectory = gandyn.simulate(problem, state, t1=..., dt=...)

On CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (set before ``jax`` is
imported) simulates 8 devices. Several hosts: call ``jax.distributed.initialize()`` on
every process first; ``particle_mesh()`` then spans the devices of all processes. Every
process builds the same initial problem and state (they are deterministic functions of the
config and its seed) and :func:`shard_problem` hands each device its own slice (through
``jax.make_array_from_callback``, which only materialises the local shards); outputs are
global arrays, whose replicated entries (diagnostics) every process can read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import equinox as eqx
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .games import MeanFieldProblem, MeanFieldState

PARTICLES = "particles"
"""Name of the mesh axis that the particle axis is split over."""

Tree = TypeVar("Tree")


def particle_mesh(devices: Sequence[Any] | None = None) -> Mesh:
    """A 1-D mesh named :data:`PARTICLES` over ``devices`` (default: all devices)."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("a particle mesh needs at least one device")
    return Mesh(np.asarray(devices), (PARTICLES,))


def _put(x: jax.Array, sharding: NamedSharding) -> jax.Array:
    value = np.asarray(jax.device_get(x))
    return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])


def _check_divisible(name: str, n: int, mesh: Mesh) -> None:
    d = mesh.shape[PARTICLES]
    if n % d:
        raise ValueError(
            f"{name}: {n} particles cannot be split evenly over {d} devices; use a multiple "
            f"of {d} particles or a mesh over a divisor of {n} devices"
        )


def shard_particles(tree: Tree, mesh: Mesh) -> Tree:
    """``tree`` (a :class:`~gandyn.MeanFieldState`, :class:`~gandyn.ParticleMeasure`, …) with
    the leading (particle) axis of every array leaf split over ``mesh``."""
    sharding = NamedSharding(mesh, PartitionSpec(PARTICLES))

    def put(x):
        if not eqx.is_array(x):
            return x
        if x.ndim == 0:
            raise ValueError("shard_particles: every array needs a leading particle axis")
        _check_divisible("shard_particles", x.shape[0], mesh)
        return _put(x, sharding)

    return jax.tree.map(put, tree)


def replicate(tree: Tree, mesh: Mesh) -> Tree:
    """``tree`` with every array leaf copied to all devices of ``mesh``."""
    sharding = NamedSharding(mesh, PartitionSpec())
    return jax.tree.map(lambda x: _put(x, sharding) if eqx.is_array(x) else x, tree)


def shard_problem(
    problem: MeanFieldProblem, state: MeanFieldState, mesh: Mesh
) -> tuple[MeanFieldProblem, MeanFieldState]:
    """``problem`` and ``state`` laid out over ``mesh``: particle positions and weights split
    along the particle axis, everything else (game, quadrature, constraint) replicated.

    Both particle counts must be multiples of the number of devices.
    """
    _check_divisible("generator", state.generator.shape[0], mesh)
    _check_divisible("critic", state.critic.shape[0], mesh)
    problem = replicate(problem, mesh)
    problem = eqx.tree_at(
        lambda p: (p.generator_weights, p.critic_weights),
        problem,
        shard_particles((problem.generator_weights, problem.critic_weights), mesh),
    )
    return problem, shard_particles(state, mesh)
