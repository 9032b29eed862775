"""Checkpoint overhead: wall time of whole `gandyn run`s with checkpoints off, at the default
interval (about ten per run) and at a ten times shorter interval.

Each run is a fresh process (compilation included, as a user pays it); the time is the
run's own ``elapsed_s`` from ``run.json`` (experiment and checkpoint writes, not imports or
the final plots). Also, in this process after a warm-up (compiled, so only the stepping
and the checkpoint writes count), ``warm_s``. Reports medians over ``--repeats`` runs and
the overhead against the checkpoint-free run measured in the same session.

    python benchmarks/checkpoint.py [--quick] [--repeats 3] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from velocity import RESULTS, machine, write

CASES = {
    "toy-shift-linear": {"t1": 40.0, "dt": 0.01},
    "neuron-bimodal-1d": {},
    "mean-field-vs-sgd": {},
}
QUICK = {
    "toy-shift-linear": {"t1": 10.0, "dt": 0.01},
    "neuron-bimodal-1d": {"t1": 5.0},
}


def interval(name: str, config: dict, mode: str) -> str:
    """``--checkpoint-every`` for a mode: off, auto, or a tenth of auto (``steps``)."""
    if mode != "frequent":
        return mode
    from gandyn.checkpoint import default_interval
    from gandyn.experiments import get_experiment, resolve_config

    full = resolve_config(get_experiment(name), config)
    steps = round(default_interval(full["t1"], full["dt"]) / full["dt"])
    return f"{max(1, steps // 10)}steps"


def one_run(name: str, config: dict, every: str) -> float:
    """Seconds of one ``gandyn run`` (its ``elapsed_s``), in a fresh process."""
    sets = [a for k, v in config.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cli = [sys.executable, "-c", "from gandyn.cli import main; main()"]
        cmd = [*cli, "run", name, *sets, "--no-plots"]
        done = subprocess.run(
            [*cmd, "--checkpoint-every", every, "--out", str(out), "--no-progress"],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{name} ({every}) failed:\n{done.stderr}")
        return json.loads((out / "run.json").read_text())["elapsed_s"]


def warm_run(name: str, config: dict, every: str) -> float:
    """Median seconds of ``experiment.run`` in this process, compiled, checkpoints in a
    temporary folder (``every`` as for the command line)."""
    from _timing import warm_median

    from gandyn.checkpoint import CheckpointSpec
    from gandyn.cli import parse_interval
    from gandyn.experiments import RunOptions, get_experiment, resolve_config

    experiment = get_experiment(name)
    full = resolve_config(experiment, config)
    interval = parse_interval(every, full)

    def once():
        with tempfile.TemporaryDirectory() as tmp:
            spec = None if interval == 0.0 else CheckpointSpec(Path(tmp), interval)
            return experiment.run(full, RunOptions(checkpoint=spec)).summary

    return warm_median(once, 3)[0]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, two experiments")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    cases = QUICK if args.quick else CASES
    rows = []
    for name, config in cases.items():
        times = {}
        for mode in ("off", "auto", "frequent"):
            every = interval(name, config, mode)
            runs = [one_run(name, config, every) for _ in range(args.repeats)]
            times[mode] = {
                "every": every,
                "median_s": statistics.median(runs),
                "runs_s": runs,
                "warm_s": warm_run(name, config, every),
            }
        base = times["off"]["median_s"]
        row = {"experiment": name, "config": config, "times": times}
        warm = times["off"]["warm_s"]
        row |= {f"overhead_{m}_pct": 100 * (times[m]["median_s"] / base - 1) for m in times}
        row |= {f"warm_overhead_{m}_pct": 100 * (times[m]["warm_s"] / warm - 1) for m in times}
        rows.append(row)
        auto, often = times["auto"], times["frequent"]
        print(
            f"{name:<18} off {base:6.2f} s (warm {warm:.3f})   auto {auto['median_s']:6.2f} s "
            f"({row['overhead_auto_pct']:+.0f}%; warm {auto['warm_s']:.3f}, "
            f"{row['warm_overhead_auto_pct']:+.0f}%)   {often['every']} "
            f"{often['median_s']:6.2f} s ({row['overhead_frequent_pct']:+.0f}%; warm "
            f"{often['warm_s']:.3f}, {row['warm_overhead_frequent_pct']:+.0f}%)"
        )
    result = {"machine": machine(), "repeats": args.repeats, "rows": rows}
    print(f"wrote {write(result, args.out, 'checkpoint')}")
    return result


if __name__ == "__main__":
    main()
