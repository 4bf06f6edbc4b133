"""Clean-up at scale: mtimes in the results, POST /api/duplicates/resolve (rules, dry run,
changed files left alone, never the last copy, the trash), real files on disk."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from server import keys

from .conftest import ClientFactory
from .scan_support import scan_results

BIG = 300_000
SMALL = 20_000
TINY = 5_000
# path -> (content name, mtime in seconds)
LAYOUT = {
    "s1/m1/a.jpg": ("big", 1_000),
    "s1/m2/a.jpg": ("big", 2_000),
    "s2/a_long_model_name/a.jpg": ("big", 3_000),
    "s1/m2/b.png": ("small", 5_000),
    "s2/m3/b.png": ("small", 1_000),
    "s2/m3/c.jpg": ("tiny", 4_000),
    "s2/m4/c.jpg": ("tiny", 4_000),
}


async def _scanned(tmp_path: Path, make_client: ClientFactory) -> tuple[Path, TestClient[Any, Any], dict[str, Any]]:
    root = tmp_path / "lib"
    contents = {"big": os.urandom(BIG), "small": os.urandom(SMALL), "tiny": os.urandom(TINY)}
    for relative, (content, mtime) in LAYOUT.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(contents[content])
        os.utime(path, (mtime, mtime))
    (root / "s1/m1/unique.jpg").write_bytes(os.urandom(BIG))
    client = await make_client(models_dir=root)
    body = await scan_results(client)
    assert [g["files"] for g in body["groups"]] == [
        ["s1/m1/a.jpg", "s1/m2/a.jpg", "s2/a_long_model_name/a.jpg"],
        ["s1/m2/b.png", "s2/m3/b.png"],
        ["s2/m3/c.jpg", "s2/m4/c.jpg"],
    ]
    return root, client, body


async def _resolve(client: TestClient[Any, Any], **body: Any) -> tuple[int, dict[str, Any]]:
    response = await client.post("/api/duplicates/resolve", json=body)
    return response.status, await response.json()


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


async def test_each_group_carries_the_mtimes_of_its_files(tmp_path: Path, make_client: ClientFactory) -> None:
    root, _client, body = await _scanned(tmp_path, make_client)
    for group in body["groups"]:
        assert group["mtimes"] == [os.stat(root / path).st_mtime for path in group["files"]]
    assert body["groups"][0]["mtimes"] == [1_000, 2_000, 3_000]


async def test_dry_run_previews_each_rule_and_moves_nothing(tmp_path: Path, make_client: ClientFactory) -> None:
    root, client, body = await _scanned(tmp_path, make_client)
    before = _snapshot(root)
    expected_keeps = {
        ("oldest", None, None): ["s1/m1/a.jpg", "s2/m3/b.png", "s2/m3/c.jpg"],  # c: a tie, natural order
        ("newest", None, None): ["s2/a_long_model_name/a.jpg", "s1/m2/b.png", "s2/m3/c.jpg"],
        ("shortest_path", None, None): ["s1/m1/a.jpg", "s1/m2/b.png", "s2/m3/c.jpg"],
        ("in_site", "s2", None): ["s2/a_long_model_name/a.jpg", "s2/m3/b.png", "s2/m3/c.jpg"],
        ("in_model", "s1", "m2"): ["s1/m2/a.jpg", "s1/m2/b.png"],
    }
    for (rule, site, model), keeps in expected_keeps.items():
        extra = {key: value for key, value in (("site", site), ("model", model)) if value}
        status, preview = await _resolve(client, rule=rule, groups="all", dry_run=True, **extra)
        assert status == 200, preview
        assert [entry["keep"] for entry in preview["plan"]] == keeps, rule
        for entry in preview["plan"]:
            group = next(g for g in body["groups"] if g["id"] == entry["id"])
            assert sorted([entry["keep"], *entry["delete"]]) == sorted(group["files"])
        moved = [path for entry in preview["plan"] for path in entry["delete"]]
        assert preview["files"] == len(moved)
        assert preview["bytes"] == sum(os.path.getsize(root / path) for path in moved)
        assert preview["groups"] == len(keeps)
    status, preview = await _resolve(client, rule="in_model", site="s1", model="m2", groups="all", dry_run=True)
    assert preview["skipped"] == [{"id": body["groups"][2]["id"], "reason": "no_copy_in_model"}]
    assert _snapshot(root) == before
    assert (await (await client.get("/api/trash")).json())["items"] == []
    assert await (await client.get("/api/duplicates")).json() == body


async def test_resolve_moves_the_other_copies_to_the_trash_and_restore_brings_them_back(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    root, client, body = await _scanned(tmp_path, make_client)
    before = _snapshot(root)
    ids = [g["id"] for g in body["groups"]]
    status, result = await _resolve(client, rule="in_site", site="s1", groups=ids)
    assert status == 200, result
    assert sorted(result["deleted"]) == ["s1/m2/a.jpg", "s2/a_long_model_name/a.jpg", "s2/m3/b.png"]
    assert result["bytes"] == 2 * BIG + SMALL
    assert result["changed"] == [] and result["skipped"] == [{"id": ids[2], "reason": "no_copy_in_site"}]
    assert not (root / "s2/m3/b.png").exists() and (root / "s1/m2/b.png").exists()
    assert (root / "s1/m1/a.jpg").exists() and not (root / "s1/m2/a.jpg").exists()

    after = await (await client.get("/api/duplicates")).json()
    assert after["groups"] == [body["groups"][2]]
    assert "s2/m3/b.png" not in client.app[keys.SCAN].cache._entries

    trash = await (await client.get("/api/trash")).json()
    assert sorted(i["id"] for i in trash["items"]) == sorted(i["id"] for i in result["items"])
    for item in result["items"]:
        assert (await client.post("/api/trash/restore", params={"id": item["id"]})).status == 200
    assert _snapshot(root) == before


async def test_a_group_changed_after_the_scan_is_left_alone(tmp_path: Path, make_client: ClientFactory) -> None:
    root, client, body = await _scanned(tmp_path, make_client)
    data = bytearray((root / "s1/m2/a.jpg").read_bytes())
    data[BIG // 2] ^= 1  # same size, one byte in the middle
    (root / "s1/m2/a.jpg").write_bytes(bytes(data))
    (root / "s2/m4/c.jpg").unlink()
    status, result = await _resolve(client, rule="oldest", groups="all")
    assert status == 200, result
    assert result["changed"] == [
        {"id": body["groups"][0]["id"], "reason": "not_identical"},
        {"id": body["groups"][2]["id"], "reason": "not_found"},
    ]
    assert result["deleted"] == ["s1/m2/b.png"]
    for path in ("s1/m1/a.jpg", "s1/m2/a.jpg", "s2/a_long_model_name/a.jpg", "s2/m3/b.png", "s2/m3/c.jpg"):
        assert (root / path).exists(), path

    # nothing left that can be done: 409, nothing moved
    status, result = await _resolve(client, rule="oldest", groups=[body["groups"][0]["id"]])
    assert status == 409 and result["error"] == "not_identical"
    assert (root / "s2/a_long_model_name/a.jpg").exists()
    # a group resolved already is no longer in the results: skipped
    status, result = await _resolve(client, rule="oldest", groups=[body["groups"][1]["id"]])
    assert status == 200 and result["deleted"] == []
    assert result["skipped"] == [{"id": body["groups"][1]["id"], "reason": "unknown_group"}]


async def test_resolve_never_removes_the_last_copy(tmp_path: Path, make_client: ClientFactory) -> None:
    root, client, body = await _scanned(tmp_path, make_client)
    # after the scan, a copy becomes a link to the one the rule keeps
    (root / "s2/m3/b.png").unlink()
    os.symlink("../../s1/m2/b.png", root / "s2/m3/b.png")
    status, result = await _resolve(client, rule="newest", groups=[body["groups"][1]["id"]])
    assert status == 409 and result["error"] == "not_identical"
    status, result = await _resolve(client, rule="newest", groups="all")
    assert status == 200
    assert {"id": body["groups"][1]["id"], "reason": "same_file"} in result["changed"]
    assert (root / "s1/m2/b.png").read_bytes() == (root / "s2/m3/b.png").read_bytes()
    for group in body["groups"]:
        assert any((root / path).exists() for path in group["files"])


async def test_resolve_validates_its_body_and_state(tmp_path: Path, make_client: ClientFactory) -> None:
    root = tmp_path / "lib"
    (root / "s" / "m").mkdir(parents=True)
    client = await make_client(models_dir=root)
    status, result = await _resolve(client, rule="oldest", groups="all", dry_run=True)
    assert status == 404 and result["error"] == "no_scan"

    _root, client, body = await _scanned(tmp_path / "second", make_client)
    bad: list[dict[str, Any]] = [
        {"rule": "oldest"},
        {"groups": "all"},
        {"rule": "biggest", "groups": "all"},
        {"rule": "oldest", "groups": "some"},
        {"rule": "oldest", "groups": []},
        {"rule": "oldest", "groups": [3]},
        {"rule": "oldest", "groups": ["x"] * 5001},
        {"rule": "oldest", "groups": "all", "dry_run": "yes"},
        {"rule": "oldest", "groups": "all", "extra": 1},
        {"rule": "in_site", "groups": "all"},
        {"rule": "in_model", "groups": "all", "site": "s1"},
        {"rule": "in_site", "groups": "all", "site": "s1/m1"},
        {"rule": "in_model", "groups": "all", "site": "s1", "model": "m1/"},
        {"rule": "oldest", "groups": "all", "site": None},
    ]
    for payload in bad:
        status, result = await _resolve(client, **payload)
        assert status == 400 and set(result) == {"error", "message"}, payload
    response = await client.post("/api/duplicates/resolve", data=b"{not json")
    assert response.status == 400 and (await response.json())["error"] == "invalid_json"

    service = client.app[keys.SCAN]
    service.progress.running = True  # as while a scan runs
    try:
        status, result = await _resolve(client, rule="oldest", groups="all", dry_run=True)
    finally:
        service.progress.running = False
    assert status == 409 and result["error"] == "scan_running"
    assert await (await client.get("/api/duplicates")).json() == body
