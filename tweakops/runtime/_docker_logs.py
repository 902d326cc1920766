"""An attempt's output into its log file: followed from the engine, head kept as it comes,
tail kept to the end, the cut between them marked."""

from __future__ import annotations

import collections
import datetime
import logging
from typing import Any, BinaryIO

from docker.models.containers import Container

from tweakops.runtime._docker_container import TRANSPORT_ERRORS, first_line

log = logging.getLogger("tweakops.runtime.docker_backend")  # the runtime's log, as before

LOG_HEAD_BYTES = 16 * 1024 * 1024  # an attempt's log keeps its first 16 MiB...
LOG_TAIL_BYTES = 16 * 1024 * 1024  # ...and its last 16 MiB, the cut marked in between


def copy_logs(container: Container, out: BinaryIO, since: int | None) -> None:
    """Follow the container's output (from `since`) until it stops, appending it to the log:
    the first LOG_HEAD_BYTES as they come, then only the last LOG_TAIL_BYTES are kept and
    written when the stream ends, after a line that says how much was cut.

    The engine's follow stream can end early when the container stops (it loses track of a
    log file it rotates): what came after the last entry it sent is read once more, by its
    timestamp, so the end of the output, the line an error is about, is never lost.
    """
    options: dict[str, Any] = {
        "stream": True, "follow": True, "stdout": True, "stderr": True, "timestamps": True,
    }  # fmt: skip
    if since is not None:
        options["since"] = since
    copy = _LogCopy(out)
    try:
        with out:
            try:
                for entry in container.logs(**options):
                    copy.add(entry)
                if copy.last_ns is not None:  # catch up on what the follow stream missed
                    options.update(follow=False, since=copy.last_ns / 1e9 - 0.001)
                    for entry in container.logs(**options):
                        copy.add(entry, after=copy.last_ns)
            finally:
                copy.close()
    except (*TRANSPORT_ERRORS, OSError) as exc:
        log.warning("log stream of %s ended early: %s", container.short_id, first_line(exc))


class _LogCopy:
    """Timestamped log entries into the log file: the head as it comes, the tail at the end."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.written = 0
        self.last_ns: int | None = None
        self.tail = _Tail(LOG_TAIL_BYTES)

    def add(self, entry: bytes, after: int | None = None) -> None:
        stamp, _, payload = entry.partition(b" ")
        moment = _nanoseconds(stamp)
        if moment is None:  # not an entry of ours: keep it whole
            payload = entry
        elif after is not None and moment <= after:
            return
        else:
            self.last_ns = moment
        if self.written < LOG_HEAD_BYTES:
            head = payload[: LOG_HEAD_BYTES - self.written]
            self.out.write(head)
            self.out.flush()
            self.written += len(head)
            payload = payload[len(head) :]
        if payload:
            self.tail.add(payload)

    def close(self) -> None:
        self.tail.write_to(self.out)


def _nanoseconds(stamp: bytes) -> int | None:
    """2026-12-06T23:01:02.123456789Z as nanoseconds since the epoch; None if it is not one."""
    try:
        text = stamp.decode("ascii").rstrip("Z")
        whole, _, fraction = text.partition(".")
        moment = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.UTC)
    except (UnicodeDecodeError, ValueError):
        return None
    return int(moment.timestamp()) * 10**9 + int((fraction + "000000000")[:9] or 0)


class _Tail:
    """The newest `limit` bytes of a stream, and how many older ones were dropped."""

    def __init__(self, limit: int) -> None:
        self.limit, self.size, self.dropped = limit, 0, 0
        self.chunks: collections.deque[bytes] = collections.deque()

    def add(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.size += len(chunk)
        while self.size - len(self.chunks[0]) >= self.limit:
            first = self.chunks.popleft()
            self.size -= len(first)
            self.dropped += len(first)

    def write_to(self, out: BinaryIO) -> None:
        if self.dropped:
            out.write(
                f"\n[tweakops: {self.dropped} bytes of output cut here: the log keeps the first "
                f"{LOG_HEAD_BYTES // 2**20} MiB and the last {LOG_TAIL_BYTES // 2**20} MiB of "
                "each attempt]\n".encode()
            )
        for chunk in self.chunks:
            out.write(chunk)
        out.flush()
