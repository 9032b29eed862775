"""Full-run benchmark: steps per second of a whole simulation against NumPy and PyTorch loops.

T2-style model (DESIGN §1.4): tanh neuron generator and critic in 1-D, bimodal data,
HardClip(c), explicit Euler with a fixed step (projected Euler: ``ω ← clip(ω + dt λ V_D)``),
float32. gandyn runs ``simulate`` (one compiled diffrax loop; compile time reported
separately, as first call minus a steady call, in wall and in CPU time); the peers loop in
Python over their vectorised velocity functions; their final states are checked against
gandyn's.

    python benchmarks/full_run.py [--quick] [--n 16384] [--steps 100] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import peers
from _timing import timed
from velocity import RESULTS, check_peer, eqx_cast, machine, write

import gandyn as gd


def t2_case(n: int, size: int, c: float, seed: int = 0):
    """``(problem, state)`` of the T2-style model, ``size`` latent and ``2 size`` data nodes."""
    data = gd.GaussianMixture([-1.5, 1.5], stds=0.4).quadrature(size)
    latent = gd.Normal(0.0, 1.0).quadrature(size)
    game = gd.MeanFieldGame(gd.NeuronUnit(1, 1), gd.NeuronCritic(1), data, latent, lam=1.0)
    key_gen, key_critic = jax.random.split(jax.random.key(seed))
    gen = gd.sample_measure(key_gen, gd.Normal(np.zeros(3), 1.0), n)
    critic = gd.sample_measure(key_critic, gd.Uniform(np.full(3, -0.5), 0.5), n)
    problem, state = gd.MeanFieldProblem.from_measures(game, gd.HardClip(c), gen, critic)
    return eqx_cast(problem, jnp.float32), eqx_cast(state, jnp.float32)


def gandyn_run(problem, state, steps: int, dt: float):
    """Final ``(generator, critic)`` after ``steps`` projected Euler steps (no diagnostics)."""
    t1 = steps * dt
    traj = gd.simulate(
        problem, state, t1=t1, dt=dt, solver="euler", save_ts=[0.0, t1], diagnostics={}
    )
    return traj.final.generator, traj.final.critic


def run(n: int, size: int, steps: int, dt: float, c: float, repeats: int) -> dict[str, Any]:
    problem, state = t2_case(n, size, c)
    t0, cpu0 = time.perf_counter(), time.process_time()
    jax.block_until_ready(gandyn_run(problem, state, steps, dt))
    first_call, first_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    cpu0 = time.process_time()
    timing = timed(lambda: gandyn_run(problem, state, steps, dt), repeats)
    steady_cpu = (time.process_time() - cpu0) / timing["repeats"]
    gen, critic = problem.measures(state)
    case = peers.Case.from_game(problem.game, gen, critic)
    check_steps = min(steps, 5)
    reference = gandyn_run(problem, state, check_steps, dt)
    result: dict[str, Any] = {
        "benchmark": "full_run",
        "machine": machine(),
        "n": n,
        "m": n,
        "latent_nodes": problem.game.latent.size,
        "data_nodes": problem.game.data.size,
        "steps": steps,
        "dt": dt,
        "c": c,
        "dtype": "float32",
        "compile_s": first_call - timing["median"],
        "compile_cpu_s": first_cpu - steady_cpu,
        "gandyn": timing,
        "gandyn_steps_per_s": steps / timing["median"],
    }
    peer_runs = {"numpy": lambda k: peers.numpy_run(case, k, dt, c)}
    torch, reason = peers.torch_or_none()
    if torch is None:
        result["torch_skipped"] = reason
        print(reason)
    else:
        torch.set_num_threads(os.cpu_count() or 1)
        torch_peer = peers.TorchPeer(case)
        peer_runs["torch"] = lambda k: torch_peer.run(k, dt, c)
    for name, peer_run in peer_runs.items():
        result[f"{name}_error"] = check_peer(name, peer_run(check_steps), reference)
        result[name] = timed(lambda peer_run=peer_run: peer_run(steps), max(1, repeats // 2))
        result[f"{name}_steps_per_s"] = steps / result[name]["median"]
        result[f"speedup_vs_{name}"] = result[name]["median"] / timing["median"]
    return result


def summary(result: dict[str, Any]) -> str:
    g = result["gandyn"]
    lines = [
        f"full run N=M={result['n']}, {result['steps']} steps, "
        f"{result['latent_nodes']}+{result['data_nodes']} nodes: "
        f"gandyn {g['median']:.4g} s (min {g['min']:.3g}, max {g['max']:.3g}), "
        f"{result['gandyn_steps_per_s']:.1f} steps/s, compile {result['compile_s']:.2f} s "
        f"(CPU {result['compile_cpu_s']:.2f} s)"
    ]
    for name in ("numpy", "torch"):
        if name in result:
            lines.append(
                f"  {name}: {result[name]['median']:.4g} s, "
                f"{result[f'{name}_steps_per_s']:.1f} steps/s; gandyn ×"
                f"{result[f'speedup_vs_{name}']:.2f}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 4096, 20 steps")
    parser.add_argument("--n", type=int, default=16384)
    parser.add_argument("--size", type=int, default=64, help="latent nodes (data: twice)")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--dt", type=float, default=0.05)
    parser.add_argument("--c", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.steps, args.repeats = min(args.n, 4096), min(args.steps, 20), 2
    result = run(args.n, args.size, args.steps, args.dt, args.c, args.repeats)
    print(summary(result))
    print(f"wrote {write(result, args.out, 'full_run')}")
    return result


if __name__ == "__main__":
    main()
