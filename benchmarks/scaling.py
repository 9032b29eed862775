"""Time and memory per step against the number of particles N = M, with and without chunks.

Tanh neuron units in 2-D (K = L = 2), WGAN loss, ``s²`` latent and ``s²`` data nodes
(default ``s = 32``: 1024 each), hard clipping; one step is one projected Euler step of the
mean-field ODE (both velocities, the step, the clip), jitted. ``chunked``: the game's
default particle blocks; ``unchunked``: one block of all N particles (``N × nodes`` tables
materialize). Memory is XLA's analysis of the compiled step (temporaries + arguments +
outputs), the memory the step needs. N doubles from ``2^min_log2`` while the step fits in
``--memory-gib`` (24 by default; at most half the memory available now, so a shared machine
is not pushed into swapping or OOM) and its median time stays under ``--max-seconds``; the
largest N reached is reported per variant. Times are ``jax.block_until_ready`` medians
over ``--repeats`` after a warm-up. Writes ``benchmarks/results/scaling.json`` after
every row.

    python benchmarks/scaling.py [--quick] [--min-log2 10] [--max-log2 22] [--max-seconds 20]
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from _timing import warm_median

import gandyn as gd


def step_fn(n: int, size: int, chunk: int | None):
    """A jitted projected Euler step and its initial state for ``n`` particles per player."""
    game = gd.MeanFieldGame(
        gd.NeuronUnit(2, 2, jnp.tanh),
        gd.NeuronCritic(2, jnp.tanh),
        gd.Normal(np.ones(2), 0.5).quadrature(size),
        gd.Normal(np.zeros(2), 1.0).quadrature(size),
        chunk_size=chunk,
    )
    key_gen, key_critic = jax.random.split(jax.random.key(0))
    gen = gd.ParticleMeasure(jax.random.normal(key_gen, (n, game.generator.param_dim)))
    critic = gd.ParticleMeasure(
        jax.random.uniform(key_critic, (n, game.critic.param_dim), minval=-0.5, maxval=0.5)
    )
    problem, state = gd.MeanFieldProblem.from_measures(game, gd.HardClip(1.0), gen, critic)
    dt = 0.01

    def step(s):
        velocity = problem.vector_field(0.0, s)
        return problem.project(jax.tree.map(lambda x, v: x + dt * v, s, velocity))

    return jax.jit(step), state


def measure(n: int, size: int, chunk: int | None, repeats: int, memory_limit: float) -> dict:
    step, state = step_fn(n, size, chunk)
    stats = step.lower(state).compile().memory_analysis()
    memory = None
    if stats is not None:
        memory = (
            stats.temp_size_in_bytes + stats.argument_size_in_bytes + stats.output_size_in_bytes
        )
    row = {"n": n, "chunk": "auto" if chunk is None else chunk, "memory_bytes": memory}
    if memory is not None and memory > memory_limit:
        return row | {"fits": False}
    median, _ = warm_median(lambda: step(state), repeats)
    return row | {"fits": True, "seconds": median, "particles_per_second": 2 * n / median}


def main() -> None:
    parser = argparse.ArgumentParser(description="Time and memory per step against N.")
    parser.add_argument("--quick", action="store_true", help="N up to 2^12, s = 8")
    parser.add_argument("--size", type=int, default=32, help="quadrature nodes per axis")
    parser.add_argument("--min-log2", type=int, default=10)
    parser.add_argument("--max-log2", type=int, default=22)
    parser.add_argument("--max-seconds", type=float, default=20.0)
    parser.add_argument("--memory-gib", type=float, default=24.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.quick:
        args.size, args.max_log2 = 8, 12
    limit = min(args.memory_gib * 2**30, gd.available_memory() / 2)

    rows, largest = [], {}
    out = Path(__file__).parent / "results" / "scaling.json"
    out.parent.mkdir(parents=True, exist_ok=True)

    def write() -> None:
        result = {
            "benchmark": "scaling",
            "units": "tanh neuron, K = L = 2",
            "nodes": {"latent": args.size**2, "data": args.size**2},
            "dtype": str(jnp.zeros(()).dtype),
            "memory_limit_bytes": limit,
            "max_seconds": args.max_seconds,
            "repeats": args.repeats,
            "rows": rows,
            "largest": largest,
            "machine": {"python": platform.python_version(), "jax": jax.__version__},
            "devices": [str(d) for d in jax.devices()],
        }
        out.write_text(json.dumps(result, indent=2) + "\n")

    for variant in ("chunked", "unchunked"):
        for log2 in range(args.min_log2, args.max_log2 + 1):
            n = 2**log2
            row = measure(n, args.size, None if variant == "chunked" else n, args.repeats, limit)
            row["variant"] = variant
            rows.append(row)
            shown = f"{row['seconds']:.4g} s" if row["fits"] else "does not fit"
            memory = row["memory_bytes"]
            print(f"{variant:>9}  N = 2^{log2:<2}  {shown:>12}  {(memory or 0) / 2**20:10.1f} MiB")
            if row["fits"]:
                largest[variant] = {"n": n, "seconds": row["seconds"], "memory_bytes": memory}
            write()
            if not row["fits"] or row["seconds"] > args.max_seconds:
                break
    print(f"largest N: {json.dumps(largest)}; wrote {out}")


if __name__ == "__main__":
    main()
