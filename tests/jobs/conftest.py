"""`python -m pytest tests/jobs --regen` rewrites the golden files before the tests read them."""

from __future__ import annotations

import pytest

from tests.jobs.golden import regenerate_fixtures


@pytest.fixture(scope="session", autouse=True)
def regenerated_golden_files(pytestconfig: pytest.Config) -> None:
    """With --regen, the golden XML is rendered anew from jobs/ (on purpose: review the diff)."""
    if pytestconfig.getoption("regen"):
        for path in regenerate_fixtures():
            print(f"regenerated {path}")
