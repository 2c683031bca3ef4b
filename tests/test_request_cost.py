"""What the per-request work changed must still hold: the SQLite catalog's two paths, sending local files
(sendfile and the one-write small path) checked with curl, the cached healthcheck, batched download
history, and a client that hangs up not being logged as a crash."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from gateway.config import Settings
from gateway.http.app import create_app
from gateway.http.keys import SERVICE
from tests.conftest import backend_settings
from tests.helpers import running_gateway

KiB = 1024
MiB = 1024 * KiB


@pytest.fixture
def local_settings(tmp_path: Path) -> Settings:
    """The embedded pair only: these tests are about SQLite and local files (not run on the real lane)."""
    return backend_settings("local", tmp_path, None)


@pytest.fixture
async def local(local_settings: Settings, aiohttp_client: Any) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(local_settings))  # type: ignore[no-any-return]


async def put(client: TestClient[Any, Any], name: str, data: bytes, **params: str) -> dict[str, Any]:
    resp = await client.put(f"/asset/{name}", data=data, params=params)
    assert resp.status == 201, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def test_sqlite_readers_do_not_wait_for_a_writer_and_writers_wait_their_turn(
    local: TestClient[Any, Any], local_settings: Settings
) -> None:
    """Another process holds the write lock: downloads are answered meanwhile (the fast path reads),
    an upload waits on the thread with the busy timeout and lands once the lock is released."""
    client = local
    data = os.urandom(3000)
    aid = (await put(client, "r.bin", data))["asset"]["id"]
    path = local_settings.catalog_url.removeprefix("sqlite:///")
    other = sqlite3.connect(path, isolation_level=None, timeout=1)
    other.execute("BEGIN IMMEDIATE")  # the write lock, as another gateway process mid-transaction
    try:
        upload = asyncio.ensure_future(client.put("/asset/w.bin", data=b"written while locked"))
        for _ in range(3):
            got = await client.get(f"/asset/{aid}")
            assert got.status == 200 and await got.read() == data
        await asyncio.sleep(0.3)
        assert not upload.done()  # still waiting for the lock, not failed
    finally:
        other.execute("ROLLBACK")
        other.close()
    resp = await asyncio.wait_for(upload, 30)
    assert resp.status == 201, await resp.text()
    new_id = (await resp.json())["asset"]["id"]
    got = await client.get(f"/asset/{new_id}")
    assert await got.read() == b"written while locked"


async def test_a_claim_that_meets_a_lock_is_counted_once(
    local: TestClient[Any, Any], local_settings: Settings
) -> None:
    """A share-link claim that finds the lock taken is retried on the thread, never applied twice."""
    client = local
    out = await put(client, "c.bin", b"counted", token="1", max_downloads="2")
    secret = out["token"]["token"]
    path = local_settings.catalog_url.removeprefix("sqlite:///")
    other = sqlite3.connect(path, isolation_level=None, timeout=1)
    other.execute("BEGIN IMMEDIATE")
    try:
        first = asyncio.ensure_future(client.get(f"/asset-token/{secret}"))
        await asyncio.sleep(0.3)
        assert not first.done()
    finally:
        other.execute("ROLLBACK")
        other.close()
    resp = await asyncio.wait_for(first, 30)
    assert resp.status == 200 and await resp.read() == b"counted"
    assert (await client.get(f"/asset-token/{secret}")).status == 200
    assert (await client.get(f"/asset-token/{secret}")).status == 410  # two claims, not three


@pytest.mark.parametrize("size", [1, 4 * KiB, 64 * KiB, 64 * KiB + 1, 3 * MiB + 17])
async def test_local_files_by_curl_whole_and_ranges(
    local: TestClient[Any, Any], tmp_path: Path, size: int
) -> None:
    """Both local-file paths (one write up to 64 KiB, sendfile above) against curl: whole, ranges, HEAD."""
    data = os.urandom(size)
    client = local
    out = await put(client, "f.bin", data, token="1")
    url = str(client.make_url(f"/asset/{out['asset']['id']}"))
    dest = tmp_path / "got"

    def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["curl", "-sS", "-f", *args], capture_output=True, timeout=60)

    loop = asyncio.get_running_loop()
    done = await loop.run_in_executor(None, lambda: curl("-o", str(dest), url))
    assert done.returncode == 0, done.stderr
    assert hashlib.sha256(dest.read_bytes()).digest() == hashlib.sha256(data).digest()
    for first, last in [(0, 0), (size // 3, size - 1), (max(0, size - 5), size - 1)]:
        done = await loop.run_in_executor(None, lambda f=first, la=last: curl("-r", f"{f}-{la}", url))
        assert done.returncode == 0, done.stderr
        assert done.stdout == data[first : last + 1]
    head = await loop.run_in_executor(None, lambda: curl("-I", url))
    assert f"content-length: {size}" in head.stdout.decode().lower()
    link = str(client.make_url(f"/asset-token/{out['token']['token']}"))
    done = await loop.run_in_executor(None, lambda: curl("-r", f"{size // 2}-", link))
    assert done.returncode == 0 and done.stdout == data[size // 2 :]  # a link's range: sendfile too


async def test_a_small_blob_shorter_than_its_entry_is_an_error_not_a_short_body(
    local: TestClient[Any, Any],
) -> None:
    client = local
    data = os.urandom(10 * KiB)
    aid = (await put(client, "s.bin", data))["asset"]["id"]
    svc = client.app[SERVICE]
    _, version = await svc.assets.find(aid, owner=None)

    async def short() -> Any:
        yield data[:100]

    await svc.backends.store.write(version.blob_key, short(), size_hint=None)  # behind the catalog's back
    resp = await client.get(f"/asset/{aid}")
    assert resp.status == 502  # before the headers: an honest error, not 200 with 100 bytes
    assert (await resp.json())["error"]["code"] == "storage_error"


async def test_healthcheck_probes_at_most_once_per_interval(settings_factory: Any, make_client: Any) -> None:
    client = await make_client(settings_factory(health_cache_seconds=30))
    svc = client.app[SERVICE]
    calls = 0
    real = svc.backends.catalog.ping

    async def counted() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)  # a slow backend: concurrent pollers must share this probe
        await real()

    svc.backends.catalog.ping = counted  # type: ignore[method-assign]
    answers = await asyncio.gather(*(client.get("/healthcheck") for _ in range(20)))
    assert [a.status for a in answers] == [200] * 20
    assert calls == 1
    again = await client.get("/healthcheck")
    assert again.status == 200 and await again.json() == {"status": "success"}
    assert calls == 1 and int(again.headers["Age"]) >= 0 and again.headers["Cache-Control"] == "no-store"


async def test_healthcheck_without_reuse_sees_trouble_at_once(
    settings_factory: Any, make_client: Any
) -> None:
    from gateway.errors import StorageError

    client = await make_client(settings_factory(health_cache_seconds=0))
    assert (await client.get("/healthcheck")).status == 200
    svc = client.app[SERVICE]

    async def down() -> None:
        raise StorageError("storage unreachable")

    svc.backends.store.ping = down  # type: ignore[method-assign]
    resp = await client.get("/healthcheck")
    assert resp.status == 500 and (await resp.json())["error"] == "storage unreachable"


async def test_download_history_is_written_before_a_graceful_stop(tmp_path: Path) -> None:
    """Entries wait to be batched; SIGTERM must still write them (and the restart shows them)."""
    env = {"GATEWAY_AUTO_INIT": "true"}
    with running_gateway(tmp_path, env) as base:
        async with aiohttp.ClientSession() as http:
            async with http.put(f"{base}/asset/h.bin", data=b"history", params={"token": "1"}) as resp:
                out = await resp.json()
            for _ in range(3):
                async with http.get(out["token"]["url"]) as resp:
                    assert await resp.read() == b"history"
        base.proc.send_signal(signal.SIGTERM)
        assert base.proc.wait(timeout=30) == 0
    with running_gateway(tmp_path, env) as base:
        async with aiohttp.ClientSession() as http:
            url = f"{base}/asset/{out['asset']['id']}/tokens/{out['token']['token_id']}/downloads"
            async with http.get(url) as resp:
                assert [d["status"] for d in (await resp.json())["downloads"]] == [200, 200, 200]


async def test_clients_that_hang_up_are_not_logged_as_crashes(tmp_path: Path) -> None:
    env = {"GATEWAY_AUTO_INIT": "true"}
    with running_gateway(tmp_path, env) as base:
        async with aiohttp.ClientSession() as http:
            async with http.put(
                f"{base}/asset/big.bin", data=os.urandom(8 * MiB), params={"token": "1"}
            ) as r:
                out = await r.json()
        host, port = base.removeprefix("http://").split(":")
        for path in (f"/asset/{out['asset']['id']}", f"/asset-token/{out['token']['token']}"):
            for _ in range(20):
                sock = socket.create_connection((host, int(port)))
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                sock.recv(100)  # the response has started
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                sock.close()  # RST mid-body
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthcheck") as resp:
                assert resp.status == 200
    lines = [
        json.loads(line)
        for line in (tmp_path / "server.log").read_text().splitlines()
        if line.startswith("{")
    ]
    assert not [line for line in lines if line["level"] == "error"], lines[-3:]


async def test_zip_opens_members_ahead_bounded_and_in_order(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    """Member opens overlap (at most READ_AHEAD at once) yet the archive is byte-exact for unzip."""
    from gateway.http.zips import ZipReader

    files = {f"m{i:02}.bin": os.urandom(20 * KiB + i) for i in range(12)}
    ids = [(await put(client, name, data))["asset"]["id"] for name, data in files.items()]
    svc = client.app[SERVICE]
    real_open = svc.assets.open
    in_flight = peak = 0

    async def slow_open(*args: Any, **kwargs: Any) -> Any:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await asyncio.sleep(0.05)  # a storage round trip
            return await real_open(*args, **kwargs)
        finally:
            in_flight -= 1

    svc.assets.open = slow_open  # type: ignore[method-assign]
    resp = await client.post("/zip", json={"assets": ids, "name": "all.zip"})
    assert resp.status == 200
    (tmp_path / "all.zip").write_bytes(await resp.read())
    assert peak == ZipReader.READ_AHEAD
    out = tmp_path / "out"
    done = subprocess.run(["unzip", "-q", str(tmp_path / "all.zip"), "-d", str(out)], capture_output=True)
    assert done.returncode == 0, done.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files


async def test_a_zip_abandoned_midway_closes_every_member_opened_ahead(
    local: TestClient[Any, Any], local_settings: Settings
) -> None:
    client = local
    ids = [(await put(client, f"z{i}.bin", os.urandom(256 * KiB)))["asset"]["id"] for i in range(10)]
    blobs = local_settings.storage_url.removeprefix("file://")

    def open_blobs() -> list[str]:
        found = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if target.startswith(blobs):
                found.append(target)
        return found

    resp = await client.post("/zip", json={"assets": ids})
    assert resp.status == 200
    await resp.content.readexactly(300 * KiB)  # into the second member: the next ones are open
    assert len(open_blobs()) > 1  # the member being sent and some opened ahead
    resp.close()  # the client goes away
    for _ in range(100):
        if not open_blobs():
            break
        await asyncio.sleep(0.05)
    assert open_blobs() == []


async def test_an_in_memory_catalog_is_one_database_for_both_connections() -> None:
    """`sqlite://` (no path) is in memory: what the thread's connection writes, the loop's reads."""
    from gateway.catalog import items as it
    from gateway.catalog.sqlite import SqliteCatalog

    catalog = SqliteCatalog(":memory:")
    await catalog.start()
    try:
        secret = await catalog.shared_secret("probe")  # written on the thread's connection
        item = await catalog.db.op(lambda: catalog._get(it.CONFIG_PK, it.secret_sk("probe")))  # read fast
        assert item is not None and bytes.fromhex(item["value"]) == secret
    finally:
        await catalog.close()


async def test_the_write_ahead_log_stays_bounded_under_steady_writes(tmp_path: Path) -> None:
    """The loop's connection never checkpoints; the thread's checkpoints must still let the log restart
    (a passive checkpoint racing the writes let it grow ~13 KiB per write: 39 MB after 3,000)."""
    import time

    from gateway.catalog.sqlite import SqliteCatalog
    from gateway.records import DownloadRecord

    path = tmp_path / "catalog.db"
    catalog = SqliteCatalog(str(path))
    await catalog.start()
    try:
        for i in range(3000):
            record = DownloadRecord("ab" * 32, time.time(), 4096, 200, f"client{i}", int(time.time()) + 60)
            await catalog.record_downloads([record])
            if i % 10 == 0:
                await asyncio.sleep(0)  # a server's loop turns between requests
            running = catalog.db._checkpoint
            if i % 500 == 499 and running is not None:
                # On a loaded machine the thread may not run before more writes arrive (the log then
                # grows for a while): what is tested is that a checkpoint lets the log start over.
                await running
        assert (tmp_path / "catalog.db-wal").stat().st_size < 15 * MiB
    finally:
        await catalog.close()


async def test_download_history_never_holds_more_than_its_bound(caplog: pytest.LogCaptureFixture) -> None:
    """A catalog that stops answering: entries beyond MAX_PENDING are dropped and reported, not queued."""
    import time

    from gateway.records import DownloadRecord
    from gateway.service import download_history as dh

    release = asyncio.Event()
    written: list[int] = []

    class StuckCatalog:
        async def record_downloads(self, records: list[DownloadRecord]) -> None:
            await release.wait()
            written.append(len(records))

    history = dh.DownloadHistory(StuckCatalog(), interval=0.01)  # type: ignore[arg-type]
    record = DownloadRecord("ab" * 32, time.time(), 1, 200, "c", int(time.time()) + 60)
    for _ in range(dh.BATCH):  # the first batch goes out and hangs in the catalog
        history.add(record)
    await asyncio.sleep(0.05)
    for _ in range(dh.MAX_PENDING + 25):
        history.add(record)
    assert history.dropped == 25
    release.set()
    with caplog.at_level("WARNING", logger="gateway.service"):
        await history.close()
    assert sum(written) == dh.BATCH + dh.MAX_PENDING
    assert "dropped 25 link download history entries" in caplog.text
