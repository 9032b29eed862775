"""Plots (matplotlib, Agg backend).

Only the CLI's write path, sweeps' plots and notebooks import this package; core modules
never do. Each experiment's plots are found by its name in :mod:`gandyn.plotting.registry`.
Every plot goes through :func:`finite`, so a run that went non-finite still gets its
figures: what cannot be drawn is left out and the axes say so.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from numpy.typing import ArrayLike  # noqa: E402

BOUND = 1e300
"""Largest ``|value|`` drawn: beyond it matplotlib's axis arithmetic overflows."""

NOTE = "gandyn-nonfinite"
"""``gid`` of the note :func:`finite` writes on an axes."""


def save_figure(fig, path: Path, dpi: int = 110) -> Path:
    """Lay out, write and close ``fig``; returns ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def finite(
    ax, values, at: ArrayLike | None = None, name: str = "t", what: str | None = None
) -> np.ndarray:
    """``values`` as a float array with NaN (which matplotlib leaves out, also from its axis
    ranges) wherever a value is non-finite or beyond ±:data:`BOUND`.

    If any are masked, a note on ``ax`` says so: ``no finite values``; or, given ``at`` (the
    coordinates of the leading axis of ``values``, e.g. the save times), ``non-finite from
    t = …`` naming the first coordinate with a masked value (``name`` is its symbol); else
    ``k of n values non-finite`` (``non-finite or beyond ±1e+300`` where finite values were
    masked too), after ``what:`` if given (which series, where an axes has several). Notes
    of several calls on one axes are joined.
    """
    values = np.asarray(values, dtype=float)
    bad = ~(np.abs(values) <= BOUND)
    kind = f"non-finite or beyond ±{BOUND:g}" if np.isfinite(values[bad]).any() else "non-finite"
    prefix = "" if what is None else f"{what}: "
    if bad.all() and bad.size:
        _note(ax, f"{prefix}no finite values")
    elif bad.any() and at is not None:
        first = int(np.argmax(bad.reshape(len(bad), -1).any(axis=1)))
        _note(ax, f"{prefix}{kind} from {name} = {float(np.asarray(at)[first]):.4g}")
    elif bad.any():
        _note(ax, f"{prefix}{int(bad.sum())} of {bad.size} values {kind}")
    return np.where(bad, np.nan, values)


def _note(ax, text: str) -> None:
    """Add the line ``text`` to the note in the top left corner of ``ax`` (once)."""
    for note in ax.texts:
        if note.get_gid() == NOTE:
            if text not in note.get_text().split("\n"):
                note.set_text(f"{note.get_text()}\n{text}")
            return
    ax.text(0.02, 0.96, text, transform=ax.transAxes, va="top", fontsize=7, color="C3", gid=NOTE)


def span(*arrays, room: float = 0.05) -> tuple[float, float]:
    """``(low, high)`` of the values within ±:data:`BOUND` in ``arrays`` (NaN ignored),
    widened by ``room`` of the width (of the magnitude when all are equal); ``(-1, 1)`` if
    there are none. For histogram ranges, which must be finite."""
    values = np.concatenate([np.ravel(np.asarray(a, dtype=float)) for a in arrays])
    values = values[np.abs(values) <= BOUND]
    if not values.size:
        return -1.0, 1.0
    low, high = float(values.min()), float(values.max())
    pad = room * ((high - low) or abs(high) or 1.0)
    return low - pad, high + pad
