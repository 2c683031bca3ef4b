"""Streaming benchmark: a large generated body up and down through the gateway, per backend pair.

For each pair the same client code also goes *direct* to the backend (the baseline measured in the
same run), so the printed ratios say what the gateway costs, independent of how fast this machine is.
The gateway's peak RSS growth is read from /proc (VmHWM after resetting it via clear_refs), i.e. the
memory a transfer really cost the server process. Bodies are generated on the fly, never held whole.

    python benchmarks/stream.py [--size-mib 2048] [--pairs local,moto]
    make bench-real   # pair "real": Ceph radosgw + DynamoDB Local, inside scripts/real-lane.sh
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.config import MiB
from gateway.storage.filesystem import FilesystemBlobStore
from gateway.storage.s3 import S3BlobStore

CHUNK = MiB
BLOCK = os.urandom(CHUNK)


async def body(total: int) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        n = min(CHUNK, total - sent)
        yield BLOCK[:n]
        sent += n


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


async def wait_http(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as s:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(f"process exited: {proc.returncode}")
            try:
                async with s.get(url) as r:
                    if r.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never came up")


async def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    """moto in its own process (its RAM must not count against the gateway's)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    await wait_http(url, proc)
    return proc, url


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Terminate, and kill if it does not go (moto sometimes ignores SIGTERM under load)."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def bench_credentials() -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", os.environ.get("REAL_AWS_ACCESS_KEY_ID", "bench"))
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", os.environ.get("REAL_AWS_SECRET_ACCESS_KEY", "bench"))
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


async def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    await fn()
    return time.perf_counter() - t


async def for_each_pair(pairs: str, bench: Callable[[str, Path, str | None], Awaitable[None]]) -> None:
    """Run ``bench(pair, workdir, moto_url)`` per pair, each in a fresh work directory; moto (in its own
    process) is started once if any pair needs it and always stopped."""
    moto = moto_url = None
    if "moto" in pairs.split(","):
        moto, moto_url = await start_moto()
    try:
        for pair in pairs.split(","):
            with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
                await bench(pair, Path(tmp), moto_url)
    finally:
        if moto:
            stop(moto)


def remote_endpoints(pair: str, moto_url: str | None) -> tuple[str, str]:
    """(S3, DynamoDB) endpoints: moto's, or the real lane's (run under `scripts/real-lane.sh run --`)."""
    if pair == "real":
        if "REAL_S3_ENDPOINT" not in os.environ:
            raise SystemExit("pair 'real' runs inside the lane: make bench-real")
        return os.environ["REAL_S3_ENDPOINT"], os.environ["REAL_DYNAMODB_ENDPOINT"]
    assert moto_url
    return moto_url, moto_url


def start_gateway(
    pair: str, workdir: Path, moto_url: str | None, name: str, **env_extra: str
) -> tuple[subprocess.Popen[bytes], str]:
    """`gateway serve` on the embedded pair (data in ``workdir``) or on moto (bucket/table ``name``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    port = free_port()
    env |= {"GATEWAY_PORT": str(port), "GATEWAY_AUTO_INIT": "true", **env_extra}
    if pair != "local":
        s3, ddb = remote_endpoints(pair, moto_url)
        env |= {
            "GATEWAY_STORAGE_URL": f"s3://{name}?endpoint={s3}&region=us-east-1",
            "GATEWAY_CATALOG_URL": f"dynamodb://{name}?endpoint={ddb}&region=us-east-1",
        }
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve"], cwd=workdir, env=env)
    return proc, f"http://127.0.0.1:{port}"


async def run_pair(pair: str, size: int, workdir: Path, moto_url: str | None) -> dict[str, float]:
    gw, base = start_gateway(pair, workdir, moto_url, "bench-gw")
    out: dict[str, float] = {}
    try:
        await wait_http(f"{base}/healthcheck", gw)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
        async with aiohttp.ClientSession(timeout=timeout) as s:
            async with s.put(f"{base}/asset/warm.bin", data=body(16 * MiB)) as r:
                assert r.status == 201, await r.text()
            reset_peak(gw.pid)
            base_rss = rss_kib(gw.pid, "VmRSS")
            asset_id = ""

            async def up() -> None:
                nonlocal asset_id
                async with s.put(f"{base}/asset/big.bin", data=body(size)) as r:
                    assert r.status == 201, await r.text()
                    asset_id = (await r.json())["asset"]["id"]

            out["gw_up_s"] = await timed(up)
            out["rss_up_mib"] = (rss_kib(gw.pid, "VmHWM") - base_rss) / 1024

            async def down() -> None:
                got = 0
                async with s.get(f"{base}/asset/{asset_id}") as r:
                    assert r.status == 200
                    async for chunk in r.content.iter_chunked(CHUNK):
                        got += len(chunk)
                assert got == size, got

            reset_peak(gw.pid)
            base_rss = rss_kib(gw.pid, "VmRSS")
            out["gw_down_s"] = await timed(down)
            out["rss_down_mib"] = (rss_kib(gw.pid, "VmHWM") - base_rss) / 1024
    finally:
        stop(gw)

    # Baseline: the same streaming code, straight to the backend, no HTTP hop through the gateway.
    store: Any
    if pair == "local":
        store = FilesystemBlobStore(workdir / "direct")
    else:
        s3, _ = remote_endpoints(pair, moto_url)
        store = S3BlobStore(bucket="bench-direct", endpoint_url=s3, region="us-east-1")
    await store.start()
    await store.init()
    try:
        out["direct_up_s"] = await timed(lambda: store.write("big", body(size), size_hint=None))

        async def direct_down() -> None:
            reader = await store.open("big")
            got = 0
            async for chunk in reader:
                got += len(chunk)
            await reader.aclose()
            assert got == size

        out["direct_down_s"] = await timed(direct_down)
        await store.delete("big")
    finally:
        await store.close()
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=2048)
    ap.add_argument("--pairs", default="local,moto")
    args = ap.parse_args()
    size = args.size_mib * MiB
    bench_credentials()
    print(
        f"body: {size / MiB:.0f} MiB, chunked (no Content-Length); "
        "gateway defaults (8 MiB parts, 2 in flight)"
    )
    print(
        f"{'pair':6} {'dir':5} {'gateway MB/s':>13} {'direct MB/s':>12} {'ratio':>6} "
        f"{'gw peak RSS growth':>19}"
    )

    async def bench(pair: str, workdir: Path, moto_url: str | None) -> None:
        r = await run_pair(pair, size, workdir, moto_url)
        for d in ("up", "down"):
            gw, direct = size / r[f"gw_{d}_s"] / 1e6, size / r[f"direct_{d}_s"] / 1e6
            print(
                f"{pair:6} {d:5} {gw:13.0f} {direct:12.0f} {gw / direct:6.2f} {r[f'rss_{d}_mib']:15.1f} MiB"
            )

    await for_each_pair(args.pairs, bench)


if __name__ == "__main__":
    asyncio.run(main())
