"""Clients that are slow, stall, wait for 100-continue, and operators who misconfigure: a real process.

These drive `gateway serve` over raw sockets and curl, because what is under test -- header and body
timeouts, when ``100 Continue`` is sent, what a failed start prints -- lives in the server process and
the HTTP framing, not in a handler.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.auth import hash_api_key
from tests.helpers import running_gateway

KEY = "gw_slow-client-test-key-0123456789"


def local_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "GATEWAY_STORAGE_URL": f"file://{tmp_path}/blobs",
        "GATEWAY_CATALOG_URL": f"sqlite:///{tmp_path}/catalog.db",
        **extra,
    }


def connect(base: str) -> socket.socket:
    port = int(base.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def read_response(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (or 10 s of silence)."""
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except TimeoutError:
        pass
    return out


def temp_files(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]


# -- 8: header and body timeouts --------------------------------------------------------------------------
def test_08_half_sent_headers_are_cut_off(tmp_path: Path) -> None:
    with running_gateway(tmp_path, local_env(tmp_path, GATEWAY_HEADER_TIMEOUT="1")) as base:
        sock = connect(base)
        sock.sendall(b"GET /healthcheck HTTP/1.1\r\nHost: x\r\n")  # never finished
        start = time.monotonic()
        for _ in range(4):  # a slowloris trickle does not extend the deadline
            time.sleep(0.3)
            sock.sendall(b"X-Slow: 1\r\n")
        assert read_response(sock) == b""  # closed without a response
        assert time.monotonic() - start < 8
        sock.close()


def test_08_stalled_body_gets_408_and_stores_nothing(tmp_path: Path) -> None:
    with running_gateway(tmp_path, local_env(tmp_path, GATEWAY_BODY_IDLE_TIMEOUT="1")) as base:
        sock = connect(base)
        sock.sendall(b"PUT /asset/stall.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        sock.sendall(os.urandom(300_000))
        answer = read_response(sock)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b'"request_timeout"' in answer
        time.sleep(0.2)
        assert temp_files(tmp_path) == []  # the temp file went with the request


def test_08_slow_but_moving_upload_is_never_cut_off(tmp_path: Path) -> None:
    with running_gateway(tmp_path, local_env(tmp_path, GATEWAY_BODY_IDLE_TIMEOUT="1")) as base:
        sock = connect(base)
        pieces = [os.urandom(1000) for _ in range(8)]
        data = b"".join(pieces)
        sock.sendall(
            f"PUT /asset/slow.bin HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        )
        for piece in pieces:  # 8 x 0.4 s = 3.2 s in all, never 1 s without a byte
            sock.sendall(piece)
            time.sleep(0.4)
        head, _, body = read_until_body(sock)
        sock.close()
        assert head.startswith(b"HTTP/1.1 201"), head
        assert json.loads(body)["asset"]["sha256"] == hashlib.sha256(data).hexdigest()


def read_until_body(sock: socket.socket) -> tuple[bytes, bytes, bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(65536)
    head, sep, rest = buf.partition(b"\r\n\r\n")
    length = int(
        next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1]
    )
    while len(rest) < length:
        rest += sock.recv(65536)
    return head, sep, rest


# -- 9: Expect: 100-continue only after the checks ---------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/asset/big.bin", "", b"401"),  # no credentials
        ("/asset/big.bin", f"Authorization: Bearer {KEY}\r\nContent-Length: 99999999999\r\n", b"413"),
        ("/asset/..", f"Authorization: Bearer {KEY}\r\n", b"400"),
        ("/asset/big.bin?expiry=forever", f"Authorization: Bearer {KEY}\r\n", b"400"),
    ],
)
def test_09_refused_before_100_continue(tmp_path: Path, path: str, headers: str, status: bytes) -> None:
    env = local_env(tmp_path, GATEWAY_API_KEYS=f"ci:{hash_api_key(KEY)}")
    with running_gateway(tmp_path, env) as base:
        sock = connect(base)
        length = "" if "Content-Length" in headers else "Content-Length: 3000000\r\n"
        sock.sendall(
            f"PUT {path} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n{headers}{length}\r\n".encode()
        )
        answer = read_response(sock)  # the final answer, and the connection closes: no body was wanted
        sock.close()
        assert answer.startswith(b"HTTP/1.1 " + status), answer[:300]
        assert b"100 Continue" not in answer


def test_09_curl_sends_nothing_before_a_401_and_everything_after_a_100(tmp_path: Path) -> None:
    env = local_env(tmp_path, GATEWAY_API_KEYS=f"ci:{hash_api_key(KEY)}")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3_000_000))  # curl asks for 100-continue above 1 MiB
    with running_gateway(tmp_path, env) as base:
        denied = subprocess.run(
            ["curl", "-sS", "-T", str(big), "-o", "/dev/null", "-w", "%{http_code} %{size_upload}",
             f"{base}/asset/big.bin"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert denied.stdout.split() == ["401", "0"], denied.stdout + denied.stderr
        ok = subprocess.run(
            ["curl", "-sS", "-T", str(big), "-H", f"Authorization: Bearer {KEY}", "-w", "\n%{http_code}",
             f"{base}/asset/big.bin"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        body, status = ok.stdout.rsplit("\n", 1)
        assert status == "201", ok.stdout + ok.stderr
        assert json.loads(body)["asset"]["sha256"] == hashlib.sha256(big.read_bytes()).hexdigest()


# -- 11: configuration errors name the variable, never the value --------------------------------------------
SECRET = "tiny-secret-value"


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        ({"GATEWAY_JWT_ALGORITHMS": "HS256", "GATEWAY_JWT_SECRET": SECRET}, "GATEWAY_JWT_SECRET"),
        (
            {
                "GATEWAY_JWT_ALGORITHMS": "HS256",
                "GATEWAY_JWT_SECRET": SECRET * 4,
                "GATEWAY_PORT": "not-a-port",
            },
            "GATEWAY_PORT",
        ),
        (
            {
                "GATEWAY_JWT_ALGORITHMS": "HS256",
                "GATEWAY_JWT_SECRET": SECRET * 4,
                "GATEWAY_JWT_PUBLIC_KEY_FILE": "/dev/null",
            },
            "GATEWAY_JWT_PUBLIC_KEY_FILE",
        ),
    ],
)
def test_11_config_errors_never_print_secrets(tmp_path: Path, extra: dict[str, str], names: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | local_env(tmp_path) | extra
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert names in out and SECRET not in out and "Traceback" not in out, out


def test_11_short_hmac_secret_is_refused_at_start() -> None:
    from gateway.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="at least 32 bytes"):
        load_settings(jwt_algorithms=["HS256"], jwt_secret="x" * 31)
    assert load_settings(jwt_algorithms=["HS256"], jwt_secret="x" * 32).jwt_secret is not None
