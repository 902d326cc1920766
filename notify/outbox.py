"""The outbox: messages kept as .eml files until a server accepts them."""

from __future__ import annotations

import email
import os
import re
import time
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

from tweakops.files import atomic_write, fsync_dir

SENT_DIR = "sent"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_message_id(message_id: str) -> str:
    """A Message-ID reduced to characters that are safe in a file name."""
    cleaned = _UNSAFE.sub("_", message_id.strip().strip("<>")).strip("._")
    return cleaned[:120] or "message"


def outbox_name(message_id: str, now: float | None = None) -> str:
    """`<UTC timestamp>-<safe message id>.eml`: names sort in the order they were written."""
    stamp = time.time() if now is None else now
    utc = time.strftime("%Y%m%dT%H%M%S", time.gmtime(stamp))
    micros = int((stamp % 1) * 1_000_000)
    return f"{utc}.{micros:06d}Z-{safe_message_id(message_id)}.eml"


def write_message(message: EmailMessage, outbox: Path) -> Path:
    """Keep `message` in `outbox` as an .eml file; return its path."""
    path = outbox / outbox_name(str(message.get("Message-ID", "")))
    atomic_write(path, message.as_bytes(policy=default_policy))
    return path


def read_message(path: Path) -> EmailMessage:
    """Parse an .eml file back into a message."""
    parsed = email.message_from_bytes(path.read_bytes(), policy=default_policy)
    assert isinstance(parsed, EmailMessage)
    return parsed


def pending_messages(outbox: Path) -> list[Path]:
    """The .eml files still waiting in `outbox` (not in sent/), oldest first."""
    if not outbox.is_dir():
        return []
    return sorted(p for p in outbox.glob("*.eml") if p.is_file())


def mark_sent(path: Path) -> Path:
    """Move a sent .eml into the outbox's sent/ folder; return its new path."""
    sent = path.parent / SENT_DIR
    sent.mkdir(parents=True, exist_ok=True)
    target = sent / path.name
    os.replace(path, target)
    fsync_dir(sent)
    fsync_dir(path.parent)
    return target
