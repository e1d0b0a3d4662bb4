"""Settings for the whole test session."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# The engine keeps the prepared digits arrays in a per-user cache (engine.data.datasets). The
# tests, and the engines they start, use a cache of their own: they neither read nor write yours.
_cache = tempfile.mkdtemp(prefix="gdw-tests-cache-")
os.environ["XDG_CACHE_HOME"] = _cache
atexit.register(shutil.rmtree, _cache, ignore_errors=True)


import pytest  # noqa: E402
from pathlib import Path  # noqa: E402


@pytest.fixture(scope="module")
def fixture_runs(request, tmp_path_factory) -> Path:
    """The synthesised and recorded fixture runs (tests/fixtures), made once per test module."""
    from fixtures.tui_support import make_runs, use_utc

    use_utc()
    return make_runs(tmp_path_factory.mktemp(request.module.__name__.removeprefix("test_")))


@pytest.fixture
def runs(tmp_path: Path, fixture_runs: Path) -> Path:
    """A private copy of the fixture runs, for tests that change run directories."""
    return Path(shutil.copytree(fixture_runs, tmp_path / "runs"))


@pytest.fixture(autouse=True)
def no_silent_background_errors(request, monkeypatch):
    """Every GdwApp a test starts must end without a worker error, unless the test makes one on
    purpose (marker `background_errors`). A worker that raised once went unnoticed for a whole
    session: the sweeps screen's refresh failed on every tick and every test still passed."""
    try:
        from gdw_tui.app import GdwApp
    except ImportError:  # the UI's dependencies are absent: no app can start
        yield
        return
    apps: list = []
    real_init = GdwApp.__init__

    def tracking_init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        apps.append(self)

    monkeypatch.setattr(GdwApp, "__init__", tracking_init)
    yield
    if request.node.get_closest_marker("background_errors") is None:
        errors = [f"{what}: {error!r}" for app in apps for what, error in app.background_errors]
        distinct = list(dict.fromkeys(errors))
        assert not errors, f"a worker raised in the app {len(errors)} time(s): " + "; ".join(distinct[:3])
