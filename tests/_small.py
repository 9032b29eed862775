"""A toy configuration small enough to compile and run in a second or two."""

from typing import Any

SMALL: dict[str, Any] = {
    "n_gen": 6,
    "n_critic": 6,
    "quadrature": 4,
    "t1": 2.0,
    "dt": 0.05,
    "n_snapshots": 2,
}
