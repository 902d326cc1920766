"""Atomic, checksummed joblib checkpoints for iterative scikit-learn training."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from training._paths import checkpoint_dir
from training.files import atomic_write, fsync_dir

_CKPT = re.compile(r"ckpt-(\d{6,})\.(json|joblib)")
KEEP = 2


class SklearnCheckpoint:
    """ckpt-<step>.joblib + ckpt-<step>.json (sha256) pairs; the newest valid one wins on load."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else checkpoint_dir()
        self.directory.mkdir(parents=True, exist_ok=True)

    def save(self, obj: Any, step: int) -> Path:
        """Checkpoint `obj` as `step`; keeps this one and the previous, deletes the rest."""
        import joblib

        name = f"ckpt-{int(step):06d}"
        final = self.directory / f"{name}.joblib"
        fd, tmp_name = tempfile.mkstemp(dir=self.directory, prefix=f".{name}.", suffix=".tmp")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                joblib.dump(obj, handle)
                handle.flush()
                os.fsync(handle.fileno())
            digest = _sha256(tmp)
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        fsync_dir(self.directory)
        sidecar = {"step": int(step), "sha256": digest, "file": final.name}
        atomic_write(self.directory / f"{name}.json", json.dumps(sidecar) + "\n")
        self._prune(int(step))
        return final

    def load(self) -> tuple[Any, int] | None:
        """(object, step) of the newest checkpoint that validates and unpickles, else None."""
        import joblib

        for step, path in self._valid():
            try:
                return joblib.load(path), step
            except Exception:  # a checkpoint we cannot unpickle is as good as torn
                continue
        return None

    def latest_step(self) -> int | None:
        """Step of the newest checkpoint whose checksum validates (it is not unpickled)."""
        for step, _ in self._valid():
            return step
        return None

    def _valid(self) -> list[tuple[int, Path]]:
        """(step, joblib path) of checkpoints whose sidecar and checksum hold, newest first."""
        found = []
        for step, sidecar in self._sidecars():
            path = _checked_payload(sidecar, step)
            if path is not None:
                found.append((step, path))
        return found

    def _sidecars(self) -> list[tuple[int, Path]]:
        """(step, sidecar path) by file name, newest first."""
        pairs = []
        for path in self.directory.iterdir():
            match = _CKPT.fullmatch(path.name)
            if match and match.group(2) == "json":
                pairs.append((int(match.group(1)), path))
        return sorted(pairs, reverse=True)

    def _prune(self, saved: int) -> None:
        """Keep `saved` and the newest valid older step; drop the rest, later steps, stray temps."""
        steps = set()
        for path in self.directory.iterdir():
            match = _CKPT.fullmatch(path.name)
            if match:
                steps.add(int(match.group(1)))
        older = [step for step, _ in self._valid() if step < saved]
        keep = {saved, *older[: KEEP - 1]}
        for step in steps - keep:
            for suffix in (".json", ".joblib"):
                with contextlib.suppress(OSError):
                    (self.directory / f"ckpt-{step:06d}{suffix}").unlink()
        for stray in self.directory.glob(".ckpt-*.tmp"):
            with contextlib.suppress(OSError):
                stray.unlink()


def _checked_payload(sidecar: Path, step: int) -> Path | None:
    """The joblib file a sidecar describes, if the sidecar parses and the sha256 matches."""
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        if meta["step"] != step or not isinstance(meta["file"], str):
            return None
        path = sidecar.parent / Path(meta["file"]).name
        return path if _sha256(path) == meta["sha256"] else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
