"""An example project run as a real trial, the way the local runtime runs it: a fresh copy,
an output folder, params in TWEAKOPS_PARAMS, `python train.py`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


class ExampleTrial:
    """A fresh copy of examples/<name> plus an output folder; params None runs it as a plain
    script (no TWEAKOPS_OUTPUT, no params: it writes beside itself)."""

    def __init__(
        self,
        example: str,
        root: Path,
        params: dict[str, Any] | None,
        timeout: float = 60,
        env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = root / "work"
        self.output = root / "output"
        self.timeout = timeout
        shutil.copytree(ROOT / "examples" / example, self.workdir)
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.env.pop("TWEAKOPS_OUTPUT", None)
        self.env.pop("TWEAKOPS_PARAMS", None)
        if params is not None:
            params_file = root / "params.json"
            params_file.write_text(json.dumps(params))
            self.env |= {"TWEAKOPS_OUTPUT": str(self.output), "TWEAKOPS_PARAMS": str(params_file)}

    def start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "train.py"],
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def run(self) -> str:
        proc = self.start()
        out, _ = proc.communicate(timeout=self.timeout)
        assert proc.returncode == 0, out
        return out
