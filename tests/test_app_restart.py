"""Kill the app during training; after a restart the same page's run resumes from its last
checkpoint (the session folder is keyed by the page's session, which survives the restart)."""
from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from tests.test_app import FACES, api_params, start_app

STEPS = 30  # the first run is killed at its first checkpoint (step 2); the resumed one finishes


def _training_json(data_dir: Path) -> dict | None:
    found = list(Path(data_dir).glob("sessions/*/lora/training.json"))
    return json.loads(found[0].read_text()) if found else None


def test_killed_training_resumes_after_restart(tmp_path_factory):
    from gradio_client import Client, handle_file

    data_dir = tmp_path_factory.mktemp("data")
    env = {"HEADSHOT_CHECKPOINT_STEPS": "2"}
    with start_app(tmp_path_factory, data_dir=data_dir, **env) as (url, _, _, proc):
        client = Client(url, verbose=False)
        photos = [FACES / f"p05_img{i}.jpg" for i in (34, 35, 36)]
        client.predict([handle_file(str(p)) for p in photos], api_name="/check_capture")
        client.predict([p.name for p in photos], api_name="/confirm_selection")
        base = api_params(client, "/train")[0]["parameter_default"]
        client.submit(base, STEPS, 4, api_name="/train")
        deadline = time.time() + 180
        while not list(Path(data_dir).glob("sessions/*/lora/checkpoint*/manifest.json")) and time.time() < deadline:
            time.sleep(0.2)
        assert list(Path(data_dir).glob("sessions/*/lora/checkpoint*/manifest.json")), "no checkpoint was written"
        proc.send_signal(signal.SIGKILL)  # mid-chunk, no chance to clean up
        proc.wait(timeout=30)
        session_hash = client.session_hash
        client.close()

    with start_app(tmp_path_factory, data_dir=data_dir, **env) as (url, _, _, _):
        again = Client(url, verbose=False)
        again.session_hash = session_hash  # the same page, reconnected to the restarted server
        status, _ = again.predict(base, STEPS, 4, api_name="/train")
    state = _training_json(data_dir)
    first, resumed = state["start_steps"][:2]
    assert first == 0 and resumed >= 2, state["start_steps"]  # picked up from a checkpoint, not from zero
    assert f"finished** at step {STEPS} of {STEPS}" in status
