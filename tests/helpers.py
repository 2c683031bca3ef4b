"""Small helpers shared by HTTP tests."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient


async def chunked(data: bytes, size: int = 100_000) -> AsyncIterator[bytes]:
    """A body aiohttp sends with Transfer-Encoding: chunked (no Content-Length)."""
    for i in range(0, len(data), size):
        yield data[i : i + size]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def upload(client: TestClient[Any, Any], name: str, data: bytes, **params: Any) -> dict[str, Any]:
    resp = await client.put(f"/asset/{name}", data=data, params=params)
    body = await resp.json()
    assert resp.status == 201, body
    return body  # type: ignore[no-any-return]


async def error_code(resp: Any) -> str:
    assert resp.content_type == "application/json"
    body = await resp.json()
    return str(body["error"]["code"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served(str):
    """A running gateway's base URL (a str), carrying its process."""

    proc: subprocess.Popen[bytes]


@contextmanager
def running_gateway(cwd: Path, env: dict[str, str], log_name: str = "server.log") -> Iterator[Served]:
    """`gateway serve` as a real process on 127.0.0.1; yields its base URL, stops it afterwards."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    full_env |= {"GATEWAY_PORT": str(port), "GATEWAY_HOST": "127.0.0.1"} | env
    log_path = cwd / log_name
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"], cwd=cwd, env=full_env, stdout=log, stderr=log
        )
        base = Served(f"http://127.0.0.1:{port}")
        base.proc = proc
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/healthcheck", timeout=2) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log_path.read_text())
                time.sleep(0.1)
            yield base
        finally:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
