"""The files of a Keras backup: the latest state, the previous one, and which of them is whole.

A state is Keras's own pair, `latest.weights.h5` (model.save_weights) and
`training_metadata.json` ({"epoch": N, "batch": 0}), which keras.callbacks.BackupAndRestore
reads back. The previous state is the same pair with Keras's `.bkp` suffix. The metadata also
holds the size and CRC-32 of its weights file, so that a pair whose two files are from
different epochs (a kill between two renames) or a weights file torn in place is seen as not
whole, and the other state is used.

Nothing here is ever rewritten in place: a new state is saved to `.next.*` files, the latest
pair is hard-linked to the previous names (renames, no copy), and the new files are renamed
over the latest. At every point a reader finds training_metadata.json, and at least one whole
pair: the latest one, or the previous one while the latest names are being switched.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import zlib
from pathlib import Path
from typing import Any

WEIGHTS = "latest.weights.h5"
META = "training_metadata.json"
PREVIOUS = ".bkp"  # keras.callbacks.BackupAndRestore(double_checkpoint=True) uses this too
NEXT_WEIGHTS = ".next.weights.h5"  # model.save_weights wants a name ending in .weights.h5
_NEXT_META = ".next.training_metadata.json"
_CHUNK = 1 << 20


def next_weights(folder: Path) -> Path:
    """Where the state being saved writes its weights before commit() renames them."""
    return folder / NEXT_WEIGHTS


def commit(folder: Path, epoch: int) -> list[int]:
    """Make the weights in next_weights(folder) the latest state, as of `epoch` (done epochs),
    and the latest one the previous. Returns the new files' descriptors, still to fsync."""
    weights_fd = os.open(folder / NEXT_WEIGHTS, os.O_RDONLY)
    try:
        size, crc = _fingerprint(weights_fd)
        meta = {"epoch": int(epoch), "batch": 0, "weights_bytes": size, "weights_crc32": crc}
        meta_fd = os.open(folder / _NEXT_META, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    except BaseException:
        os.close(weights_fd)
        raise
    try:
        os.write(meta_fd, json.dumps(meta).encode("utf-8"))
        for name in (WEIGHTS, META):  # weights first: a pair that is half new is not whole
            _keep_previous(folder / name)
        os.replace(folder / NEXT_WEIGHTS, folder / WEIGHTS)
        os.replace(folder / _NEXT_META, folder / META)
    except BaseException:
        for fd in (weights_fd, meta_fd):
            os.close(fd)
        raise
    return [weights_fd, meta_fd]


def whole(folder: Path, suffix: str = "") -> int | None:
    """The epoch of the state with `suffix` ("" latest, PREVIOUS), or None if it is not whole:
    metadata that does not parse or has no int epoch, weights missing, empty, or not the
    size and CRC-32 that the metadata names (when it names them; Keras's own does not)."""
    try:
        meta: Any = json.loads((folder / f"{META}{suffix}").read_text(encoding="utf-8"))
        epoch = meta.get("epoch")
        fd = os.open(folder / f"{WEIGHTS}{suffix}", os.O_RDONLY)
    except (OSError, ValueError, AttributeError):
        return None
    try:
        if not isinstance(epoch, int) or os.fstat(fd).st_size == 0:
            return None
        if "weights_bytes" in meta and _fingerprint(fd) != (
            meta["weights_bytes"],
            meta.get("weights_crc32"),
        ):
            return None
        return epoch
    except OSError:
        return None
    finally:
        os.close(fd)


def has_state(folder: Path) -> bool:
    """True when any file of a latest or previous state is there."""
    names = (WEIGHTS, META, f"{WEIGHTS}{PREVIOUS}", f"{META}{PREVIOUS}")
    return any((folder / name).exists() for name in names)


def make_latest_whole(folder: Path) -> bool:
    """Leave a whole state under the latest names: the latest if whole, else a copy of the
    previous one. False when neither is whole. Stray `.next.*` files are removed."""
    for stray in (NEXT_WEIGHTS, _NEXT_META):
        with contextlib.suppress(FileNotFoundError):
            (folder / stray).unlink()
    return whole(folder) is not None or use_previous(folder)


def use_previous(folder: Path) -> bool:
    """Copy the previous state over the latest one if it is whole; False if it is not."""
    if whole(folder, PREVIOUS) is None:
        return False
    for name in (WEIGHTS, META):  # a copy: the previous state stays as it is
        _replace_with_copy(folder / f"{name}{PREVIOUS}", folder / name)
    return True


def _keep_previous(latest: Path) -> None:
    """Hard-link `latest` as its PREVIOUS name (a copy where links are refused)."""
    if not latest.exists():
        return
    previous = latest.with_name(latest.name + PREVIOUS)
    tmp = latest.with_name(f".{previous.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.link(latest, tmp)
    except OSError:
        shutil.copyfile(latest, tmp)
    os.replace(tmp, previous)


def _replace_with_copy(source: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def _fingerprint(fd: int) -> tuple[int, int]:
    """(size, CRC-32) of the open file, read from its start."""
    size, crc = 0, 0
    while chunk := os.pread(fd, _CHUNK, size):
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
    return size, crc
