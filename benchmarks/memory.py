"""Peak memory of each experiment's run against its estimate ``Experiment.memory(config)``.

Every registered experiment runs at its default config and at one scaled-up config where
its data dominate, each in a fresh subprocess (float64): the child imports jax and gandyn,
runs a trivial jitted op, reads its peak resident set size (``ru_maxrss``), runs
``experiment.run`` and reads it again; the difference is the measured peak. It includes the
compiler's memory (a few hundred MiB, not in the estimates), so at the small defaults the
estimate is far below it; at the scaled sizes the ratio estimate / measured should lie in
about [1/3, 3], and the estimate should bound the measured peak above the default's (the
compiler's share, about the same at both sizes, cancels there). Prints a table and writes
``benchmarks/results/memory.json``.

    python benchmarks/memory.py [--only NAME ...] [--skip-defaults]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

SCALED: dict[str, dict] = {
    "toy-shift-linear": {"n_gen": 2**22, "n_critic": 2**22, "t1": 0.1, "dt": 0.01},
    "neuron-bimodal-1d": {"n_gen": 2**21, "n_critic": 2**21, "t1": 0.05, "dt": 0.01},
    "mean-field-vs-sgd": {
        "widths": [16, 2**16],
        "seeds": 16,
        "t1": 0.05,
        "dt": 0.01,
        "width_eta": 0.005,
        "etas": [0.025, 0.0125],
    },
    "grid-blowup": {
        "resolutions": [100, 40000],
        "n_saves": 1001,
        "t1": 0.01,
        "penalty_betas": [1.0],
    },
    "fp-js-1d": {"cells": 125000, "n_saves": 501, "t1": 1e-6},
    "fp-js-2d": {"cells": 256, "n_saves": 1001, "t1": 0.1},
    "js-flow-particles": {"n_particles": 6000, "t1": 0.2, "dt": 0.02},
    "gan-as-ode": {"latent_quadrature": 64, "n_iter": 4, "snapshot_every": 2, "K_list": [1]},
    "mse-divergence": {
        "n_iter": 100000,
        "n_eta": 64,
        "refine": 62,
        "latent_scales": [1.0],
    },
}
"""Per experiment, the overrides of its scaled-up config (about 1 GiB of data)."""

RESULTS = Path(__file__).parent / "results"


def child(name: str, overrides: dict) -> dict:
    """Run one experiment here; the peak resident memory it added, in bytes."""
    import resource

    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import gandyn as gd
    from gandyn.experiments import RunOptions

    jax.jit(lambda x: x + 1)(jnp.ones(3)).block_until_ready()
    experiment = gd.experiments.get_experiment(name)
    config = gd.experiments.resolve_config(experiment, overrides)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    result = experiment.run(config, RunOptions())
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "baseline_bytes": before * 1024,
        "measured_bytes": (after - before) * 1024,
        "seconds": seconds,
        "status": result.status,
    }


def measure(name: str, label: str, overrides: dict, timeout: float) -> dict:
    """Estimate here, measure in a fresh process."""
    import gandyn as gd

    experiment = gd.experiments.get_experiment(name)
    estimate = experiment.memory(gd.experiments.resolve_config(experiment, overrides))
    command = [sys.executable, __file__, "--child", name, json.dumps(overrides)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)
    row = {"experiment": name, "config": label, "overrides": overrides, "estimate_bytes": estimate}
    row |= json.loads(done.stdout.strip().splitlines()[-1])
    row["ratio"] = estimate / row["measured_bytes"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="these experiments only")
    parser.add_argument("--skip-defaults", action="store_true", help="scaled configs only")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], json.loads(args.child[1]))))
        return

    import jax

    jax.config.update("jax_enable_x64", True)
    start = time.perf_counter()
    labels = ["default", "scaled"][args.skip_defaults :]
    rows = []
    header = f"{'experiment':<18} {'config':<7} {'estimate':>10} {'measured':>10} {'ratio':>5}"
    print(f"{header} {'above default':>14} {'ratio':>5}")
    for name in args.only or list(SCALED):
        default = None
        for label in labels:
            row = measure(name, label, SCALED[name] if label == "scaled" else {}, args.timeout)
            rows.append(row)
            mib = {k: v / 2**20 for k, v in row.items() if k.endswith("_bytes")}
            line = f"{name:<18} {label:<7} {mib['estimate_bytes']:>6.0f} MiB "
            line += f"{mib['measured_bytes']:>6.0f} MiB {row['ratio']:>5.2f}"
            if label == "default":
                default = row["measured_bytes"]
            elif default is not None:
                # the compiler's memory, about the same at both sizes, cancels out
                data = row["measured_bytes"] - default
                ratio = row["estimate_bytes"] / data
                row |= {"measured_above_default_bytes": data, "ratio_above_default": ratio}
                line += f" {data / 2**20:>10.0f} MiB {row['ratio_above_default']:>5.2f}"
            print(line, flush=True)
    meta = {
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "machine": platform.machine(),
        "x64": True,
        "seconds": time.perf_counter() - start,
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = RESULTS / "memory.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"environment": meta, "results": rows}, indent=2) + "\n")
    print(f"{meta['seconds']:.0f} s; wrote {out}")


if __name__ == "__main__":
    main()
