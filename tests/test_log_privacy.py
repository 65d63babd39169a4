"""Logs never carry photos, prompts, photo file names or tokens, at any level.

The app runs with every logger at DEBUG and a planted fake Hub token in its environment; one full
pass through every step (capture, train, generate, review, export, save to the Hub, the team step)
uses photos with distinctive file names and a distinctive prompt. Then the whole server output is
searched for each of them.
"""
from __future__ import annotations

import shutil

import pytest

from tests.test_app import ADMIN_TOKEN, FACES, api_params, start_app

TOKEN = "hf_PLANTEDfakeTOKEN0123456789abcdefXYZ"
PROMPT_WORD = "purplewombat"
NAMES = ["zqsecret_ada_lovelace.jpg", "zqsecret_two.jpg", "zqsecret_three.jpg"]
SECRETS = [TOKEN, PROMPT_WORD, "zqsecret", "Lovelace"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    d = tmp_path_factory.mktemp("secret-photos")
    for name, src in zip(NAMES, ("p05_img34.jpg", "p05_img35.jpg", "p05_img36.jpg")):
        shutil.copy(FACES / src, d / name)
    return [d / n for n in NAMES]


def test_a_full_run_at_debug_level_logs_nothing_private(tmp_path_factory, photos):
    from gradio_client import Client, handle_file

    with start_app(tmp_path_factory, HEADSHOT_LOG_LEVEL="DEBUG", HF_TOKEN=TOKEN) as (url, _, log_path, _):
        client = Client(url, verbose=False)
        client.predict([handle_file(str(p)) for p in photos], api_name="/check_capture")
        client.predict([p.name for p in photos], api_name="/confirm_selection")
        base = api_params(client, "/train")[0]["parameter_default"]
        client.predict(base, 2, 4, api_name="/train")
        params = api_params(client, "/generate")
        values = {"Style preset": "linkedin", "Seed": 3, "Images": 1,
                  "Extra prompt words (optional)": f"{PROMPT_WORD} lapel pin"}
        client.predict(*[values.get(p["label"], p.get("parameter_default")) for p in params], api_name="/generate")
        client.predict("", False, False, [handle_file(str(photos[0]))], api_name="/review")
        client.predict(["avatar"], "Ada", "Lovelace", True, [handle_file(str(photos[0]))], api_name="/export")
        with pytest.raises(Exception):  # offline: the Hub save fails, and must not echo the token
            client.predict("my-lora", api_name="/save_to_hub")
        client.predict("acme", [handle_file(str(photos[0]))], None, ADMIN_TOKEN, api_name="/team_enrol")
        client.predict([handle_file(str(p)) for p in photos], [], api_name="/delete_photos")
        log = log_path.read_text(errors="replace")
    assert "DEBUG" in log, "the server did not log at DEBUG: the test would prove nothing"
    found = {s: log.count(s) for s in SECRETS if s.lower() in log.lower()}
    assert found == {}, f"private strings in the server log: {found}"
