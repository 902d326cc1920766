"""Ask a trial's environment what it has, by running a tiny trial in it.

The probe runs like any trial (same runtime, same sandbox: no network, non-root in a
container) and prints one marked JSON line: the distributions installed and where
site-packages is, or which of a list of modules can be found (importlib.util.find_spec:
nothing is imported, nothing of the repository runs).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tweakops.errors import RuntimeUnavailable
from tweakops.files import atomic_write
from tweakops.runtime import Runtime, TrialSpec
from tweakops.trialfiles import TEXT_CAP, TrialFileRefused, read_tail

MARK = "TWEAKOPS-PROBE "
PROBE_SECONDS = 120.0
DISTRIBUTIONS = f"""
import importlib.metadata as m, json, sysconfig
found = {{}}
for d in m.distributions():
    name = d.metadata["Name"]
    if name:
        found.setdefault(name, d.version)
purelib = sysconfig.get_paths()["purelib"]
print({MARK!r} + json.dumps({{"distributions": found, "purelib": purelib}}))
"""
MODULES = f"""
import importlib.util, json, sys
found = {{}}
for name in sys.argv[1:]:
    try:
        found[name] = importlib.util.find_spec(name) is not None
    except Exception:
        found[name] = False
print({MARK!r} + json.dumps({{"modules": found}}))
"""


def probe(
    runtime: Runtime, python: str, image: str | None, script: str, args: list[str], folder: Path
) -> dict[str, Any]:
    """Run `script` with `python` on `runtime` (in `image`) and return its JSON answer."""
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "src").mkdir(parents=True)
    spec = TrialSpec(
        name=f"tweakops-probe-{folder.parent.name}",
        command=(python, "-c", script, *args),
        workdir=folder / "src",
        output_dir=folder / "output",
        log_path=folder / "log.txt",
        image=image,
        labels={"tweakops.probe": folder.parent.name},
        memory_limit="1g",
    )
    handle = runtime.start(spec)
    try:
        status = runtime.wait(handle, timeout=PROBE_SECONDS)
    finally:
        runtime.remove(handle)
    try:
        text = read_tail(folder, spec.log_path, TEXT_CAP).decode("utf-8", errors="replace")
    except (OSError, TrialFileRefused) as exc:
        text = str(exc)
    for line in text.splitlines():
        if line.startswith(MARK):
            answer: dict[str, Any] = json.loads(line[len(MARK) :])
            return answer
    last = text.strip().splitlines()[-1] if text.strip() else "(no output)"
    where = f"image {image}" if image else python
    raise RuntimeUnavailable(
        f"cannot ask {where} what it has installed ({status.describe()}: {last}); "
        f"it must run `{python}` (see {spec.log_path})"
    )


def distributions(
    runtime: Runtime, python: str, image: str | None, folder: Path, cache: Path | None
) -> tuple[dict[str, str], str]:
    """({distribution: version}, site-packages path) of an environment; cached by `cache`."""
    if cache is not None and cache.is_file():
        data = json.loads(cache.read_text())
    else:
        data = probe(runtime, python, image, DISTRIBUTIONS, [], folder)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(cache, json.dumps(data, sort_keys=True) + "\n")
    return dict(data["distributions"]), str(data["purelib"])


def findable(
    runtime: Runtime, python: str, image: str | None, modules: list[str], folder: Path
) -> dict[str, bool]:
    """Which of `modules` the environment can import."""
    if not modules:
        return {}
    found = probe(runtime, python, image, MODULES, modules, folder)["modules"]
    return {name: bool(found.get(name)) for name in modules}
