"""Hub module: model cards, private allow-listed uploads, and offline-aware LoRA / base-model resolution.

Everything runs offline (HF_HUB_OFFLINE=1). The Hub itself cannot run here, so uploads go to
``LocalHub``: a small local stand-in with HfApi's ``whoami`` / ``create_repo`` / ``upload_file``
signatures that writes each uploaded file into a temp folder and records every call. Nothing in
``pipeline.hub`` is mocked; ``huggingface_hub`` (ModelCard parsing, snapshot_download's cache and
offline logic) is the real library. One test talks to the real Hub and only runs with
HF_TOKEN set and HEADSHOT_NETWORK_TESTS=1.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import ModelCard
from safetensors.numpy import save_file

from pipeline import hub
from pipeline.generate import ModelUnavailable
from pipeline.hub import (
    CARD_TAGS, LORA_FILE, UPLOAD_FILES, HubAuthError, HubError, HubUnavailable, LoraNotFound, model_card,
    resolve_base_model, resolve_lora, sanitize_repo_name, save_lora_to_hub,
)

BASE = "stabilityai/stable-diffusion-xl-base-1.0"
SECRET = "hf_TESTtokenNeverLogged0123456789abcdef"


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads the variable once at import, possibly before this module runs.
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.delenv("HF_TOKEN", raising=False)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_lora_dir(root: Path, base: str = BASE, trigger: str = "zqx", with_junk: bool = True) -> Path:
    """A trained-LoRA folder as pipeline.train leaves it, plus things that must never be uploaded."""
    out = root / "lora"
    out.mkdir(parents=True)
    rng = np.random.default_rng(0)
    save_file({"unet.down.lora_A.weight": rng.standard_normal((4, 8)).astype(np.float32),
               "unet.down.lora_B.weight": rng.standard_normal((8, 4)).astype(np.float32)},
              str(out / LORA_FILE))
    training = {
        "config": {"base": base, "trigger": trigger, "class_word": "person", "rank": 4, "alpha": 4,
                   "steps": 10, "learning_rate": 1e-4, "resolution": 64, "seed": 0,
                   "photo_sha256": ["a" * 64, "b" * 64, "c" * 64]},
        "steps": 10, "final_loss": 0.1, "lora_file": LORA_FILE, "lora_sha256": _sha(out / LORA_FILE),
    }
    (out / "training.json").write_text(json.dumps(training, indent=2))
    if with_junk:
        (out / "IMG_0001.jpg").write_bytes(b"\xff\xd8\xff\xe0 a capture photo")
        (out / "photos").mkdir()
        (out / "photos" / "selfie.png").write_bytes(b"\x89PNG a capture photo")
        (out / "checkpoint").mkdir()
        (out / "checkpoint" / "lora.safetensors").write_bytes(b"optimizer state")
        (out / "checkpoint" / "state.json").write_text("{}")
        (out / "other.safetensors").write_bytes(b"not the LoRA")
        (out / "notes.txt").write_text("private")
    return out


class LocalHub:
    """A local stand-in for ``huggingface_hub.HfApi`` (same keyword signatures) writing into a folder."""

    def __init__(self, root: Path, user: str = "alice"):
        self.root, self.user = Path(root), user
        self.calls: list[tuple[str, dict]] = []
        self.repos: dict[str, dict] = {}

    def _check(self, token):
        if token != SECRET:
            raise PermissionError("401: bad token")

    def whoami(self, token=None, *, cache=False) -> dict:
        self.calls.append(("whoami", {"token": token}))
        self._check(token)
        return {"type": "user", "name": self.user}

    def create_repo(self, repo_id, *, token=None, private=None, visibility=None, repo_type=None, exist_ok=False,
                    **kwargs):
        self.calls.append(("create_repo", {"repo_id": repo_id, "token": token, "private": private,
                                           "repo_type": repo_type, "exist_ok": exist_ok}))
        self._check(token)
        if repo_id in self.repos and not exist_ok:
            raise FileExistsError(repo_id)
        self.repos.setdefault(repo_id, {"private": private})
        (self.root / repo_id).mkdir(parents=True, exist_ok=True)
        return f"https://huggingface.co/{repo_id}"

    def upload_file(self, *, path_or_fileobj, path_in_repo, repo_id, token=None, repo_type=None, revision=None,
                    commit_message=None, commit_description=None, create_pr=None, parent_commit=None,
                    run_as_future=False):
        self.calls.append(("upload_file", {"path_in_repo": path_in_repo, "repo_id": repo_id, "token": token,
                                           "repo_type": repo_type, "commit_message": commit_message}))
        self._check(token)
        assert repo_id in self.repos, "upload before create_repo"
        data = path_or_fileobj if isinstance(path_or_fileobj, bytes) else Path(path_or_fileobj).read_bytes()
        dest = self.root / repo_id / path_in_repo
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)

    def files(self, repo_id: str) -> set[str]:
        base = self.root / repo_id
        return {p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------------------------
# Model card


def test_lora_file_name_matches_training():
    from pipeline.train import LORA_FILE as TRAIN_LORA_FILE

    assert LORA_FILE == TRAIN_LORA_FILE


def test_model_card_content_and_yaml_round_trip(tmp_path):
    lora = make_lora_dir(tmp_path)
    card = model_card(lora, BASE, "zqx", repo_id="alice/my-headshots")
    assert isinstance(card, ModelCard)
    meta = card.data.to_dict()
    assert meta["base_model"] == BASE
    assert meta["license"] == "openrail++"
    assert meta["tags"] == CARD_TAGS
    assert meta["library_name"] == "diffusers"
    assert meta["instance_prompt"] == "a photo of zqx person"
    assert meta.get("widget", []) == []  # no example images of the user
    text = card.text
    assert "zqx" in text and "load_lora_weights" in text and "alice/my-headshots" in text
    assert "never uploaded" in text and "SHA-256" in text
    assert "![" not in str(card) and not any(ext in str(card).lower() for ext in (".jpg", ".jpeg", ".png", ".webp"))
    assert "| rank | 4 |" in text and "| photos | 3" in text

    # Round trip: the text parses back to the same metadata, from a string and from a saved README.
    again = ModelCard(str(card))
    assert again.data.to_dict() == meta
    card.save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md")
    assert loaded.data.to_dict() == meta and loaded.text.strip() == card.text.strip()


def test_model_card_reads_training_json_and_hides_local_base(tmp_path):
    lora = make_lora_dir(tmp_path, base="/home/alice/models/sdxl", trigger="kwq", with_junk=False)
    card = model_card(lora, license="other")
    meta = card.data.to_dict()
    assert "base_model" not in meta  # a local path is not a Hub id (and may name a home folder)
    assert "/home/alice" not in str(card)
    assert meta["instance_prompt"] == "a photo of kwq person" and meta["license"] == "other"
    assert "a local base model" in card.text


# --------------------------------------------------------------------------------------------
# Save


def test_save_uploads_only_allow_listed_files_to_a_private_repo(tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    lora = make_lora_dir(tmp_path / "work")
    local = LocalHub(tmp_path / "hub")
    repo_id = save_lora_to_hub(lora, "My Headshots!", SECRET, api=local)

    assert repo_id == "alice/My-Headshots"
    assert [c for c, _ in local.calls] == ["whoami", "create_repo", "upload_file", "upload_file", "upload_file"]
    create = local.calls[1][1]
    assert create["private"] is True and create["exist_ok"] is True and create["repo_id"] == repo_id
    assert local.files(repo_id) == set(UPLOAD_FILES) == {LORA_FILE, "training.json", "README.md"}
    uploaded = [kw["path_in_repo"] for c, kw in local.calls if c == "upload_file"]
    assert uploaded[0] == LORA_FILE and uploaded[-1] == "README.md"  # weights first, card last

    repo = tmp_path / "hub" / repo_id
    assert (repo / LORA_FILE).read_bytes() == (lora / LORA_FILE).read_bytes()
    assert json.loads((repo / "training.json").read_text())["lora_sha256"] == _sha(lora / LORA_FILE)
    card = ModelCard.load(repo / "README.md")
    assert card.data.base_model == BASE and repo_id in card.text
    assert (lora / "README.md").is_file()  # the card is part of the local LoRA folder too

    # The token was passed to every call, and appears nowhere else.
    assert all(kw["token"] == SECRET for _, kw in local.calls)
    out = capsys.readouterr()
    assert SECRET not in caplog.text and SECRET not in out.out + out.err
    assert "alice/My-Headshots" in caplog.text  # logs say what happened, by repo id
    for root in (tmp_path / "work", tmp_path / "hub"):
        for f in root.rglob("*"):
            if f.is_file():
                assert SECRET.encode() not in f.read_bytes(), f


def test_save_token_from_oauth_object_and_env(tmp_path, monkeypatch):
    class OAuthToken:  # the shape of gradio's gr.OAuthToken
        def __init__(self, token):
            self.token = token

    lora = make_lora_dir(tmp_path / "a", with_junk=False)
    local = LocalHub(tmp_path / "hub")
    assert save_lora_to_hub(lora, "one", OAuthToken(SECRET), api=local) == "alice/one"
    monkeypatch.setenv("HF_TOKEN", SECRET)
    assert save_lora_to_hub(lora, "one", None, api=local) == "alice/one"  # exist_ok: saving twice is fine
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(HubAuthError, match="sign in"):
        save_lora_to_hub(lora, "one", None, api=local)


def test_save_errors_never_carry_the_token(tmp_path, caplog):
    class LeakyHub(LocalHub):
        def create_repo(self, repo_id, **kwargs):
            raise RuntimeError(f"server said: bad request for token {kwargs['token']}")

    lora = make_lora_dir(tmp_path / "w", with_junk=False)
    with pytest.raises(HubError) as err:
        save_lora_to_hub(lora, "x", SECRET, api=LeakyHub(tmp_path / "hub"))
    assert SECRET not in str(err.value) and "***" in str(err.value)
    assert err.value.__cause__ is None and err.value.__context__ is None  # the leaky original is dropped
    assert SECRET not in caplog.text


def test_save_refuses_a_folder_without_weights_or_with_a_stale_training_json(tmp_path):
    local = LocalHub(tmp_path / "hub")
    empty = tmp_path / "empty"
    (empty / "photos").mkdir(parents=True)
    with pytest.raises(LoraNotFound, match=LORA_FILE):
        save_lora_to_hub(empty, "x", SECRET, api=local)
    lora = make_lora_dir(tmp_path / "w", with_junk=False)
    (lora / LORA_FILE).write_bytes(b"retrained, but training.json was not rewritten")
    with pytest.raises(HubError, match="stale"):
        save_lora_to_hub(lora, "x", SECRET, api=local)
    assert local.calls == []  # refused before any Hub call


def test_save_offline_with_the_real_api_says_go_online(tmp_path):
    lora = make_lora_dir(tmp_path, with_junk=False)
    with pytest.raises(HubUnavailable, match="Go online"):
        save_lora_to_hub(lora, "x", SECRET)


def test_uploaded_training_json_redacts_a_local_base_path(tmp_path):
    lora = make_lora_dir(tmp_path / "w", base="/home/alice/models/sdxl", with_junk=False)
    local = LocalHub(tmp_path / "hub")
    repo_id = save_lora_to_hub(lora, "r", SECRET, api=local)
    uploaded = json.loads((tmp_path / "hub" / repo_id / "training.json").read_text())
    assert uploaded["config"]["base"] == hub.LOCAL_BASE
    assert uploaded["config"]["photo_sha256"] == ["a" * 64, "b" * 64, "c" * 64]
    assert json.loads((lora / "training.json").read_text())["config"]["base"] == "/home/alice/models/sdxl"


@pytest.mark.parametrize("raw, clean", [
    ("my-headshots", "my-headshots"),
    ("My Headshots 2024!", "My-Headshots-2024"),
    ("../../etc/passwd", "etc-passwd"),
    ("alice/other-repo", "alice-other-repo"),
    ("a--b..c", "a-b.c"),
    ("repo.git", "repo"),
    ("x" * 200, "x" * 96),
    ("Zoë's LoRA", "Zo-s-LoRA"),
])
def test_sanitize_repo_name(raw, clean):
    assert sanitize_repo_name(raw) == clean
    assert hub.is_hub_id(f"alice/{clean}")


@pytest.mark.parametrize("raw", ["", "   ", "!!!", "../..", "---"])
def test_sanitize_repo_name_refuses_empty(raw):
    with pytest.raises(ValueError):
        sanitize_repo_name(raw)


# --------------------------------------------------------------------------------------------
# Resolve


def test_resolve_lora_local(tmp_path):
    lora = make_lora_dir(tmp_path, with_junk=False)
    assert resolve_lora(lora) == lora
    assert resolve_lora(str(lora)) == lora
    assert resolve_lora(lora / LORA_FILE) == lora / LORA_FILE
    missing = tmp_path / "no-weights"
    missing.mkdir()
    (missing / "training.json").write_text("{}")
    with pytest.raises(LoraNotFound, match=LORA_FILE):
        resolve_lora(missing)
    with pytest.raises(LoraNotFound):
        resolve_lora(tmp_path / "does-not-exist")
    with pytest.raises(LoraNotFound, match="safetensors"):
        resolve_lora(lora / "training.json")


@pytest.mark.parametrize("ref", ["someone/headshot-lora", "someone/headshot-lora@v2"])
def test_resolve_lora_hub_id_offline_is_fast_and_actionable(ref, tmp_path):
    t0 = time.monotonic()
    with pytest.raises(HubUnavailable) as err:
        resolve_lora(ref, cache_dir=tmp_path / "cache")
    assert time.monotonic() - t0 < 5
    assert isinstance(err.value, ModelUnavailable)
    msg = str(err.value)
    assert "local path" in msg and "go online" in msg and ref in msg


def _cache_snapshot(cache: Path, repo_id: str, files: dict[str, bytes], ref: str = "main") -> Path:
    """The Hugging Face cache layout (models--owner--name/refs + snapshots/<commit>), as a download leaves it."""
    commit = uuid.uuid4().hex + uuid.uuid4().hex[:8]
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for name, data in files.items():
        (snap / name).write_bytes(data)
    (repo / "refs").mkdir()
    (repo / "refs" / ref).write_text(commit)
    return snap


def test_resolve_lora_hub_id_offline_from_cache(tmp_path):
    cache = tmp_path / "cache"
    lora = make_lora_dir(tmp_path, with_junk=False)
    snap = _cache_snapshot(cache, "alice/cached-lora", {LORA_FILE: (lora / LORA_FILE).read_bytes(),
                                                        "training.json": b"{}"})
    assert resolve_lora("alice/cached-lora", cache_dir=cache) == snap
    _cache_snapshot(cache, "alice/no-weights", {"training.json": b"{}"})
    with pytest.raises(LoraNotFound, match=LORA_FILE):
        resolve_lora("alice/no-weights", cache_dir=cache)


def test_resolve_base_model(tmp_path):
    folder = tmp_path / "sdxl"
    folder.mkdir()
    with pytest.raises(ModelUnavailable, match="model_index.json"):
        resolve_base_model(folder)
    (folder / "model_index.json").write_text('{"_class_name": "StableDiffusionXLPipeline"}')
    assert resolve_base_model(folder) == str(folder)
    assert resolve_base_model(str(folder)) == str(folder)

    t0 = time.monotonic()
    with pytest.raises(HubUnavailable) as err:
        resolve_base_model("someone/some-base", cache_dir=tmp_path / "cache")
    assert time.monotonic() - t0 < 5
    assert "local path" in str(err.value) and "go online" in str(err.value)

    snap = _cache_snapshot(tmp_path / "cache", "someone/cached-base", {"model_index.json": b"{}"})
    assert resolve_base_model("someone/cached-base", cache_dir=tmp_path / "cache") == str(snap)
    with pytest.raises(ModelUnavailable, match="revision"):
        resolve_base_model("someone/cached-base@v1")


# --------------------------------------------------------------------------------------------
# Real Hub (opt-in)

NETWORK = os.environ.get("HEADSHOT_NETWORK_TESTS") == "1" and bool(os.environ.get("HF_TOKEN"))


@pytest.mark.skipif(not NETWORK, reason="needs the Hub: set HF_TOKEN and HEADSHOT_NETWORK_TESTS=1")
def test_real_hub_round_trip(tmp_path, monkeypatch):
    token = os.environ["HF_TOKEN"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    from huggingface_hub import HfApi

    api = HfApi()
    lora = make_lora_dir(tmp_path / "w")
    repo_id = save_lora_to_hub(lora, f"headshot-studio-test-{uuid.uuid4().hex[:8]}", token)
    try:
        assert api.repo_info(repo_id, token=token).private is True
        files = set(api.list_repo_files(repo_id, token=token))
        assert files - {".gitattributes"} == set(UPLOAD_FILES)
        got = resolve_lora(repo_id, cache_dir=tmp_path / "cache", token=token)
        assert (got / LORA_FILE).read_bytes() == (lora / LORA_FILE).read_bytes()
    finally:
        api.delete_repo(repo_id, token=token)
