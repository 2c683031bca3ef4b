"""Real tus clients against a served gateway: tuspy (PyPI) and tus-js-client (npm, run with Node).

Every backend pair; sizes around the S3 part boundary (parts are 5 MiB here, the S3 minimum); a client
killed mid-upload resumes from the URL it stored; parallel uploads (concatenation); an upload resumed
through a second gateway process after the first was killed with SIGKILL. The bytes are checked by
downloading them with curl and comparing sha256.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tusclient import client as tus_client

from gateway.config import Settings
from tests.helpers import running_gateway, sha

MiB = 1024 * 1024
PART = 5 * MiB
JS_DIR = Path(__file__).parent / "js"
SIZES = [0, 1, PART - 1, PART, PART + 1, 2 * PART + 123]


def served_env(settings: Settings) -> dict[str, str]:
    return {
        "GATEWAY_AUTO_INIT": "true",
        "GATEWAY_STORAGE_URL": settings.storage_url,
        "GATEWAY_CATALOG_URL": settings.catalog_url,
        "GATEWAY_S3_PART_SIZE": str(PART),
    }


def file_of(tmp_path: Path, size: int, name: str = "f.bin") -> tuple[Path, str]:
    path = tmp_path / f"{size}-{name}"
    path.write_bytes(os.urandom(size))
    return path, sha(path.read_bytes())


def curl_sha(url: str) -> str:
    out = subprocess.run(["curl", "-sfS", url], capture_output=True, check=True, timeout=300).stdout
    return sha(out)


def asset_of(upload_url: str) -> dict[str, Any]:
    out = subprocess.run(["curl", "-sfS", upload_url], capture_output=True, check=True, timeout=60).stdout
    return json.loads(out)["asset"]  # type: ignore[no-any-return]


def node_client() -> list[str]:
    script = JS_DIR / "tus_upload.mjs"
    if not (JS_DIR / "node_modules" / "tus-js-client").is_dir():
        pytest.fail("tus-js-client is not installed: `make test` runs `npm ci` in tests/js")
    return ["node", str(script)]


async def run_js(cfg: dict[str, Any], *, kill_after: int | None = None) -> list[dict[str, Any]]:
    """Run tus-js-client; with ``kill_after``, SIGKILL it once it reports that many bytes sent."""
    proc = await asyncio.create_subprocess_exec(
        *node_client(), json.dumps(cfg), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(300):
        while line := await proc.stdout.readline():
            event = json.loads(line)
            events.append(event)
            if kill_after is not None and event["event"] == "progress" and event["sent"] >= kill_after:
                proc.send_signal(signal.SIGKILL)
                break
        await proc.wait()
    return events


def tuspy_upload(
    endpoint: str, path: Path, *, chunk: int, stop_at: int | None = None, url: str | None = None
) -> str:
    uploader = tus_client.TusClient(endpoint).uploader(
        str(path), chunk_size=chunk, metadata={"filename": path.name}, url=url
    )
    uploader.upload(stop_at=stop_at)
    return str(uploader.url)


async def test_tuspy_uploads_every_size(settings: Settings, tmp_path: Path) -> None:
    with running_gateway(tmp_path, served_env(settings)) as base:
        for size in SIZES:
            path, digest = file_of(tmp_path, size)
            url = await asyncio.to_thread(tuspy_upload, f"{base}/files/", path, chunk=2 * MiB)
            asset = asset_of(url)
            assert asset["size"] == size and asset["sha256"] == digest
            assert curl_sha(f"{base}/asset/{asset['id']}") == digest


async def test_tus_js_client_uploads_every_size(settings: Settings, tmp_path: Path) -> None:
    with running_gateway(tmp_path, served_env(settings)) as base:
        for size, chunk in [(s, 1536 * 1024) for s in SIZES] + [(PART + 1, None)]:
            path, digest = file_of(tmp_path, size)
            cfg = {
                "endpoint": f"{base}/files/",
                "path": str(path),
                "metadata": {"filename": path.name, "token": "1"},
            }
            if chunk:
                cfg["chunkSize"] = chunk
            events = await run_js(cfg)
            done = events[-1]
            assert done["event"] == "success", events[-3:]
            assert done["assetId"] and done["tokenUrl"].startswith(base)
            assert curl_sha(done["tokenUrl"]) == digest


async def test_tus_js_parallel_uploads_concatenate(settings: Settings, tmp_path: Path) -> None:
    path, digest = file_of(tmp_path, 2 * PART + 7)
    with running_gateway(tmp_path, served_env(settings)) as base:
        cfg = {
            "endpoint": f"{base}/files/",
            "path": str(path),
            "parallelUploads": 3,
            "metadata": {"filename": "p.bin"},
        }
        events = await run_js(cfg)
        done = events[-1]
        assert done["event"] == "success", events[-3:]
        assert curl_sha(f"{base}/asset/{done['assetId']}") == digest


async def test_killed_tus_js_client_resumes_from_its_stored_url(settings: Settings, tmp_path: Path) -> None:
    path, digest = file_of(tmp_path, 4 * PART + 5)
    cfg = {
        "path": str(path),
        "chunkSize": MiB,
        "metadata": {"filename": "resume.bin"},
        "storage": str(tmp_path / "tus-urls.json"),
    }
    with running_gateway(tmp_path, served_env(settings)) as base:
        cfg["endpoint"] = f"{base}/files/"
        first = await run_js(cfg, kill_after=2 * PART)
        assert first[-1]["event"] == "progress"  # killed mid-upload
        second = await run_js(cfg | {"resume": True})
        resumed = [e for e in second if e["event"] == "resumed"]
        assert resumed and resumed[0]["offset"] >= 2 * PART - MiB  # not from zero
        assert second[-1]["event"] == "success", second[-3:]
        assert curl_sha(f"{base}/asset/{second[-1]['assetId']}") == digest


async def test_upload_resumes_through_a_second_process_after_kill_9(
    settings: Settings, tmp_path: Path
) -> None:
    path, digest = file_of(tmp_path, 3 * PART + 99)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with running_gateway(tmp_path / "a", served_env(settings)) as first:
        url = await asyncio.to_thread(
            tuspy_upload, f"{first}/files/", path, chunk=MiB, stop_at=PART + 2 * MiB
        )
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait()
    upload_id = url.rsplit("/", 1)[1]
    with running_gateway(tmp_path / "b", served_env(settings)) as second:
        head = subprocess.run(
            ["curl", "-sfSI", "-H", "Tus-Resumable: 1.0.0", f"{second}/files/{upload_id}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.lower()
        assert f"upload-offset: {PART + 2 * MiB}" in head  # every acknowledged byte survived
        resumed = f"{second}/files/{upload_id}"
        await asyncio.to_thread(tuspy_upload, f"{second}/files/", path, chunk=2 * MiB, url=resumed)
        asset = asset_of(resumed)
        assert asset["sha256"] == digest  # computed by reading back: the hash state died with process A
        assert curl_sha(f"{second}/asset/{asset['id']}") == digest


@pytest.mark.slow
async def test_a_large_upload(settings: Settings, tmp_path: Path) -> None:
    path, digest = file_of(tmp_path, 100 * MiB + 17)
    with running_gateway(tmp_path, served_env(settings)) as base:
        events = await run_js(
            {
                "endpoint": f"{base}/files/",
                "path": str(path),
                "chunkSize": 4 * MiB,
                "metadata": {"filename": "big"},
            }
        )
        assert events[-1]["event"] == "success", events[-3:]
        assert curl_sha(f"{base}/asset/{events[-1]['assetId']}") == digest
