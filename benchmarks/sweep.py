"""A vmapped sweep against a Python loop of the same jitted run.

Toy T1 (``toy-shift-linear``, hard clipping) on a ``c × λ`` grid of 64 (default) configs.
Three timings, in the same process, each a ``jax.block_until_ready`` wall-clock median
over ``--repeats`` after a warm-up (so compilation is excluded everywhere):

* ``loop``: ``jax.jit`` of the single run's outcomes (the swept keys as arguments,
  compiled once), called once per config from Python;
* ``sweep``: ``gandyn.sweep`` end to end (validation, cached trace and compilation, the
  vmapped call, assembling the ``xarray.Dataset``);
* ``vmapped_call``: the compiled vmapped call alone.

Also checks that both give the same outcomes. Writes ``benchmarks/results/sweep.json``
(``sweep_quick.json`` with ``--quick``: 16 particles, 100 steps, where per-run overheads
dominate and batching pays most).

    python benchmarks/sweep.py [--quick] [--side 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

from _timing import warm_median  # noqa: E402

import gandyn as gd  # noqa: E402
from gandyn.experiments import get_experiment, resolve_config  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description="A vmapped sweep against a Python loop.")
    parser.add_argument("--quick", action="store_true", help="small particles and horizon")
    parser.add_argument("--side", type=int, default=8, help="values per key (side² configs)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    base = {"clip": "hard", "n_gen": 64, "n_critic": 64, "quadrature": 16, "t1": 10.0}
    base |= {"dt": 0.01, "n_snapshots": 2}
    if args.quick:
        base |= {"n_gen": 16, "n_critic": 16, "quadrature": 8, "t1": 2.0, "dt": 0.02}
    grid = {
        "c": [float(v) for v in np.linspace(0.05, 0.5, args.side)],
        "lam": [float(v) for v in np.linspace(0.5, 4.0, args.side)],
    }
    experiment = get_experiment("toy-shift-linear")
    assert experiment.outcomes is not None
    outcomes = experiment.outcomes
    config = resolve_config(experiment, base)
    points = [(c, lam) for c in grid["c"] for lam in grid["lam"]]

    single = jax.jit(lambda c, lam: outcomes(config | {"c": c, "lam": lam}))

    def loop():
        return [jax.block_until_ready(single(c, lam)) for c, lam in points]

    vmapped = jax.jit(jax.vmap(lambda c, lam: outcomes(config | {"c": c, "lam": lam})))
    cs, lams = (jnp.asarray(v) for v in zip(*points, strict=True))

    t_loop, looped = warm_median(loop, args.repeats)
    t_sweep, dataset = warm_median(lambda: gd.sweep("toy-shift-linear", grid, base), args.repeats)
    t_call, _ = warm_median(lambda: vmapped(cs, lams), args.repeats)

    worst = 0.0
    for (c, lam), out in zip(points, looped, strict=True):
        for name, value in out.items():
            swept = float(dataset[name].sel(c=c, lam=lam))
            if np.isfinite(value):
                worst = max(worst, abs(swept - float(value)) / max(abs(float(value)), 1e-300))
    result = {
        "benchmark": "sweep",
        "experiment": "toy-shift-linear",
        "config": base,
        "configs": len(points),
        "repeats": args.repeats,
        "seconds": {"loop": t_loop, "sweep": t_sweep, "vmapped_call": t_call},
        "speedup": {"sweep_vs_loop": t_loop / t_sweep, "vmapped_call_vs_loop": t_loop / t_call},
        "max_relative_difference": worst,
        "machine": {"python": platform.python_version(), "jax": jax.__version__},
        "devices": [str(d) for d in jax.devices()],
    }
    out = Path(__file__).parent / "results" / ("sweep_quick.json" if args.quick else "sweep.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["seconds"] | result["speedup"], indent=2))
    print(f"max relative difference sweep vs loop: {worst:.2e}; wrote {out}")


if __name__ == "__main__":
    main()
