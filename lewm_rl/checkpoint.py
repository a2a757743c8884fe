"""Checkpoints: written atomically, read as data only (``torch.load(weights_only=True)``).

A run directory keeps two: ``checkpoint.pt``, the newest, which ``--resume`` reads, and
``checkpoint.prev.pt``, the one it replaced (:func:`save_keeping_previous`). The loop writes one
only when the models in it are healthy (:func:`find_nonfinite` and a forward check), so neither
ever holds a diverged model; the previous one is kept because a divergence can already be under
way, still invisible, when the newest passes its check.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

PREVIOUS_SUFFIX = ".prev.pt"
"""``checkpoint.pt`` is kept as ``checkpoint.prev.pt`` when a newer one replaces it."""


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read; the message is one line naming the file."""


def save_atomic(payload: dict[str, Any], path: str | Path) -> Path:
    """Writes ``payload`` to ``path`` through a temporary file and a rename.

    A process killed mid-write leaves the previous checkpoint intact, never a torn file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def previous_path(path: str | Path) -> Path:
    """Where :func:`save_keeping_previous` keeps the checkpoint it replaces."""
    path = Path(path)
    return path.with_name(path.name.removesuffix(".pt") + PREVIOUS_SUFFIX)


def save_keeping_previous(payload: dict[str, Any], path: str | Path) -> Path:
    """:func:`save_atomic`, keeping the checkpoint it replaces at :func:`previous_path`.

    At every moment ``path`` is a complete checkpoint: the old one is linked (or copied) to the
    previous path before the new one is renamed over it.
    """
    path = Path(path)
    if path.is_file():
        prev = previous_path(path)
        fd, tmp = tempfile.mkstemp(prefix=prev.name + ".", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            os.unlink(tmp)
            try:
                os.link(path, tmp)
            except OSError:  # a file system without hard links
                shutil.copyfile(path, tmp)
            os.replace(tmp, prev)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return save_atomic(payload, path)


def remove_stale_temporaries(run_dir: str | Path) -> list[Path]:
    """Removes the temporary files of checkpoint writes that were interrupted (``*.pt.*.tmp``).

    Only one process writes a run directory, so at the start of a run every such file is stale.
    """
    removed = []
    for tmp in Path(run_dir).glob("*.pt.*.tmp"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def find_nonfinite(tree: Any, prefix: str = "") -> str | None:
    """The dotted path of the first floating-point tensor in ``tree`` (nested dicts, lists and
    tuples of tensors, e.g. state dicts) holding a NaN or an infinity; ``None`` if there is none."""
    if isinstance(tree, torch.Tensor):
        if tree.is_floating_point() and tree.numel() and not bool(torch.isfinite(tree).all()):
            return prefix or "tensor"
        return None
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, (list, tuple)):
        items = enumerate(tree)
    else:
        return None
    for k, v in items:
        found = find_nonfinite(v, f"{prefix}.{k}" if prefix else str(k))
        if found is not None:
            return found
    return None


def to_tensors(tree: Any) -> Any:
    """``tree`` with every numpy array as a tensor (``weights_only`` loads tensors, not arrays)."""
    if isinstance(tree, np.ndarray):
        return torch.from_numpy(np.array(tree, copy=True))
    if isinstance(tree, dict):
        return {k: to_tensors(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(to_tensors(v) for v in tree)
    return tree


def to_arrays(tree: Any) -> Any:
    """The inverse of :func:`to_tensors`: every tensor in ``tree`` as a numpy array."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().cpu().numpy()
    if isinstance(tree, dict):
        return {k: to_arrays(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(to_arrays(v) for v in tree)
    return tree


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Reads a checkpoint as data (no code can run), or raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure to unpickle means an unusable file
        reason = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable ({reason})") from None
