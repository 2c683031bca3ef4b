"""End to end: `gateway serve` as a real process, driven by the README's curl commands verbatim."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Settings
from tests.helpers import running_gateway

CSV = b"id,name\n1,alpha\n2,beta\n"


@pytest.fixture
def served(backend_kind: str, settings: Settings, tmp_path: Path) -> Iterator[str]:
    env = {"GATEWAY_AUTO_INIT": "true"}
    if backend_kind != "local":  # the embedded default needs no configuration at all
        env |= {"GATEWAY_STORAGE_URL": settings.storage_url, "GATEWAY_CATALOG_URL": settings.catalog_url}
    with running_gateway(tmp_path, env) as base:
        yield base


def curl(cmd: str, cwd: Path) -> tuple[int, dict[str, str], bytes]:
    """Run a curl command line through the shell, as a user would; parse `-i` output."""
    out = subprocess.run(cmd, shell=True, cwd=cwd, capture_output=True, check=True, timeout=60).stdout
    while out.startswith(b"HTTP/1.1 100"):
        out = out.split(b"\r\n\r\n", 1)[1]
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def test_seed_curl_commands(served: str, tmp_path: Path) -> None:
    (tmp_path / "something.txt").write_bytes(CSV)
    host = served.removeprefix("http://")

    status, _, body = curl(
        'curl -s -i -X POST -H "Content-Type:text/csv" -T "./something.txt" '
        f"'http://{host}/asset/something.txt?token=1&expiry=200'",
        tmp_path,
    )
    assert status == 201, body
    raw = json.loads(body)
    assert raw["asset"]["size"] == len(CSV) and raw["asset"]["content_type"] == "text/csv"
    assert raw["token"]["expiry"] >= int(time.time()) + 200 * 60 - 5

    status, _, body = curl(
        'curl -s -i -X POST -H "Content-Type:multipart/form-data" -F "token=1" -F "expiry=20" '
        '-F "file=@\\"./something.txt\\";type=text/csv;filename=\\"something.txt\\"" '
        f"'http://{host}/asset'",
        tmp_path,
    )
    assert status == 201, body
    form: dict[str, Any] = json.loads(body)
    assert form["asset"]["name"] == "something.txt" and form["asset"]["content_type"] == "text/csv"

    for uploaded in (raw, form):
        status, headers, body = curl(f"curl -s -i 'http://{host}/asset/{uploaded['asset']['id']}'", tmp_path)
        assert status == 200 and body == CSV
        assert headers["content-type"] == "text/csv"
        assert 'filename="something.txt"' in headers["content-disposition"]
        status, _, body = curl(
            f"curl -s -i 'http://{host}/asset-token/{uploaded['token']['token']}'", tmp_path
        )
        assert status == 200 and body == CSV

    # curl -T (PUT) of a bigger file, chunked from stdin, and a ranged download
    big = os.urandom(6 * 1024 * 1024 + 17)
    (tmp_path / "big.bin").write_bytes(big)
    status, _, body = curl(f"cat big.bin | curl -s -i -T - 'http://{host}/asset/big.bin'", tmp_path)
    assert status == 201, body
    aid = json.loads(body)["asset"]["id"]
    status, headers, body = curl(f"curl -s -i -r 100-199 'http://{host}/asset/{aid}'", tmp_path)
    assert status == 206 and body == big[100:200]
    assert headers["content-range"] == f"bytes 100-199/{len(big)}"

    # the server's own log (JSON lines) names routes, never the secrets in share links
    log = (tmp_path / "server.log").read_text()
    assert '"route": "/asset-token/{token}"' in log
    for uploaded in (raw, form):
        assert uploaded["token"]["token"] not in log
