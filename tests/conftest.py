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
