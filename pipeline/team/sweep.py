"""Start-up housekeeping the app runs once: purge input photos past their retention."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from .records import PurgeSummary

log = logging.getLogger(__name__)


def sweep_at_start(data_root: Path | str | None = None, url: str | URL | None = None) -> dict[str, Any]:
    """Purge expired inputs; never raises (a broken store must not stop the app from starting).

    Returns the purge summary as a dict, or ``{"error": "..."}`` with the exception type only.
    """
    try:
        from .db import DB_URL_ENV
        from .paths import team_root
        from .store import TeamStore

        root = Path(data_root) if data_root is not None else None
        if url is None and not os.environ.get(DB_URL_ENV) and not (team_root(root) / "team.db").exists():
            return PurgeSummary(reason="retention").to_dict()  # no team store yet: nothing to purge, create nothing
        with TeamStore(url=url, root=root) as store:
            return store.purge_expired().to_dict()
    except Exception as e:  # noqa: BLE001 - by design: log and carry on
        # The type and message, not a traceback with local values; messages here hold no personal data.
        log.warning("team store sweep failed: %s: %s", type(e).__name__, e)
        return {"error": type(e).__name__}
