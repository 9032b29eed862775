"""Plots of a sweep (an ``xarray.Dataset`` from :func:`gandyn.sweep`): one panel per outcome,
as heat-maps over the first two numeric swept keys and as lines over the first one."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from . import finite  # noqa: E402

MAX_LINES = 8


def _numeric_axes(dataset: xr.Dataset) -> list[str]:
    """Swept keys with numeric values and more than one of them."""
    return [
        str(key)
        for key in dataset.coords
        if np.issubdtype(dataset[key].dtype, np.number) and dataset.sizes[key] > 1
    ]


def _panels(dataset: xr.Dataset, keep: list[str]):
    """Scalar outcomes reduced to the ``keep`` axes (other swept keys at their first value)
    and a note naming those fixed values."""
    fixed = {key: dataset[key].values[0] for key in dataset.coords if key not in keep}
    note = ", ".join(f"{key} = {value}" for key, value in fixed.items())
    names = [name for name in dataset.data_vars if set(dataset[name].dims) <= set(dataset.coords)]
    return [(name, dataset[name].isel({k: 0 for k in fixed})) for name in names], note


def _grid(count: int):
    cols = min(4, count)
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, axes.flat


def _save(fig, title: str, path: Path) -> Path:
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_heatmaps(dataset: xr.Dataset, path: Path, x: str, y: str) -> Path:
    """Every outcome as a heat-map over ``x`` (columns) and ``y`` (rows); NaN (undefined,
    e.g. no wall contact) and infinities are left blank."""
    panels, note = _panels(dataset, [x, y])
    fig, axes = _grid(len(panels))
    for ax, (name, values) in zip(axes, panels, strict=False):
        shown = finite(ax, values.transpose(y, x).values)
        mesh = ax.pcolormesh(dataset[x].values, dataset[y].values, shown, shading="nearest")
        fig.colorbar(mesh, ax=ax)
        ax.set_title(name, fontsize=8)
        ax.set_xlabel(x, fontsize=8)
        ax.set_ylabel(y, fontsize=8)
    title = f"{dataset.attrs.get('experiment', 'sweep')}: outcomes over ({x}, {y})"
    return _save(fig, title + (f"; {note}" if note else ""), path)


def plot_lines(dataset: xr.Dataset, path: Path, x: str, hue: str | None) -> Path:
    """Every outcome against ``x``, one line per value of ``hue`` (at most
    :data:`MAX_LINES`, evenly picked)."""
    panels, note = _panels(dataset, [x] + ([hue] if hue else []))
    fig, axes = _grid(len(panels))
    for ax, (name, values) in zip(axes, panels, strict=False):
        at = dataset[x].values
        if hue is None:
            ax.plot(at, finite(ax, values.values, at, x), marker=".")
        else:
            picks = np.unique(np.linspace(0, dataset.sizes[hue] - 1, MAX_LINES).round().astype(int))
            for index in picks:
                line = values.isel({hue: index})
                label = str(line[hue].values)
                shown = finite(ax, line.values, at, x, f"{hue} = {label}")
                ax.plot(at, shown, marker=".", label=label)
            ax.legend(title=hue, fontsize=6, title_fontsize=6)
        ax.set_title(name, fontsize=8)
        ax.set_xlabel(x, fontsize=8)
    title = f"{dataset.attrs.get('experiment', 'sweep')}: outcomes against {x}"
    return _save(fig, title + (f"; {note}" if note else ""), path)


def plot_series(dataset: xr.Dataset, path: Path, hue: str | None) -> Path:
    """Each kept time series against ``t``, one line per value of ``hue`` (other swept
    keys at their first value; vector series show their first component)."""
    names = [name for name in dataset.data_vars if str(name).startswith("series_")]
    fig, axes = _grid(len(names))
    for ax, name in zip(axes, names, strict=False):
        values = dataset[name]
        fixed = {k: 0 for k in values.dims if k not in ("t", hue)}
        values = values.isel(fixed)
        picks = (
            [0]
            if hue is None
            else np.unique(np.linspace(0, dataset.sizes[hue] - 1, MAX_LINES).round().astype(int))
        )
        for index in picks:
            line = values if hue is None else values.isel({hue: index})
            label = None if hue is None else f"{hue} = {line[hue].values:.3g}"
            ts = dataset["t"].values
            ax.plot(ts, finite(ax, line.values, ts, what=label), lw=0.8, label=label)
        if hue is not None:
            ax.legend(fontsize=6)
        ax.set_title(str(name)[len("series_") :], fontsize=8)
        ax.set_xlabel("t", fontsize=8)
    return _save(fig, f"{dataset.attrs.get('experiment', 'sweep')}: time series", path)


def plot_sweep(dataset: xr.Dataset, out: Path) -> list[Path]:
    """``heatmaps.png`` (with two or more numeric swept keys), ``lines.png`` (with one or
    more; lines over the next swept key) and, if time series were kept, ``series.png``."""
    out = Path(out)
    series = [name for name in dataset.data_vars if str(name).startswith("series_")]
    paths = []
    if series:
        swept = [k for k in _numeric_axes(dataset) if k != "t"]
        paths.append(plot_series(dataset, out / "series.png", next(iter(swept), None)))
        dataset = dataset.drop_vars([*series, "t"])
    numeric = _numeric_axes(dataset)
    if len(numeric) >= 2:
        paths.append(plot_heatmaps(dataset, out / "heatmaps.png", numeric[0], numeric[1]))
    if numeric:
        others = [str(k) for k in dataset.coords if k != numeric[0] and dataset.sizes[k] > 1]
        paths.append(plot_lines(dataset, out / "lines.png", numeric[0], next(iter(others), None)))
    return paths
