"""Shared test configuration."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from tests.support import system

settings.register_profile("ci", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng():
    """A seeded generator, so every test run draws the same numbers."""
    return np.random.default_rng(20261125)


# --- system packages: skip (or fail) the tests whose feature is missing, and say so -----------

_MISSING: dict[str, str | None] = {}
_SKIPPED: dict[str, int] = {}
SKIP_KEY = "skipped_for_missing_system_package"


def _why_missing(feature: system.Feature) -> str | None:
    """Why ``feature`` is not usable here (None when it is), checked once per process."""
    if feature.marker not in _MISSING:
        _MISSING[feature.marker] = feature.check()
    return _MISSING[feature.marker]


def pytest_runtest_setup(item):
    """A test marked with a feature that is missing here skips (or fails where required),
    before its fixtures run."""
    for feature in system.FEATURES:
        if item.get_closest_marker(feature.marker) is None:
            continue
        why = _why_missing(feature)
        if why is None:
            continue
        reason = system.skip_reason(feature, why)
        if system.required(feature):
            pytest.fail(f"required here ({system.REQUIRE_ALL}=1 or REQUIRE_BROWSER=1) but "
                        f"{reason}", pytrace=False)
        item.user_properties.append((SKIP_KEY, feature.marker))
        pytest.skip(reason)


def pytest_runtest_logreport(report):
    """Count the tests skipped for each missing feature (in the main process, also with
    pytest-xdist, whose workers send their reports here)."""
    if report.when == "setup" and report.skipped:
        for key, marker in report.user_properties:
            if key == SKIP_KEY:
                _SKIPPED[marker] = _SKIPPED.get(marker, 0) + 1


def pytest_terminal_summary(terminalreporter):
    """Say again which system packages are missing, why, how to install them, and how many
    tests that skipped."""
    if not _SKIPPED:
        return
    terminalreporter.section("missing system packages")
    for marker, n in sorted(_SKIPPED.items()):
        feature = system.BY_MARKER[marker]
        why = _why_missing(feature) or "missing in a test worker"
        terminalreporter.write_line(f"{system.tests(n)} skipped: "
                                    f"{system.skip_reason(feature, why)}")
