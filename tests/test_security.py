"""The web server serves nothing outside a session's outputs: not the data folder, not another
session's files, not the signing key, not the app's own files, not system files."""
from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tests.test_app import FACES, REPO, server  # noqa: F401  (the module-scoped app fixture)

ROUTES = ("gradio_api/file=", "gradio_api/file/", "file=")


def _status(url: str, path: str, route: str) -> int:
    try:
        with urllib.request.urlopen(url + route + urllib.parse.quote(path, safe="/"), timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_file_routes_serve_nothing_private(server):  # noqa: F811
    from gradio_client import Client, handle_file

    url, data_dir = server
    client = Client(url, verbose=False, download_files=False)
    photos = [FACES / f"p03_img{i}.jpg" for i in (16, 17)]
    client.predict([handle_file(str(p)) for p in photos], api_name="/check_capture")
    bundle, _ = client.predict(["avatar"], "Ada", "Lovelace", True, [handle_file(str(photos[0]))],
                               api_name="/export")
    # Positive control: the session's own output is served through the same routes.
    assert _status(url, bundle["path"], "gradio_api/file=") == 200

    private = [p for p in Path(data_dir).rglob("*") if p.is_file()]
    key = [p for p in private if p.suffix == ".key" or "key" in p.name]
    assert key, "the export should have created the deployment signing key in the data folder"
    assert any("sessions" in p.parts for p in private)  # uploads and exports of the session
    targets = [str(p) for p in private] + [
        "/etc/passwd", str(REPO / "app.py"), str(REPO / ".env"), str(REPO / "requirements.txt"),
        "../../../../etc/passwd", "..%2f..%2f..%2fetc%2fpasswd", str(Path(data_dir)),
    ]
    served = [(route, t) for t in targets for route in ROUTES if _status(url, t, route) == 200]
    assert served == []
