"""Upload links: a URL anyone can upload to -- with curl, a form, or a tus client -- within exact limits.

Real clients where one exists (curl -T, curl -F, tuspy, tus-js-client); the racing test runs curl against
two gateway processes sharing one catalog, so the limit is exact across processes, and checks that the
losers stored nothing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway.auth import hash_api_key
from gateway.config import Settings
from gateway.http.keys import SERVICE
from tests.helpers import error_code, running_gateway, sha
from tests.test_tus_clients import run_js, served_env, tuspy_upload

ALICE, BOB = "a" * 40, "b" * 40


async def make_link(client: Any, headers: dict[str, str] | None = None, **body: Any) -> dict[str, Any]:
    resp = await client.post("/upload-links", json=body, headers=headers or {})
    out = await resp.json()
    assert resp.status == 201, out
    return out["upload_link"]  # type: ignore[no-any-return]


def path_of(link: dict[str, Any]) -> str:
    return urlsplit(link["url"]).path


def curl(*args: str) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    body, _, code = proc.stdout.rpartition("\n")
    return int(code), (json.loads(body) if body.strip() else {})


async def test_a_link_takes_curl_uploads_for_its_owner(client: Any, tmp_path: Path) -> None:
    link = await make_link(
        client, label="Invoices Q3", max_uploads=5, share={"expiry": "2d", "max_downloads": 1}
    )
    assert len(link["token"]) >= 32 and link["url"].endswith(link["token"]) and link["uploads"] == 0
    listed = await (await client.get("/upload-links")).json()
    assert [x["link_id"] for x in listed["upload_links"]] == [link["link_id"]]
    assert listed["upload_links"][0]["token"] is None and listed["upload_links"][0]["url"] is None
    base = str(client.make_url(path_of(link)))
    report = tmp_path / "report.pdf"
    report.write_bytes(os.urandom(70_000))
    code, out = await asyncio.to_thread(curl, "-T", str(report), f"{base}/report.pdf")
    assert code == 201 and out["asset"]["sha256"] == sha(report.read_bytes())
    assert out["asset"]["content_type"] == "application/pdf" and out["token"]["max_downloads"] == 1
    got = await client.get(urlsplit(out["token"]["url"]).path)
    assert await got.read() == report.read_bytes()
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("first")
    b.write_text("second")
    code, form = await asyncio.to_thread(curl, "-F", f"file=@{a}", "-F", f"file=@{b}", base)
    assert code == 201 and len(form["assets"]) == 2
    listed = await (await client.get("/upload-links")).json()
    assert listed["upload_links"][0]["uploads"] == 3  # each file of the form is one upload
    assert (await client.delete(f"/upload-links/{link['link_id']}")).status == 204
    code, out = await asyncio.to_thread(curl, "-T", str(a), f"{base}/again.txt")
    assert code == 410 and out["error"]["code"] == "upload_link_revoked"


async def test_limits_refuse_before_storing(client: Any, inspector: Any) -> None:
    types = ["image/*", "application/pdf"]
    link = await make_link(client, max_size=1000, content_types=types, max_uploads=1)
    url = path_of(link)
    big = await client.put(f"{url}/a.png", data=os.urandom(2000))
    assert big.status == 413
    blobs = inspector.blob_keys()

    async def chunked() -> Any:  # no Content-Length: cut off mid-stream
        for _ in range(4):
            yield os.urandom(400)

    cut = await client.put(f"{url}/b.png", data=chunked())
    assert cut.status == 413 and inspector.blob_keys() == blobs and not inspector.multipart_uploads()
    wrong = await client.put(f"{url}/doc.txt", data=b"text")
    assert wrong.status == 415 and await error_code(wrong) == "type_not_allowed"
    typed = await client.put(f"{url}/noext", data=b"x", headers={"Content-Type": "text/html"})
    assert typed.status == 415
    ok = await client.put(f"{url}/pic", data=b"\x89PNG", headers={"Content-Type": "image/png"})
    assert ok.status == 201  # the failed attempts gave their claims back: the single use was still there
    used = await client.put(f"{url}/more.png", data=b"x")
    assert used.status == 410 and await error_code(used) == "upload_link_used_up"
    assert (await client.put("/upload/" + "x" * 32 + "/a.png", data=b"x")).status == 404


async def test_expired_link_is_gone(client: Any) -> None:
    link = await make_link(client, expiry="1h")
    svc = client.app[SERVICE]
    real = svc.backends.clock
    svc.backends.clock = lambda: real() + 7200
    try:
        resp = await client.put(f"{path_of(link)}/late.txt", data=b"late")
        assert resp.status == 410 and await error_code(resp) == "upload_link_expired"
    finally:
        svc.backends.clock = real


async def test_bad_link_requests(client: Any) -> None:
    for body in (
        {"max_uploads": 0},
        {"content_types": ["text/html\r\nX: y"]},
        {"content_types": ["nonsense"]},
        {"label": "a\x00b"},
        {"expiry": "forever"},
        {"share": {"max_downloads": -1}},
        {"surprise": 1},
    ):
        resp = await client.post("/upload-links", json=body)
        assert resp.status == 400, body
    assert (await client.delete("/upload-links/nope")).status == 404


async def test_racing_uploads_against_a_limit_across_processes(
    settings: Settings, tmp_path: Path, inspector: Any
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    env = served_env(settings)
    with running_gateway(tmp_path / "a", env) as one, running_gateway(tmp_path / "b", env) as two:
        _, created = await asyncio.to_thread(
            curl, "-H", "Content-Type: application/json", "-d", '{"max_uploads": 7}', f"{one}/upload-links"
        )
        token = created["upload_link"]["token"]
        payload = tmp_path / "p.bin"
        payload.write_bytes(os.urandom(200_000))

        async def race(i: int) -> int:
            base = one if i % 2 else two
            proc = await asyncio.create_subprocess_exec(
                "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-T", str(payload),
                f"{base}/upload/{token}/r{i}.bin", stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, _ = await proc.communicate()
            return int(out)

        codes = await asyncio.gather(*(race(i) for i in range(20)))
    assert sorted(codes) == [201] * 7 + [410] * 13
    assets = [k for k in inspector.blob_keys() if "assets/" in k]
    assert len(assets) == 7 and not inspector.multipart_uploads()  # the losers stored nothing


async def test_tus_clients_through_a_link(settings: Settings, tmp_path: Path) -> None:
    keys = f'["alice:{hash_api_key(ALICE)}"]'
    env = served_env(settings) | {"GATEWAY_API_KEYS": keys}
    data = tmp_path / "video.bin"
    data.write_bytes(os.urandom(6 * 1024 * 1024 + 3))
    with running_gateway(tmp_path, env) as base:
        auth = ["-H", f"Authorization: Bearer {ALICE}"]
        code, _ = await asyncio.to_thread(curl, "-d", "{}", f"{base}/upload-links")
        assert code == 401  # creating a link needs an account in secured mode
        body = '{"share": {"max_downloads": 2}}'
        _, created = await asyncio.to_thread(
            curl, *auth, "-H", "Content-Type: application/json", "-d", body, f"{base}/upload-links"
        )
        link_url = created["upload_link"]["url"]
        cfg = {
            "endpoint": link_url,
            "path": str(data),
            "chunkSize": 2 * 1024 * 1024,
            "metadata": {"filename": "video.bin"},
        }
        events = await run_js(cfg)
        done = events[-1]
        assert done["event"] == "success", events[-3:]
        assert curl_sha(done["tokenUrl"]) == sha(data.read_bytes())  # the link's share setting applied
        code, _ = await asyncio.to_thread(curl, f"{base}/asset/{done['assetId']}")
        assert code == 401  # the uploader cannot read it back by id
        code, meta = await asyncio.to_thread(curl, *auth, f"{base}/asset/{done['assetId']}/meta")
        assert code == 200 and meta["name"] == "video.bin"  # it is the link owner's
        url = await asyncio.to_thread(tuspy_upload, link_url, data, chunk=1024 * 1024)
        assert "/upload/" in url
        head = subprocess.run(
            ["curl", "-sI", "-H", "Tus-Resumable: 1.0.0", f"{link_url}/files/{url.rsplit('/', 1)[1]}"],
            capture_output=True, text=True, check=True,
        ).stdout.lower()  # fmt: skip
        assert head.startswith("http/1.1 200") and "upload-offset: 6291459" in head


def curl_sha(url: str) -> str:
    return sha(subprocess.run(["curl", "-sfS", url], capture_output=True, check=True, timeout=120).stdout)


async def test_secured_links_belong_to_their_creator(settings_factory: Any, make_client: Any) -> None:
    keys = [f"alice:{hash_api_key(ALICE)}", f"bob:{hash_api_key(BOB)}"]
    client = await make_client(settings_factory(api_keys=keys))
    alice = {"Authorization": f"Bearer {ALICE}"}
    bob = {"Authorization": f"Bearer {BOB}"}
    link = await make_link(client, alice)
    assert (await (await client.get("/upload-links", headers=bob)).json())["upload_links"] == []
    assert (await client.delete(f"/upload-links/{link['link_id']}", headers=bob)).status == 404
    up = await client.put(f"{path_of(link)}/x.txt", data=b"hello")  # no credentials: the link is enough
    assert up.status == 201
    aid = (await up.json())["asset"]["id"]
    assert (await client.get(f"/asset/{aid}")).status == 401
    assert (await client.get(f"/asset/{aid}", headers=bob)).status == 404
    assert await (await client.get(f"/asset/{aid}", headers=alice)).read() == b"hello"
    mine = await (await client.get("/assets", headers=alice)).json()
    assert [x["id"] for x in mine["assets"]] == [aid]  # the owner sees what came through the link
    other = await client.post("/files/", headers={"Tus-Resumable": "1.0.0", "Upload-Length": "3"} | alice)
    upload_id = other.headers["Location"].rsplit("/", 1)[1]
    sneaky = await client.head(f"{path_of(link)}/files/{upload_id}", headers={"Tus-Resumable": "1.0.0"})
    assert sneaky.status == 404  # a link reaches only uploads made through it


async def test_an_unfinished_tus_upload_gives_its_use_back(client: Any) -> None:
    link = await make_link(client, max_uploads=1)
    tus = {"Tus-Resumable": "1.0.0"}
    first = await client.post(path_of(link), headers=tus | {"Upload-Length": "10"})
    assert first.status == 201  # counted at creation
    second = await client.post(path_of(link), headers=tus | {"Upload-Length": "10"})
    assert second.status == 410 and await error_code(second) == "upload_link_used_up"
    location = urlsplit(first.headers["Location"]).path
    assert location.startswith(path_of(link) + "/files/")
    assert (await client.delete(location, headers=tus)).status == 204
    again = await client.put(f"{path_of(link)}/now.txt", data=b"the use came back")
    assert again.status == 201


async def test_tus_through_a_link_keeps_the_link_limits(client: Any, inspector: Any) -> None:
    link = await make_link(client, max_size=1000, content_types=["text/plain"])
    tus = {"Tus-Resumable": "1.0.0"}
    name = "filename " + base64.b64encode(b"notes.txt").decode()
    big = await client.post(path_of(link), headers=tus | {"Upload-Length": "1001", "Upload-Metadata": name})
    assert big.status == 413  # before a byte is read
    pdf = "filename " + base64.b64encode(b"a.pdf").decode()
    wrong = await client.post(path_of(link), headers=tus | {"Upload-Length": "10", "Upload-Metadata": pdf})
    assert wrong.status == 415
    deferred = await client.post(
        path_of(link), headers=tus | {"Upload-Defer-Length": "1", "Upload-Metadata": name}
    )
    assert deferred.status == 201
    url = urlsplit(deferred.headers["Location"]).path
    octets = tus | {"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
    over = await client.patch(url, data=b"x" * 1001, headers=octets)
    assert over.status == 413  # the link's limit holds for a length declared late, too
    listed = await (await client.get("/upload-links")).json()
    assert listed["upload_links"][0]["uploads"] == 1  # only the deferred upload holds a use
    assert not [k for k in inspector.blob_keys() if k.startswith("assets/")]
