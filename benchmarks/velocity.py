"""Velocity benchmark: one evaluation of both players' velocity fields against N = M.

Tanh neuron units in 2-D (K = L = 2), WGAN loss, a fixed quadrature of ``s²`` latent and
``s²`` data nodes. Prints a table and writes JSON with seconds per evaluation (median,
min, max over repeats after a warm-up), particles per second (N + M over the median) and,
where run, the hand-written NumPy and PyTorch peers (checked against gandyn's values before
they are timed) with gandyn's speed-up over each.

    python benchmarks/velocity.py [--quick] [--min-log2 8] [--max-log2 20] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import peers
from _timing import timed

import gandyn as gd

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    """Where a result came from."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "jax": jax.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def neuron_case(n: int, m: int, size: int = 32, dtype=jnp.float32, seed: int = 0):
    """``(game, gen, critic)``: tanh units in 2-D, ``size²`` latent nodes (Gauss–Hermite)
    and ``size²`` data nodes (4 Gaussian components × ``(size/2)²``), in ``dtype``."""
    means = [[-1.0, 0.0], [1.0, 0.5], [0.0, 1.5], [0.5, -1.0]]
    data = gd.GaussianMixture(means, stds=0.3).quadrature(max(1, size // 2))
    latent = gd.Normal(np.zeros(2), 1.0).quadrature(size)

    def cast(q):
        return gd.Quadrature(q.nodes.astype(dtype), q.weights.astype(dtype))

    game = gd.MeanFieldGame(
        gd.NeuronUnit(2, 2), gd.NeuronCritic(2), cast(data), cast(latent), lam=1.0
    )
    game = eqx_cast(game, dtype)
    key_gen, key_critic = jax.random.split(jax.random.key(seed))
    gen = gd.ParticleMeasure(jax.random.normal(key_gen, (n, 5), dtype))
    critic = gd.ParticleMeasure(jax.random.uniform(key_critic, (m, 4), dtype, -0.5, 0.5))
    return game, gen, critic


def eqx_cast(tree, dtype):
    """Every floating array leaf of ``tree`` in ``dtype``."""
    return jax.tree_util.tree_map(
        lambda x: (
            x.astype(dtype)
            if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jnp.floating)
            else x
        ),
        tree,
    )


def velocities_fn(game):
    """The jitted ``(gen, critic) ↦ (V_G, V_D)`` at the particles."""
    return jax.jit(
        lambda gen, critic: (
            gd.generator_velocity(game, gen, critic),
            gd.critic_velocity(game, gen, critic),
        )
    )


def check_peer(name: str, peer_values, reference) -> float:
    """Largest error of a peer relative to the largest velocity; raises above 1e-3."""
    error = max(
        float(np.max(np.abs(np.asarray(p) - np.asarray(r))) / np.max(np.abs(np.asarray(r))))
        for p, r in zip(peer_values, reference, strict=True)
    )
    if not error < 1e-3:
        raise AssertionError(f"{name} disagrees with gandyn: relative error {error:.2e}")
    return error


def run(
    log2_sizes: list[int],
    size: int = 32,
    repeats: int = 5,
    peer_max_log2: int = 16,
    min_time: float = 0.5,
) -> dict[str, Any]:
    """Benchmark every ``N = M = 2^k``; peers up to ``2^peer_max_log2``."""
    torch, skip_reason = peers.torch_or_none()
    if torch is not None:
        torch.set_num_threads(os.cpu_count() or 1)
    rows: list[dict[str, Any]] = []
    for k in log2_sizes:
        n = 2**k
        game, gen, critic = neuron_case(n, n, size)
        fn = velocities_fn(game)
        t0 = time.perf_counter()
        reference = jax.block_until_ready(fn(gen, critic))
        first_call = time.perf_counter() - t0
        row: dict[str, Any] = {
            "log2_n": k,
            "n": n,
            "m": n,
            "latent_nodes": game.latent.size,
            "data_nodes": game.data.size,
            "dtype": str(gen.positions.dtype),
            "first_call_s": first_call,
            "gandyn": timed(
                lambda fn=fn, gen=gen, critic=critic: fn(gen, critic), repeats, min_time
            ),
        }
        row["particles_per_s"] = 2 * n / row["gandyn"]["median"]
        if k <= peer_max_log2:
            case = peers.Case.from_game(game, gen, critic)
            row["numpy_error"] = check_peer(
                "numpy", peers.numpy_velocities(case, case.gen, case.critic), reference
            )
            row["numpy"] = timed(
                lambda case=case: peers.numpy_velocities(case, case.gen, case.critic),
                max(1, repeats // 2),
            )
            if torch is not None:
                peer = peers.TorchPeer(case)
                row["torch_error"] = check_peer(
                    "torch", peer.velocities(peer.gen, peer.critic), reference
                )
                row["torch"] = timed(
                    lambda peer=peer: peer.velocities(peer.gen, peer.critic), max(1, repeats // 2)
                )
            for name in ("numpy", "torch"):
                if name in row:
                    row[f"speedup_vs_{name}"] = row[name]["median"] / row["gandyn"]["median"]
        rows.append(row)
        print(format_row(row), flush=True)
    result: dict[str, Any] = {"benchmark": "velocity", "machine": machine(), "rows": rows}
    if skip_reason:
        result["torch_skipped"] = skip_reason
        print(skip_reason)
    by_k = {r["log2_n"]: r["gandyn"]["median"] for r in rows}
    if 12 in by_k and 16 in by_k:
        result["time_ratio_2^16_over_2^12"] = by_k[16] / by_k[12]
    return result


HEADER = (
    f"{'N=M':>8} {'median s':>10} {'min–max s':>19} {'particles/s':>12} "
    f"{'numpy s':>9} {'×numpy':>7} {'torch s':>9} {'×torch':>7}"
)


def format_row(row: dict) -> str:
    g = row["gandyn"]
    cells = [
        f"{row['n']:>8}",
        f"{g['median']:>10.4g}",
        f"{g['min']:>9.3g}–{g['max']:<9.3g}",
        f"{row['particles_per_s']:>12.3g}",
    ]
    for name in ("numpy", "torch"):
        if name in row:
            cells += [f"{row[name]['median']:>9.3g}", f"{row[f'speedup_vs_{name}']:>7.2f}"]
        else:
            cells += [f"{'–':>9}", f"{'–':>7}"]
    return " ".join(cells)


def write(result: dict, out: Path, name: str) -> Path:
    """``out/name-<UTC time>.json``."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps(result, indent=2))
    return path


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 2^8 … 2^14, few repeats")
    parser.add_argument("--min-log2", type=int, default=8)
    parser.add_argument("--max-log2", type=int, default=20)
    parser.add_argument("--size", type=int, default=32, help="latent nodes per axis (s² in all)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--peer-max-log2", type=int, default=16)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.max_log2, args.repeats, args.peer_max_log2 = min(args.max_log2, 14), 3, 12
    print(HEADER)
    result = run(
        list(range(args.min_log2, args.max_log2 + 1)),
        args.size,
        args.repeats,
        args.peer_max_log2,
        0.0 if args.quick else 0.5,
    )
    if "time_ratio_2^16_over_2^12" in result:
        print(f"time(2^16)/time(2^12) = {result['time_ratio_2^16_over_2^12']:.2f} (linear: 16)")
    print(f"wrote {write(result, args.out, 'velocity')}")
    return result


if __name__ == "__main__":
    main()
