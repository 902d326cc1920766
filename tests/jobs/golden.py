"""The golden files of tests/jobs/fixtures: rendered from jobs/ with the FIXED settings there.

Rewrite them on purpose with `python -m pytest tests/jobs --regen`, then review the diff.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tweakops.jenkins.jobs import (
    JOBS_DIR,
    SETTINGS_FILE,
    VIEW_TEMPLATES,
    RenderedJobs,
    load_settings,
    render,
    write_rendered,
)

FIXTURES = Path(__file__).parent / "fixtures"


def regenerate_fixtures(fixtures_dir: Path = FIXTURES, jobs_dir: Path = JOBS_DIR) -> list[Path]:
    """Rewrite the golden XML files from jobs_dir with fixtures_dir/settings.yaml (both views;
    the jobs linked by parameterized-trigger, and in core/ by core triggers)."""
    settings = load_settings(fixtures_dir / SETTINGS_FILE)
    renders = {kind: render(settings, kind == "pipeline", jobs_dir) for kind in VIEW_TEMPLATES}
    core = render(settings, True, jobs_dir, chain_kind="core")
    for old in fixtures_dir.glob("*.xml"):  # only after all rendered: a failure keeps the old
        old.unlink()
    for folder in ("views", "core"):
        shutil.rmtree(fixtures_dir / folder, ignore_errors=True)
    written = write_rendered(RenderedJobs(renders["pipeline"].jobs, {}, "pipeline"), fixtures_dir)
    written += write_rendered(
        RenderedJobs(core.jobs, {}, "pipeline", "core"), fixtures_dir / "core"
    )
    for kind, rendered in renders.items():
        views_only = RenderedJobs({}, rendered.views, rendered.view_kind)
        written += write_rendered(views_only, fixtures_dir / "views" / kind)
    return written
