"""Crash-safe file writes shared by every package: temp file in the same folder, fsync, rename.

The implementation is the harness's (training/files.py), which cannot import tweakops."""

from training.files import atomic_write, fsync_dir

__all__ = ["atomic_write", "fsync_dir"]
