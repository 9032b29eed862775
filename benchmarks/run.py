"""Run every benchmark: velocity evaluation against N = M, then the full run.

Prints one table per benchmark (median, min–max, ratios to each peer) and writes one JSON
file with both under ``benchmarks/results/`` (or ``--out``). Timings are only meaningful on
a quiet machine; ``--quick`` (under a minute) is a smoke run, not a measurement.

    python benchmarks/run.py [--quick] [--sizes 8 12 16 20] [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import full_run
import velocity


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument(
        "--sizes", type=int, nargs="+", help="log2 N of the velocity benchmark (default 8…20)"
    )
    parser.add_argument("--out", type=Path, default=velocity.RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        sizes, repeats, peer_max = args.sizes or [8, 12], 3, 12
        full = {"n": 2048, "steps": 10, "repeats": 2}
    else:
        sizes, repeats, peer_max = args.sizes or list(range(8, 21)), 5, 16
        full = {"n": 16384, "steps": 100, "repeats": 3}
    print(velocity.HEADER)
    result_velocity = velocity.run(sizes, repeats=repeats, peer_max_log2=peer_max)
    ratio = result_velocity.get("time_ratio_2^16_over_2^12")
    if ratio is not None:
        print(f"time(2^16)/time(2^12) = {ratio:.2f} (linear: 16)")
    result_full = full_run.run(
        full["n"], size=64, steps=full["steps"], dt=0.05, c=1.0, repeats=full["repeats"]
    )
    print(full_run.summary(result_full))
    result = {"velocity": result_velocity, "full_run": result_full}
    print(f"wrote {velocity.write(result, args.out, 'all')}")
    return result


if __name__ == "__main__":
    main()
