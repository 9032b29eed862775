"""Sums and maps of per-particle functions over the particle axis, in blocks, so that no
particles × nodes array is ever materialized whole (DESIGN §5).

Full blocks of ``chunk`` particles go through ``lax.scan``; the remainder (``n mod chunk``
particles) is one more call at its own shape: no padding, nothing computed twice.

Sums over particles contract each block with the weights (a matrix product). In maps, a
block of ``c = 2^SPLIT · r`` particles is laid out as ``(2,) * SPLIT + (r,)`` (nested
``vmap``): with the unit's own axes every per-pair array then has rank above 8, which keeps
XLA:CPU from handing the per-particle reductions to YNNPACK — whose reductions over a short
minor axis (the ``K = 2`` outputs of a unit) measured ~20× slower than XLA's fused loops.
Neither choice changes the result beyond round-off.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from .._types import Array, PyTree

BLOCK_ELEMENTS = 2**18
"""Target size of one block's ``chunk × nodes`` table: 1 MiB in float32, the L2 cache of
one core of the machines gandyn is tuned on."""

SPLIT = 7
"""A block whose size is a multiple of ``2^SPLIT`` is vmapped as ``SPLIT + 1`` nested axes."""


def auto_chunk(n_nodes: int, chunk: int | None = None) -> int:
    """``chunk`` if given, else the largest power of two with ``chunk × n_nodes`` at most
    :data:`BLOCK_ELEMENTS`, at least ``2^SPLIT``."""
    if chunk is not None:
        return chunk
    return 1 << max(SPLIT, (BLOCK_ELEMENTS // max(n_nodes, 1)).bit_length() - 1)


def _split_map(fn: Callable[[Array], Array], block: Array) -> Array:
    """``vmap(fn)`` over the leading axis of ``block``, as nested axes when it divides."""
    c = block.shape[0]
    axes = (2,) * SPLIT + (c >> SPLIT,) if c % (1 << SPLIT) == 0 else (c,)
    lifted = fn
    for _ in axes:
        lifted = jax.vmap(lifted)
    out = lifted(block.reshape(*axes, *block.shape[1:]))
    return out.reshape(c, *out.shape[len(axes) :])


def _split(arrays: Sequence[Array], chunk: int):
    n = arrays[0].shape[0]
    full = n - n % chunk
    heads = [a[:full].reshape(full // chunk, chunk, *a.shape[1:]) for a in arrays]
    tails = [a[full:] for a in arrays]
    return heads, tails, full, n - full


def weighted_sum(fn: Callable[[Array], PyTree]) -> Callable[[Array, Array], PyTree]:
    """The block function ``(θ (c, p), w (c,)) ↦ Σ_i w_i fn(θ_i)``, a matrix product."""

    def block_sum(theta, w):
        return jax.tree_util.tree_map(lambda v: jnp.tensordot(w, v, axes=1), jax.vmap(fn)(theta))

    return block_sum


def particle_sum(
    block_sum: Callable[[Array, Array], PyTree], positions: Array, weights: Array, chunk: int
) -> PyTree:
    """``Σ_blocks block_sum(θ_block, w_block)`` over particles ``positions (n, p)`` with
    ``weights (n,)``; ``block_sum`` is additive over particles (e.g. :func:`weighted_sum`)."""
    heads, tails, full, rest = _split((positions, weights), chunk)
    total = None
    if full:

        def add_block(acc, block):
            return jax.tree_util.tree_map(jnp.add, acc, block_sum(*block)), None

        zero = jax.tree_util.tree_map(
            lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(block_sum, *(h[0] for h in heads))
        )
        total, _ = jax.lax.scan(add_block, zero, heads)
    if rest or not full:
        last = block_sum(*tails)
        total = last if total is None else jax.tree_util.tree_map(jnp.add, total, last)
    return total


def particle_map(fn: Callable[[Array], Array], points: Array, chunk: int) -> Array:
    """``[fn(θ_i)]_i`` for ``points (n, p)``, stacked along the leading axis."""
    (head,), (tail,), full, rest = _split((points,), chunk)
    parts = []
    if full:
        mapped = jax.lax.map(lambda block: _split_map(fn, block), head)
        parts.append(mapped.reshape(full, *mapped.shape[2:]))
    if rest or not full:
        parts.append(_split_map(fn, tail))
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts)
