"""Per-session folders: isolation, safe names, deletion and expiry."""
import os
import time

import pytest

from pipeline.session import Session, expire, safe_filename


@pytest.mark.parametrize("name,expected", [
    ("IMG_0001.JPG", "IMG_0001.jpg"),
    ("../../etc/passwd", "passwd"),
    ("my photo (1).heic", "my_photo_1.heic"),
    ("..jpg", "jpg"),
    ("...", "photo"),
    ("x" * 300 + ".png", "x" * 80 + ".png"),
])
def test_safe_filename(name, expected):
    assert safe_filename(name) == expected


def test_sessions_are_isolated_and_deleted(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    a_file, b_file = src / "a.jpg", src / "same name.jpg"
    a_file.write_bytes(b"a")
    b_file.write_bytes(b"b")
    root = tmp_path / "data"
    alice, bob = Session("alice", root), Session("bob", root)
    assert alice.dir != bob.dir and "alice" not in str(alice.dir)
    stored = alice.add_photos([a_file, b_file, a_file], move=False)
    assert [p.name for p in stored] == ["a.jpg", "same_name.jpg", "a_2.jpg"]
    assert a_file.exists()  # copied, not moved
    bob.add_photos([b_file], move=True)
    assert not b_file.exists() and len(bob.photos()) == 1
    alice.delete()
    assert not alice.dir.exists() and bob.photos()


def test_expire_removes_only_idle_sessions(tmp_path):
    root = tmp_path / "data"
    old, fresh = Session("old", root).ensure(), Session("fresh", root).ensure()
    (old.photos_dir / "p.jpg").write_bytes(b"x")
    past = time.time() - 7 * 3600
    for p in [old.dir, *old.dir.rglob("*")]:
        os.utime(p, (past, past))
    assert expire(ttl_seconds=6 * 3600, root=root) == 1
    assert not old.dir.exists() and fresh.dir.exists()
