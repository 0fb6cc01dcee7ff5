"""One place to build numba-compiled functions for the strategy library and the engine.

``jit(...)`` is ``numba.njit(cache=True, ...)`` that degrades gracefully: when the on-disk
cache cannot be used (read-only source tree and no writable ``NUMBA_CACHE_DIR``) the
function is compiled in memory instead of failing at import time. Compilation is then paid
once per process rather than once per machine, and nothing else changes.
"""

from __future__ import annotations

import logging

from numba import njit

logger = logging.getLogger(__name__)


def jit(**options):
    """Decorator: ``numba.njit`` with ``cache=True``, falling back to no cache.

    Keyword options (``nogil``, ``fastmath``...) are passed to ``njit`` unchanged.
    """

    def decorate(fn):
        try:
            return njit(cache=True, **options)(fn)
        except RuntimeError as exc:  # numba: "cannot cache function ...: no locator available"
            logger.warning("numba cache unavailable for %s (%s); compiling in memory", fn.__qualname__, exc)
            return njit(cache=False, **options)(fn)

    return decorate
