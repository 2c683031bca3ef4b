"""SIGTERM: stop accepting, let in-flight transfers finish within the grace period, abort the rest cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.config import Settings
from tests.conftest import Inspector
from tests.helpers import free_port

MiB = 1024 * 1024


def start(
    tmp_path: Path, settings: Settings, grace: float, workers: int = 1
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | {
        "GATEWAY_PORT": str(port),
        "GATEWAY_AUTO_INIT": "true",
        "GATEWAY_SHUTDOWN_GRACE": str(grace),
        "GATEWAY_STORAGE_URL": settings.storage_url,
        "GATEWAY_CATALOG_URL": settings.catalog_url,
        "GATEWAY_S3_PART_SIZE": str(5 * MiB),
        "GATEWAY_WORKERS": str(workers),
    }
    log = (tmp_path / f"gw-{port}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve"], cwd=tmp_path, env=env, stdout=log, stderr=log
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gateway did not start") from None
            time.sleep(0.1)


def begin_upload(port: int, total: int, first: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        f"PUT /asset/slow.bin HTTP/1.1\r\nHost: x\r\nContent-Length: {total}\r\n\r\n".encode() + first
    )
    return sock


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
    )
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1]), body


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-workers"])
def test_in_flight_upload_finishes_after_sigterm(
    backend_kind: str, settings: Settings, tmp_path: Path, workers: int
) -> None:
    """With workers, SIGTERM goes to the supervisor, which forwards it; the worker holding the upload
    drains it, and the group exits 0 once every worker has."""
    proc, port = start(tmp_path, settings, grace=20, workers=workers)
    data = os.urandom(7 * MiB)
    try:
        sock = begin_upload(port, len(data), data[: 3 * MiB])
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        try:  # no new connections once shutdown began
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            refused = False
        except OSError:
            refused = True
        sock.sendall(data[3 * MiB :])
        status, body = read_response(sock)
        sock.close()
        assert status == 201, body
        assert refused
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    asset_id = json.loads(body)["asset"]["id"]
    proc, port = start(tmp_path, settings, grace=5)  # restart: the upload is complete and readable
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(f"GET /asset/{asset_id} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status, got = read_response(sock)
        sock.close()
        assert status == 200 and got == data
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_stalled_upload_is_aborted_cleanly_after_grace(
    backend_kind: str, settings: Settings, tmp_path: Path
) -> None:
    proc, port = start(tmp_path, settings, grace=1)
    try:
        sock = begin_upload(port, 20 * MiB, os.urandom(6 * MiB))  # one S3 part uploaded, then silence
        time.sleep(1.0)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        assert time.monotonic() - started < 15
        sock.close()
    finally:
        if proc.poll() is None:
            proc.kill()
    inspector = Inspector(settings)
    assert inspector.blob_keys() == []  # no partial object, no temp file
    assert inspector.multipart_uploads() == []
    assert inspector.catalog_items() == []
