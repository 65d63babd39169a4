"""Out-of-range and hostile parameters sent straight to the API (as any gradio_client, MCP or curl
user can) get a clear error from the server; none makes it read a path or fetch a URL, and the
server stays healthy for the next request."""
from __future__ import annotations

import pytest

from tests.test_app import ADMIN_TOKEN, FACES, api_params, server  # noqa: F401

PATHS_AND_URLS = ["/etc", "/etc/passwd", "../../../../etc", "~/.cache/huggingface", "https://evil.example/model",
                  "file:///etc/passwd", "C:\\Windows", "owner/name/../../x"]


@pytest.fixture(scope="module")
def client(server):  # noqa: F811
    from gradio_client import Client, handle_file

    url, _ = server
    c = Client(url, verbose=False)
    photos = [FACES / f"p05_img{i}.jpg" for i in (34, 35, 36)]
    c.predict([handle_file(str(f)) for f in photos], api_name="/check_capture")
    c.predict([f.name for f in photos], api_name="/confirm_selection")
    return c


def _generate(client, **changes):
    params = api_params(client, "/generate")
    values = {"Style preset": "linkedin", "Seed": 1, "Images": 1, **{k: v for k, v in changes.items()}}
    return client.predict(*[values.get(p["label"], p.get("parameter_default")) for p in params], api_name="/generate")


@pytest.mark.parametrize("steps, rank, words", [
    (10**9, 4, "Steps must be between"), (0, 4, "Steps must be between"), (-5, 4, "Steps must be between"),
    (2, 10**6, "rank must be between"), (2, -1, "rank must be between"),
])
def test_training_numbers_out_of_range(client, steps, rank, words):
    base = api_params(client, "/train")[0]["parameter_default"]
    with pytest.raises(Exception, match=words):
        client.predict(base, steps, rank, api_name="/train")


@pytest.mark.parametrize("base", PATHS_AND_URLS)
def test_base_model_cannot_be_a_server_path_or_url(client, base):
    with pytest.raises(Exception, match="Hugging Face model id"):
        client.predict(base, 2, 4, api_name="/train")
    with pytest.raises(Exception, match="Hugging Face model id"):
        _generate(client, **{"Base model (Hub id or local diffusers folder)": base})


@pytest.mark.parametrize("lora", PATHS_AND_URLS)
def test_lora_cannot_be_a_server_path_or_url(client, lora):
    with pytest.raises(Exception, match="repo id"):
        _generate(client, **{"LoRA from the Hub (blank: the one trained here)": lora})


# Gradio itself refuses values outside a slider's range or a dropdown's choices ("not in the list
# of choices"); the handlers check the rest (and everything again, for components that allow custom values).
CHOICES = "not in the list of choices"


@pytest.mark.parametrize("changes, words", [
    ({"Images": 1000}, "greater than maximum"), ({"Images": 0}, "less than minimum"), ({"Seed": -1}, "Seed must be"),
    ({"Seed": 2**70}, "Seed must be"), ({"Style preset": "../../etc/passwd"}, CHOICES),
    ({"Style preset": "no_such_preset"}, CHOICES), ({"Background": "http://evil.example/bg.png"}, "background"),
    ({"Wardrobe": "/etc/passwd"}, "wardrobe"), ({"Extra prompt words (optional)": "x" * 5000}, "longer than"),
])
def test_generation_parameters_are_checked(client, changes, words):
    with pytest.raises(Exception, match=words):
        _generate(client, **changes)


def test_other_endpoints_refuse_unknown_names(client):
    from gradio_client import handle_file

    with pytest.raises(Exception, match=CHOICES):
        client.predict("../../etc/passwd", False, False, [handle_file(str(FACES / "p05_img34.jpg"))], api_name="/review")
    with pytest.raises(Exception, match=CHOICES):
        client.predict(["../../etc"], "A", "B", True, [handle_file(str(FACES / "p05_img34.jpg"))], api_name="/export")
    with pytest.raises(Exception, match="no style guide named"):
        client.predict("../../etc/passwd", [handle_file(str(FACES / "p05_img34.jpg"))], None, ADMIN_TOKEN,
                       api_name="/team_enrol")
    with pytest.raises(Exception, match="Unknown member number"):
        client.predict("acme", 10**12, "AAAAA-BBBBB", ["team_page"], api_name="/team_consent")
    with pytest.raises(Exception, match="at most 4 values"):
        client.predict("background", ["a", "b", "c", "d", "e"], api_name="/iterate")


def test_server_is_healthy_after_the_abuse(client):
    gallery = _generate(client, Seed=7)
    assert len(gallery) == 1 and "seed 7" in gallery[0]["caption"]
