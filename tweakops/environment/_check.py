"""The import check: every module the entrypoint needs, looked up where the trials will run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from packaging.utils import canonicalize_name

from tweakops.analysis.imports import ImportSite, Traced
from tweakops.analysis.requirements import Declarations
from tweakops.environment._model import Environment
from tweakops.environment._probe import findable
from tweakops.errors import InspectError
from tweakops.runtime import Runtime

# Modules whose distribution has another name (what to write in requirements.txt).
DISTRIBUTIONS = {
    "cv2": "opencv-python-headless",
    "PIL": "pillow",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "yaml": "PyYAML",
    "bs4": "beautifulsoup4",
    "dateutil": "python-dateutil",
    "dotenv": "python-dotenv",
    "tf_keras": "tf-keras",
    "jwt": "PyJWT",
    "git": "GitPython",
    "attr": "attrs",
}


def check_imports(
    runtime: Runtime, env: Environment, traced: Traced, declared: Declarations, folder: Path
) -> None:
    """InspectError naming each import that would fail in `env`, and where to declare it."""
    found = findable(runtime, env.python, env.image, list(traced.modules()), folder)
    missing = [module for module, ok in found.items() if not ok]
    if not missing:
        return
    target = next((f for f in declared.files() if f.startswith("requirements")), "requirements.txt")
    problems = [_problem(module, traced.imports, declared, target) for module in missing]
    fix = (
        f"declare them in {target} (installed offline into the trial's environment)"
        if env.mode == "install"
        else "install them on this machine, or drop `dependencies: host` and declare them"
    )
    raise InspectError(
        f"{traced.files[0]} needs what {env.describe()} does not have: "
        f"{'; '.join(problems)}; {fix}, or name an image that has them with `image:`"
    )


def _problem(module: str, sites: Sequence[ImportSite], declared: Declarations, target: str) -> str:
    where = next(str(site) for site in sites if site.module == module)
    package = DISTRIBUTIONS.get(module, module)
    named = canonicalize_name(package)
    match = next((d for d in declared.requirements if d.name == named), None)
    if match is not None:
        return f"{where} imports {module}, declared at {match.where} but not importable there"
    return f"{where} imports {module} (add `{package}` to {target})"
