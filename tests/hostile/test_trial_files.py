"""A trial leaves a link to a secret, a FIFO or /dev/zero where the host reads its output.

Four places the host reads: the trial's log (on a failure, for its last lines), its metric
file, its epoch records (read while it runs) and its checkpoints (exported for Jenkins to
archive). On both runtimes, the run must end, tweakops' memory stay bounded, the verdict say
what was refused, and the secret appear nowhere tweakops keeps or shows.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.hostile.conftest import (
    RSS_LIMIT_MB,
    SECRET,
    everything_written,
    run_cli,
    runtime_env,
)

# train.py: plant KIND at PLACE (relative to the trial folder, the parent of its cwd), then
# write the metric unless the metric itself is the place, and exit 1 when the place is the
# log (a failed trial: the host reads the log's last lines for its error message).
SCRIPT = """\
import os
import sys

trial = os.path.dirname(os.getcwd())
place = os.path.join(trial, {place!r})
os.makedirs(os.path.dirname(place), exist_ok=True)
if os.path.lexists(place):
    os.remove(place)
kind = {kind!r}
if kind == "fifo":
    os.mkfifo(place)
else:
    os.symlink({target!r} if kind == "link" else "/dev/zero", place)
print("planted", kind, "at", {place!r}, flush=True)
if {place!r} != "src/accuracy.txt":
    open(os.path.join(os.environ["TWEAKOPS_OUTPUT"], "accuracy.txt"), "w").write("0.95")
sys.exit(1 if {place!r} == "log.txt" else 0)
"""
PLACES = {
    "log": "log.txt",
    "metric": "src/accuracy.txt",
    "epochs": "output/epochs.jsonl",
    "checkpoint": "output/checkpoints/model.bin",
}
RUNTIMES = ["local", pytest.param("docker", marks=pytest.mark.docker)]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("kind", ["link", "fifo", "zero"])
@pytest.mark.parametrize("place", list(PLACES))
def test_a_planted_file_is_refused_and_the_secret_stays_out(
    request: pytest.FixtureRequest,
    hostile_repo: Callable[..., Path],
    secret_file: Path,
    tmp_path: Path,
    place: str,
    kind: str,
    runtime: str,
) -> None:
    script = SCRIPT.format(place=PLACES[place], kind=kind, target=str(secret_file))
    repo = hostile_repo(script)
    home = tmp_path / "home"
    env = runtime_env(request, runtime)

    done = run_cli(home, "run", str(repo), **env)
    exported = tmp_path / "artifacts"
    export = run_cli(home, "artifacts", "--to", str(exported))

    assert done.peak_mb < RSS_LIMIT_MB, f"tweakops used {done.peak_mb:.0f} MB"
    assert export.code == 0 and export.peak_mb < RSS_LIMIT_MB, export.stderr
    if place in ("log", "metric"):  # the trial failed: one error line says what and why
        assert done.code == 1, done.stderr[-2000:]
        (error,) = done.error_lines
        refused = "refused" in error or "not usable" in error
        assert refused or place == "log", error
    else:
        assert done.code == 0, done.stderr[-2000:]
    if place == "checkpoint":  # the export for Jenkins lists it, never copies it
        assert "model.bin" in (exported / "REFUSED.txt").read_text()
        assert not (exported / "model" / "model.bin").exists()
    shown = done.stdout + done.stderr + export.stdout + everything_written(home, exported)
    assert SECRET not in shown
    if place == "log":
        assert "log.txt is " in shown and "refused" in shown  # the log's tail, refused
