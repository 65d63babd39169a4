"""Personal consent codes: how a member proves it is them giving consent, without an account.

The admin hands each member their code (by email or in person); the member enters it in the Team
step's consent panel. A code is an HMAC of the member id under a per-deployment secret kept in the
data folder (mode 0600), so nothing per member is stored and a code cannot be guessed from an id.
Members signed in with Hugging Face whose username is on record need no code.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from .paths import team_root

SECRET_NAME = "consent.secret"


def _secret(root: Path | None = None) -> bytes:
    path = team_root(root) / SECRET_NAME
    try:
        return path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # O_EXCL: two workers starting at once agree on one secret
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes()
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
        return path.read_bytes()


def consent_code(member_id: int, root: Path | None = None) -> str:
    """``ABCDE-FGHIJ``: 50 bits, enough for a code that is also rate-limited by being typed."""
    mac = hmac.new(_secret(root), f"consent:{int(member_id)}".encode(), hashlib.sha256).digest()
    text = base64.b32encode(mac).decode()[:10]
    return f"{text[:5]}-{text[5:]}"


def check_code(member_id: int, code: str, root: Path | None = None) -> bool:
    given = "".join(ch for ch in str(code or "").upper() if ch.isalnum())
    want = consent_code(member_id, root).replace("-", "")
    return len(given) == len(want) and hmac.compare_digest(given, want)
