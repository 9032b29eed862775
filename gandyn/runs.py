"""The life of a run or sweep folder: where it may go, who writes it, its record, how it
replaces an old one.

A folder's record (``run.json`` or ``sweep.json``, written only by :func:`write_record`,
atomically) says what it holds: ``running`` from :func:`start`; then ``ok`` (or what stopped
the run: ``nonfinite``, ...) once everything else is written (:func:`write_run`), or
``interrupted``/``failed`` (:func:`mark`). :func:`unfinished_run` and
:func:`unfinished_sweep` read it back for ``gandyn resume``; :func:`complete` removes the
checkpoints of a folder that ended ok and swaps it in.

gandyn never deletes what it did not write. ``--overwrite`` replaces only a folder that
holds a gandyn record (``run.json`` or ``sweep.json``) and nothing gandyn would not have
written there; the working directory, its parents and the home folder are never output
folders. A replacement is computed in a hidden sibling (``.NAME.next-`` plus a random
suffix) and swapped in only once it ends ``ok``, so a new run that fails leaves the old
one as it was.

One process writes a folder at a time: :func:`claim` holds an advisory lock
(``fcntl.flock`` on ``.gandyn.lock``, released by the kernel when the process exits, so a
dead holder never leaves a stale lock) and a second writer gets :class:`FolderInUse`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import shutil
import socket
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import io
from .errors import ConfigError, FolderInUse

RUN, SWEEP = RECORDS = ("run.json", "sweep.json")
"""The files that mark a folder as gandyn's: a run's record and a sweep's."""

SWEEP_KEYS = ("experiment", "grid", "set", "chunk", "devices", "series", "plots")
"""What a sweep's record must hold to be resumed."""

LOCK = ".gandyn.lock"

WRITTEN = frozenset(
    {
        *RECORDS,
        "config.json",
        "summary.json",
        "trajectory.npz",
        "sweep.nc",
        "checkpoints",
        ".run.json.partial",
        ".sweep.json.partial",
        LOCK,
    }
)
"""Every name gandyn writes into a run or sweep folder, besides its ``*.png`` plots."""

_MAX_NAME = 255 - len(".next-") - 16
"""Longest folder name that leaves room for the staging sibling's prefix and suffix."""


def _is_record(path: Path) -> bool:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and "experiment" in record


def foreign_entries(folder: Path) -> list[str]:
    """Names in ``folder`` that gandyn does not write (sorted)."""
    return sorted(
        p.name for p in folder.iterdir() if p.name not in WRITTEN and not p.name.endswith(".png")
    )


def _protected(out: Path) -> str | None:
    """Why ``out`` can never be an output folder, or ``None``."""
    resolved = out.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        return "the working directory or one of its parents"
    if resolved == Path.home().resolve():
        return "the home folder"
    return None


def check_replaceable(out: Path) -> None:
    """Refuse (``ConfigError``) to delete ``out`` unless gandyn wrote all of it."""
    if not any(_is_record(out / name) for name in RECORDS):
        raise ConfigError(
            f"--out: {out} is not a gandyn run or sweep folder (no run.json or sweep.json "
            "of gandyn's), so --overwrite will not delete it; choose another folder"
        )
    foreign = foreign_entries(out)
    if foreign:
        shown = ", ".join(foreign[:5]) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        )
        raise ConfigError(
            f"--out: {out} holds files gandyn did not write ({shown}); --overwrite will not "
            "delete them: move them away or choose another folder"
        )


def _names_fit(out: Path) -> None:
    for part in out.parts:
        if len(os.fsencode(part)) > _MAX_NAME:
            raise ConfigError(
                f"--out: the name {part[:40]!r}... is {len(os.fsencode(part))} bytes long; "
                f"at most {_MAX_NAME} are allowed"
            )


def _writable(out: Path) -> None:
    """Refuse an ``out`` that cannot be created: a file on the way or a parent without
    write permission (tried, not guessed)."""
    base = out.parent
    while not base.exists():
        if base.is_symlink() or base == base.parent:
            break
        base = base.parent
    if base.exists() and not base.is_dir():
        raise ConfigError(f"--out: {base} is a file, so no folder can be made under it")
    try:
        probe = tempfile.mkdtemp(prefix=f".{out.name}.probe-", dir=base)
    except OSError as err:
        raise ConfigError(f"--out: cannot write in {base} ({err.strerror})") from None
    os.rmdir(probe)


