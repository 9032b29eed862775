"""Grid solvers: cell-updates per second against grid size, 1-D and 2-D.

Continuity equation (toy T1 on both players' grids, upwind and MUSCL, CFL steps) and the
study-J Fokker–Planck equation (explicit and implicit). Each case is run once to compile
(warm-up), then ``--repeats`` times; times are ``jax.block_until_ready`` wall-clock
medians. A cell-update is one cell advanced by one time step (MUSCL steps have two stages,
implicit steps a Newton solve). Writes ``benchmarks/results/grids.json``.

    python benchmarks/grids.py [--quick] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from _timing import warm_median  # noqa: E402

from gandyn import (  # noqa: E402
    ContinuityProblem,
    GaussianMixture,
    Grid,
    HardClip,
    LinearCritic,
    MeanFieldGame,
    Normal,
    ShiftUnit,
    solve_continuity,
    solve_fokker_planck,
)
from gandyn.distributions import ring_mixture  # noqa: E402
from gandyn.experiments.choices import SCHEMES  # noqa: E402


def continuity_case(dim: int, cells: int, scheme: str, repeats: int) -> dict:
    data = GaussianMixture(np.array([[-1.0] * dim, [1.0] * dim]), None, 0.3)
    game = MeanFieldGame(
        ShiftUnit(dim),
        LinearCritic(dim),
        data.quadrature(8),
        Normal(np.zeros(dim), 1.0).quadrature(8),
    )
    problem = ContinuityProblem(
        game,
        HardClip(0.5),
        Grid(np.full(dim, -3.0), 4.0, cells),
        Grid(np.full(dim, -0.5), 0.5, cells),
        SCHEMES[scheme],
    )
    state = problem.initial_state(Normal(np.full(dim, 0.5), 0.3), Normal(np.zeros(dim), 0.09))
    t1 = 1.0 if dim == 1 else 0.5
    seconds, traj = warm_median(
        lambda: solve_continuity(problem, state, t1=t1, save_ts=[0.0, t1]), repeats
    )
    steps = int(traj.num_steps)
    total = problem.generator_grid.size + problem.critic_grid.size
    return {
        "solver": f"continuity-{scheme}",
        "dim": dim,
        "cells_per_axis": cells,
        "cells": total,
        "steps": steps,
        "median_s": seconds,
        "cell_updates_per_s": steps * total / seconds,
    }


def fokker_planck_case(dim: int, cells: int, method: str, repeats: int) -> dict:
    if dim == 1:
        data, init, box = (
            GaussianMixture(np.array([0.0]), None, 1.0),
            GaussianMixture(np.array([1.0]), None, 1.0),
            (-8.0, 9.0),
        )
    else:
        data, init, box = (
            ring_mixture(2.0, 8, 0.4),
            GaussianMixture(np.array([[0.5, 0.0]]), None, 0.5),
            (-4.5, 4.5),
        )
    probe = solve_fokker_planck(data, init, box, cells, 1e-6, n_saves=2)
    limit = float(probe.dt) / 0.9
    dt = 0.9 * limit if method == "explicit" else 10 * limit
    t1 = 400 * dt  # 400 steps
    seconds, sol = warm_median(
        lambda: solve_fokker_planck(data, init, box, cells, t1, method=method, n_saves=5, dt=dt),
        repeats,
    )
    total = cells**dim
    return {
        "solver": f"fokker-planck-{method}",
        "dim": dim,
        "cells_per_axis": cells,
        "cells": total,
        "steps": int(sol.num_steps),
        "median_s": seconds,
        "cell_updates_per_s": int(sol.num_steps) * total / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small grids only")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sizes_1d = [100, 400] if args.quick else [100, 400, 1600, 6400]
    sizes_2d = [16, 32] if args.quick else [16, 32, 64, 128]
    rows = []
    for dim, sizes in ((1, sizes_1d), (2, sizes_2d)):
        for cells in sizes:
            for scheme in ("upwind", "muscl"):
                rows.append(continuity_case(dim, cells, scheme, args.repeats))
                print(rows[-1], flush=True)
            for method in ("explicit", "implicit"):
                rows.append(fokker_planck_case(dim, cells, method, args.repeats))
                print(rows[-1], flush=True)
    out = Path(__file__).parent / "results" / "grids.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "machine": platform.machine(),
        "x64": True,
        "repeats": args.repeats,
    }
    out.write_text(json.dumps({"environment": meta, "results": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
