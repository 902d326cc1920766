"""Regenerate docs/report.png: a real run of an example, its report.html, a Chromium screenshot.

    python docs/make_screenshot.py                           # examples/digits-cnn, 3 trials
    python docs/make_screenshot.py --example iris-sklearn    # no TensorFlow needed, ~10 s

Needs Debian's `chromium` (or --chromium PATH) and Pillow (matplotlib brings it). Everything
but the PNG lives in a temporary folder that is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDTH, TALLEST = 1280, 4000
PAGE_BACKGROUND = (0xF6, 0xF8, 0xFA)  # --page in tweakops/report/style.py
MARGIN = 24  # px of page background kept under the last card


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", default="digits-cnn", help="a folder of examples/")
    parser.add_argument("--max-trials", default="3", help="trials of the run (trial 0 included)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tweakops-shot-") as scratch:
        report = real_run_report(args.example, args.max_trials, Path(scratch))
        shot = Path(scratch) / "full.png"
        screenshot(args.chromium, report, shot, Path(scratch) / "profile")
        crop_to_content(shot, args.out)
    print(args.out)


def real_run_report(example: str, max_trials: str, scratch: Path) -> Path:
    """`tweakops run` on a fresh git repo of the example; the path of the run's report."""
    repo = scratch / example
    shutil.copytree(ROOT / "examples" / example, repo, ignore=shutil.ignore_patterns("__pycache__"))
    identity = ["-c", "user.name=tweakops", "-c", "user.email=tweakops@example.org"]
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", example]):
        subprocess.run(["git", *identity, *command], cwd=repo, check=True)
    env = {**os.environ, "TWEAKOPS_HOME": str(scratch / "home"), "CI": "true"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    tweakops = [sys.executable, "-m", "tweakops"]
    run = [*tweakops, "run", str(repo), "--runtime", "local", "--max-trials", max_trials]
    done = subprocess.run(run, env=env, cwd=scratch)
    if done.returncode not in (0, 3):  # 3: ran, threshold not reached: still a good picture
        sys.exit(f"tweakops run exited {done.returncode}")
    out = subprocess.run([*tweakops, "--json", "report"], env=env, check=True, capture_output=True)
    return Path(json.loads(out.stdout)["report"])


def headless_command(chromium: str, profile: Path, *args: str) -> list[str]:
    """Headless Chromium with a throwaway profile, at scale 1 (also what the report tests run)."""
    return [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--force-device-scale-factor=1",
        f"--user-data-dir={profile}",
        *args,
    ]


def screenshot(chromium: str, report: Path, png: Path, profile: Path) -> None:
    """The page at 1280 px wide and up to TALLEST px tall, without scrollbars."""
    size = f"--window-size={WIDTH},{TALLEST}"
    shot = ["--hide-scrollbars", size, f"--screenshot={png}", report.as_uri()]
    command = headless_command(chromium, profile, *shot)
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def crop_to_content(shot: Path, out: Path) -> None:
    """Cut the empty page below the footer; keep the full 1280 px width."""
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    width, height = image.size
    last = height
    while last > 0 and all(image.getpixel((x, last - 1)) == PAGE_BACKGROUND for x in range(width)):
        last -= 1
    out.parent.mkdir(parents=True, exist_ok=True)
    image.crop((0, 0, width, min(height, last + MARGIN))).save(out, optimize=True)


if __name__ == "__main__":
    main()
