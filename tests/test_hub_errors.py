"""Hub failures (401, 403, 404, 429, unreachable) against a real HTTP server on 127.0.0.1.

huggingface_hub talks to a loopback ``http.server`` (``HfApi(endpoint=...)`` for saving, the
``ENDPOINT`` constant for downloads), so nothing touches the real Hub. The server counts every
request: each user action makes each request at most once (no retries), and the planted token
never appears in an error message.
"""
from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.hub import HubAuthError, HubRateLimited, HubUnavailable, LoraNotFound, resolve_lora, save_lora_to_hub

SECRET = "hf_PLANTEDsecretTOKEN1234567890"
# huggingface_hub fetches this registry at most once a day on its own (user-agent detection); it
# belongs to no user action, so the server does not count it.
LIBRARY_REGISTRY = "/api/agent-harnesses"


class _Server:
    """Answers ``status`` to every request, except paths listed in ``ok`` (200 + JSON body)."""

    def __init__(self) -> None:
        self.status = 500
        self.headers: dict[str, str] = {}
        self.ok: dict[str, dict] = {}
        self.requests: Counter = Counter()
        self.seen: list[tuple[str, str]] = []  # (path with query, Authorization header)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                path = self.path.split("?")[0]
                outer.seen.append((self.path, self.headers.get("authorization", "")))
                if path != LIBRARY_REGISTRY:
                    outer.requests[(self.command, path)] += 1
                body, status, extra = b"{}", outer.status, outer.headers
                for prefix, payload in outer.ok.items():
                    if path.startswith(prefix):
                        body, status, extra = json.dumps(payload).encode(), 200, {}
                        break
                else:
                    body = json.dumps({"error": f"status {status}"}).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_HEAD = _answer

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def total(self) -> int:
        return sum(self.requests.values())


@pytest.fixture
def server(monkeypatch):
    # The endpoint is loopback: let huggingface_hub go "online" for this test only.
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    srv = _Server()
    srv.thread.start()
    monkeypatch.setattr(constants, "ENDPOINT", srv.url)
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def _lora_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "lora"
    folder.mkdir()
    (folder / "pytorch_lora_weights.safetensors").write_bytes(b"weights")
    return folder


def _save(srv: _Server, tmp_path: Path):
    from huggingface_hub import HfApi

    return save_lora_to_hub(_lora_dir(tmp_path), "my-headshots", SECRET, api=HfApi(endpoint=srv.url))


@pytest.mark.parametrize("status, error, words", [
    (401, HubAuthError, ["HTTP 401", "Sign in again", "invalid or expired"]),
    (429, HubRateLimited, ["HTTP 429", "rate limit", "try again in 17 s"]),
])
def test_save_fails_at_whoami_with_one_request(server, tmp_path, status, error, words):
    server.status, server.headers = status, {"Retry-After": "17"}
    with pytest.raises(error) as err:
        _save(server, tmp_path)
    msg = str(err.value)
    assert all(w in msg for w in words), msg
    assert SECRET not in msg
    assert server.requests == Counter({("GET", "/api/whoami-v2"): 1})  # one try, no retry
    if status == 429:
        assert err.value.retry_after == 17


def test_save_without_write_access_names_it(server, tmp_path):
    server.status, server.ok = 403, {"/api/whoami-v2": {"name": "alice"}}
    with pytest.raises(HubAuthError) as err:
        _save(server, tmp_path)
    msg = str(err.value)
    assert "no write access" in msg and "HTTP 403" in msg and SECRET not in msg
    # whoami, create (403), and huggingface_hub's own existence check: each exactly once.
    assert server.requests[("POST", "/api/repos/create")] == 1
    assert max(server.requests.values()) == 1 and server.total() <= 3, server.requests


def test_rate_limit_during_upload_is_not_retried(server, tmp_path):
    """huggingface_hub would retry a 429 upload up to 5 times; a button press tries once."""
    server.status, server.headers = 429, {"Retry-After": "42"}
    server.ok = {"/api/whoami-v2": {"name": "alice"}, "/api/repos/create": {"url": f"{server.url}/alice/my-headshots"}}
    with pytest.raises(HubRateLimited, match="try again in 42 s") as err:
        _save(server, tmp_path)
    assert SECRET not in str(err.value)
    failing = {k: n for k, n in server.requests.items() if k[1] not in server.ok}
    assert failing and all(n == 1 for n in failing.values()), server.requests
    assert server.total() == 2 + len(failing) and len(failing) == 1


@pytest.mark.parametrize("status, error, words", [
    (401, HubAuthError, ["HTTP 401", "Sign in again"]),
    (403, HubAuthError, ["HTTP 403", "access"]),
    (404, LoraNotFound, ["not found", "HTTP 404"]),
    (429, HubRateLimited, ["HTTP 429", "try again in 5 s"]),
])
def test_download_errors_are_specific_and_tried_once(server, tmp_path, status, error, words):
    server.status, server.headers = status, {"Retry-After": "5"}
    with pytest.raises(error) as err:
        resolve_lora("alice/my-headshots", cache_dir=tmp_path / "cache", token=SECRET)
    msg = str(err.value)
    assert all(w in msg for w in words), msg
    assert SECRET not in msg
    assert server.total() == 1, server.requests


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on exit: connecting is refused


def test_unreachable_hub_is_one_clear_message(server, tmp_path, monkeypatch):
    from huggingface_hub import HfApi, constants

    dead = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(HubUnavailable) as err:
        save_lora_to_hub(_lora_dir(tmp_path), "x", SECRET, api=HfApi(endpoint=dead))
    assert "cannot reach the Hugging Face Hub" in str(err.value) and SECRET not in str(err.value)
    monkeypatch.setattr(constants, "ENDPOINT", dead)
    with pytest.raises(HubUnavailable) as err:
        resolve_lora("alice/my-headshots", cache_dir=tmp_path / "cache", token=SECRET)
    assert "cannot reach the Hugging Face Hub" in str(err.value) and SECRET not in str(err.value)
    assert server.total() == 0


def test_token_travels_only_in_the_authorization_header_and_never_to_disk(server, tmp_path):
    """The token is used in memory: sent as a bearer header, never in a URL, and written nowhere
    (the LoRA folder, its model card, the download cache, huggingface_hub's token file)."""
    server.status, server.headers = 429, {"Retry-After": "1"}
    server.ok = {"/api/whoami-v2": {"name": "alice"}, "/api/repos/create": {"url": f"{server.url}/alice/my-headshots"}}
    with pytest.raises(HubRateLimited):
        _save(server, tmp_path)
    assert server.seen and all(SECRET not in path for path, _ in server.seen)
    assert {auth for _, auth in server.seen if auth} == {f"Bearer {SECRET}"}
    from huggingface_hub import constants

    written = [p for p in tmp_path.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    token_file = Path(constants.HF_TOKEN_PATH)
    assert written == [] and not (token_file.exists() and SECRET in token_file.read_text())
