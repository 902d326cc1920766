"""report.html of real runs, rendered by headless Chromium: the stage view and the plots show."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from docs.make_screenshot import headless_command
from tests.conftest import skip_or_require
from tweakops.report.plots import BEST_COLOR, THRESHOLD_COLOR
from tweakops.report.style import STATUS_COLORS

WIDTH, HEIGHT = 1280, 2400
PIPELINE_ROWS = 900  # the header and the stage view fit above this line at 1280 px wide
FAILING_SCRIPT = 'import sklearn  # noqa\nraise SystemExit("the data folder is missing")\n'


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium; skipped without it, a failure when TWEAKOPS_REQUIRE_CHROMIUM=1."""
    binary = shutil.which("chromium")
    if binary is None:
        reason = "no chromium on PATH (apt-get install chromium)"
        skip_or_require("TWEAKOPS_REQUIRE_CHROMIUM", "chromium", reason)
    return binary


def headless(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless Chromium call with a throwaway profile; nothing but the file is loaded."""
    command = headless_command(binary, profile, *args)
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def screenshot(binary: str, report: Path, tmp_path: Path) -> np.ndarray:
    """The report as Chromium paints it at 1280 x 2400, as an RGB array."""
    png = tmp_path / "report-shot.png"
    size = f"--window-size={WIDTH},{HEIGHT}"
    url = report.as_uri()
    headless(binary, tmp_path / "profile", "--hide-scrollbars", size, f"--screenshot={png}", url)
    return np.asarray(Image.open(png).convert("RGB")).astype(int)


def pixels_of(image: np.ndarray, color: str, tolerance: int = 2) -> int:
    rgb = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(image - rgb).max(axis=2) <= tolerance).sum())


def report_of_latest_run(cli) -> Path:
    done = cli("--json", "report")
    assert done.returncode == 0, done.stderr
    path = Path(json.loads(done.stdout)["report"])
    assert path.name == "report.html" and path.is_file()
    return path


def test_a_real_runs_report_shows_its_stages_and_plots_in_chromium(
    make_repo, cli, chromium: str, tmp_path: Path
) -> None:
    result = cli("run", str(make_repo("iris-sklearn")))
    assert result.returncode == 0, result.stderr[-2000:]
    report = report_of_latest_run(cli)
    status = json.loads(cli("--json", "status").stdout)
    notified = next(s for s in status["stages"] if s["name"] == "notify")
    assert notified["result"]["report_path"] == str(report)  # written before the email

    dom = headless(chromium, tmp_path / "profile-dom", "--dump-dom", report.as_uri()).stdout
    stages = re.findall(r'class="stage stage-(\w+)" data-stage="(\w+)"', dom)
    assert [name for _, name in stages] == ["pull", "inspect", "train", "tune", "notify", "watch"]
    assert {status for status, _ in stages} == {"succeeded"}
    for plot in ("accuracy-plot", "epoch-plot"):
        assert re.search(rf'<img id="{plot}" src="data:image/png;base64,', dom)

    image = screenshot(chromium, report, tmp_path)
    assert image.shape == (HEIGHT, WIDTH, 3)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50, "the page is blank"
    fill, ink = STATUS_COLORS["succeeded"]
    assert pixels_of(image[:PIPELINE_ROWS], fill) > 6 * 5000  # six green boxes up top
    assert pixels_of(image[:PIPELINE_ROWS], ink) > 6 * 500
    below = image[PIPELINE_ROWS // 2 :]
    assert pixels_of(below, BEST_COLOR) > 200, "no best-so-far line"
    assert pixels_of(below, THRESHOLD_COLOR) > 200, "no threshold line"


def test_a_failed_runs_report_shows_the_failed_and_skipped_stages_in_chromium(
    make_repo, cli, chromium: str, tmp_path: Path
) -> None:
    result = cli("run", str(make_repo(files={"train.py": FAILING_SCRIPT})))
    assert result.returncode == 1, result.stderr[-2000:]
    assert "report: " in result.stderr and "error: trial 0" in result.stderr
    report = Path(json.loads(cli("--json", "status").stdout)["folder"]) / "report.html"
    assert report.is_file()  # written by the pipeline although a stage failed
    assert "the data folder is missing" in report.read_text(encoding="utf-8")

    image = screenshot(chromium, report, tmp_path)
    top = image[:PIPELINE_ROWS]
    for status, boxes in (("succeeded", 4), ("failed", 1), ("skipped", 1)):
        fill, ink = STATUS_COLORS[status]
        assert pixels_of(top, fill) > boxes * 5000, f"no {status} box"
        assert pixels_of(top, ink) > boxes * 500, f"no {status} border"
    assert pixels_of(image[PIPELINE_ROWS // 2 :], THRESHOLD_COLOR) > 200


def test_report_command_prints_the_path_and_opens_it_or_says_where_it_is(
    make_repo, cli, home: Path
) -> None:
    pulled = cli("pull", str(make_repo("iris-sklearn")))
    assert pulled.returncode == 0, pulled.stderr
    run_id = pulled.stdout.strip().splitlines()[-1]
    expected = home / "runs" / run_id / "report.html"
    no_display = {"DISPLAY": "", "WAYLAND_DISPLAY": "", "TERM": ""}  # no X nor console browser

    printed = cli("report", run_id, "--open", BROWSER="false", **no_display)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.strip() == str(expected) and expected.is_file()
    assert printed.stderr.strip() == f"no web browser could be opened: the report is at {expected}"

    opened = cli("--json", "report", "--run", run_id, "--open", BROWSER="true", **no_display)
    assert opened.returncode == 0, opened.stderr
    assert json.loads(opened.stdout) == {"report": str(expected)}
    assert "no web browser" not in opened.stderr

    missing = cli("report", "no-such-run")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: no run 'no-such-run'")


def test_report_copy_to_puts_the_same_file_in_a_folder_and_says_so_when_it_cannot(
    make_repo, cli, home: Path, tmp_path: Path
) -> None:
    pulled = cli("pull", str(make_repo("iris-sklearn")))
    assert pulled.returncode == 0, pulled.stderr
    workspace = tmp_path / "jenkins" / "workspace"  # created when missing

    copied = cli("--json", "report", "--copy-to", str(workspace))
    assert copied.returncode == 0, copied.stderr
    shown = json.loads(copied.stdout)
    assert shown["copy"] == str(workspace / "report.html")
    assert Path(shown["copy"]).read_bytes() == Path(shown["report"]).read_bytes()

    (tmp_path / "a-file").write_text("not a folder")
    blocked = tmp_path / "a-file" / "workspace"  # cannot be created
    refused = cli("report", "--copy-to", str(blocked))
    assert refused.returncode == 1
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot copy the report to {blocked}: ")
    assert line.endswith("check that the folder can be created and written")