def check_destination(out: Path, overwrite: bool) -> None:
    """Everything about ``out`` that can be checked before any work is done."""
    _names_fit(out)
    why = _protected(out)
    if why is not None:
        raise ConfigError(f"--out: {out} is {why}; gandyn writes only into a folder of its own")
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise ConfigError(f"--out: {out} exists and is not a folder")
        if not overwrite:
            raise ConfigError(f"--out: {out} already exists; pass --overwrite to replace it")
        check_replaceable(out)
        with claim(out, stamp=False):  # refuse to replace a folder a live process writes
            pass
    _writable(out)


def new_folder(out: Path, overwrite: bool) -> Path:
    """Create the folder a run writes into: ``out`` itself if it does not exist, else a
    hidden sibling that :func:`promote` later swaps in (``out`` is left as it is)."""
    check_destination(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.next-", dir=out.parent))
    try:
        out.mkdir()
    except FileExistsError:
        raise ConfigError(f"--out: {out} was just created by another process") from None
    return out


def promote(work: Path, out: Path) -> None:
    """Swap the finished folder ``work`` in as ``out`` (nothing to do if they are the same).
    ``out`` is checked again first: if it is no longer gandyn's alone, or another process
    is writing it, ``work`` stays."""
    if work.resolve() == out.resolve():
        return
    with contextlib.suppress(FileNotFoundError):  # finished: no writer may claim it now
        os.unlink(work / LOCK)
    if out.exists():
        check_replaceable(out)
        retired = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        with claim(out, stamp=False):
            os.rename(out, retired)
        os.rename(work, out)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.rename(work, out)


def remove_started(folder: Path) -> None:
    """Remove a folder this process created and wrote alone (a refused run's)."""
    if not foreign_entries(folder):
        shutil.rmtree(folder, ignore_errors=True)


def _holder(lock: Path) -> str:
    try:
        info = json.loads(lock.read_text())
        return f"pid {info['pid']} on {info['host']} (since {info['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _lock(path: Path) -> int:
    """An open descriptor of ``path`` holding its exclusive lock (:class:`FolderInUse`
    if a live process holds it). Retries if the file was replaced while locking, so two
    processes never hold locks on two different files of one name."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise FolderInUse(
                f"{path.parent} is being written by {_holder(path)}; wait for it to finish "
                "or choose another folder"
            ) from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


@contextlib.contextmanager
def claim(folder: Path, *, stamp: bool = True) -> Iterator[None]:
    """Hold ``folder``'s lock while the block runs; :class:`FolderInUse` names the holder
    if a live process has it. ``stamp`` records this process as the holder. The lock file
    is removed on release (the kernel releases the lock itself if the process dies)."""
    path = folder / LOCK
    try:
        fd = _lock(path)
    except FolderInUse:
        raise
    except OSError as err:
        raise ConfigError(f"{folder}: cannot lock it ({err.strerror})") from None
    try:
        if stamp:
            holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.ctime()}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder).encode(), 0)
        yield
    finally:
        _release(path, fd)


def _release(path: Path, fd: int) -> None:
    with contextlib.suppress(OSError):
        if os.stat(path).st_ino == os.fstat(fd).st_ino:
            os.unlink(path)
    os.close(fd)


# ----------------------------------------------------------------------------- records


def write_record(folder: Path, name: str, record: Mapping[str, Any]) -> None:
    """``record`` and the environment as ``folder/name`` (:data:`RUN` or :data:`SWEEP`),
    replaced atomically: a reader sees the old record or the new one."""
    partial = folder / f".{name}.partial"
    io.write_json(partial, dict(record) | {"environment": io.environment()})
    os.replace(partial, folder / name)


def start(
    out: Path,
    name: str,
    record: Mapping[str, Any],
    *,
    overwrite: bool,
    config: Mapping[str, Any] | None = None,
) -> Path:
    """Create the folder a run (``name`` :data:`RUN`) or sweep (:data:`SWEEP`) writes into
    (:func:`new_folder`) with ``config.json`` (if given) and its record, status
    ``running`` (and ``replaces``: the name of ``out`` where it goes beside it); return it."""
    work = new_folder(out, overwrite)
    if work != out:
        record = dict(record) | {"replaces": out.name}
    if config is not None:
        io.write_json(work / "config.json", config)
    write_record(work, name, dict(record) | {"status": "running"})
    return work


@contextlib.contextmanager
def staged_folder(out: Path, *, overwrite: bool, in_place: bool = False) -> Iterator[Path]:
    """A temporary sibling folder to write into; on success it replaces ``out`` whole
    (:func:`promote`), or with ``in_place`` its files replace those of ``out`` one by one,
    keeping the others. On an error it is removed and ``out`` is left as it was."""
    out = Path(out)
    if not in_place:
        check_destination(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield staging
        if in_place:  # the record (run.json, sweep.json) last: it says the rest is there
            for path in sorted(staging.iterdir(), key=lambda p: p.name in RECORDS):
                os.replace(path, out / path.name)
            staging.rmdir()
        else:
            promote(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_run(
    out: Path,
    record: Mapping[str, Any],
    *,
    config: Mapping[str, Any],
    summary: Mapping[str, Any],
    trajectory: Mapping[str, Any],
    plot: Callable[[Path], object] | None = None,
    overwrite: bool = False,
    in_place: bool = False,
) -> list[Path]:
    """Write ``config.json``, ``summary.json``, ``trajectory.npz``, the plots
    (``plot(folder)``) and last ``run.json`` (``record``: the status, its message and how
    the run was made, for ``gandyn resume``) into ``out`` through :func:`staged_folder`.
    ``in_place`` (a checkpointed run's own folder) replaces the files one by one and keeps
    the checkpoints. A plot that fails costs only that plot: the data are written,
    ``run.json`` records ``plot_error`` and a warning says why."""
    record = dict(record)
    with staged_folder(out, overwrite=overwrite, in_place=in_place) as staging:
        io.write_json(staging / "config.json", config)
        io.write_json(staging / "summary.json", summary)
        np.savez_compressed(staging / "trajectory.npz", allow_pickle=False, **trajectory)
        if plot is not None:
            try:
                plot(staging)
            except Exception as err:  # the data matter more than a figure
                record["plot_error"] = f"{type(err).__name__}: {err}"
                warnings.warn(f"plots of {out} failed ({record['plot_error']})", stacklevel=2)
        write_record(staging, RUN, record)
    return sorted(Path(out).iterdir())


def mark(folder: Path, status: str, message: str) -> None:
    """Set ``status`` (``interrupted``, ``failed``) and ``message`` in ``folder``'s record
    (its sweep's if it has one, else its run's); an interrupted run's summary says so too."""
    name = SWEEP if (folder / SWEEP).exists() else RUN
    record = json.loads((folder / name).read_text())
    if name == RUN and status == "interrupted":
        io.write_json(folder / "summary.json", {"status": status})
    write_record(folder, name, record | {"status": status, "message": message})


def complete(work: Path, out: Path) -> None:
    """A folder that ended ok: remove its checkpoints and swap it in as ``out``."""
    shutil.rmtree(work / "checkpoints", ignore_errors=True)
    promote(work, out)


def target(folder: Path, record: Mapping[str, Any]) -> Path:
    """The folder a run or sweep in ``folder`` goes to once ok (it may replace another)."""
    return folder.parent / record["replaces"] if "replaces" in record else folder


def _unfinished(folder: Path, record: Mapping[str, Any]) -> None:
    """Refuse to resume a folder whose record says it is complete."""
    if record.get("status") == "ok":
        pending = sorted(folder.parent.glob(f".{folder.name}.next-*"))
        hint = f"; an unfinished replacement is in {pending[-1]}" if pending else ""
        raise ConfigError(f"{folder} is complete (status ok); nothing to resume{hint}")


def unfinished_run(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The record and the config overrides of the unfinished run in ``folder``, checked for
    ``gandyn resume`` (:class:`ConfigError` says what is wrong)."""
    try:
        record = json.loads((folder / RUN).read_text())
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(
            f"{folder} is not a readable gandyn run or sweep folder ({err})"
        ) from None
    if not (isinstance(record, dict) and isinstance(config, dict)):
        raise ConfigError(f"{folder}: run.json and config.json must hold JSON objects")
    _unfinished(folder, record)
    every = record.get("checkpoint_every")
    if every == 0.0:
        raise ConfigError(f"{folder} was run with --checkpoint-every off; nothing to resume")
    if not (every is None or isinstance(every, int | float) and math.isfinite(every) and every > 0):
        raise ConfigError(
            f"{folder}/run.json: checkpoint_every must be a positive number, got {every!r}"
        )
    if not isinstance(record.get("experiment"), str):
        raise ConfigError(f"{folder}/run.json: no experiment name")
    return record, config


def unfinished_sweep(folder: Path) -> dict[str, Any]:
    """The record of the unfinished sweep in ``folder``, checked for ``gandyn resume``."""
    try:
        record = json.loads((folder / SWEEP).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{folder} is not a readable gandyn sweep folder ({err})") from None
    if not isinstance(record, dict):
        raise ConfigError(f"{folder}/sweep.json must hold a JSON object")
    _unfinished(folder, record)
    missing = [key for key in SWEEP_KEYS if key not in record]
    if missing:
        raise ConfigError(f"{folder}/sweep.json: missing {missing[0]!r}")
    return record
