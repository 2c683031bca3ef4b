"""The terminal client end to end: `gateway upload|download|share|revoke|ls` as real processes against a
served gateway (a real process too), with a TCP proxy in between for the network faults.

Kill -9 during an upload and run the same command again: it continues (one tus creation, the server's
offset > 0). Cut a download and run again: it resumes with Range inside the same retrieval, so a
one-download link still works once and only once. Output on a pseudo-terminal shows progress bars;
piped, it holds no control characters.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pty
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.auth import hash_api_key
from tests.helpers import Served, running_gateway
from tests.tcpproxy import TcpProxy

KEY = "client-test-key-0123456789"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    env = {
        "GATEWAY_STORAGE_URL": f"file://{tmp_path}/blobs",
        "GATEWAY_CATALOG_URL": f"sqlite:///{tmp_path}/catalog.db",
    }
    with running_gateway(tmp_path, env) as base:
        yield base


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Served]:
    env = {
        "GATEWAY_STORAGE_URL": f"file://{tmp_path}/sblobs",
        "GATEWAY_CATALOG_URL": f"sqlite:///{tmp_path}/scatalog.db",
        "GATEWAY_API_KEYS": f"carol:{hash_api_key(KEY)}",
    }
    with running_gateway(tmp_path, env, "secured.log") as base:
        yield base


def client_env(tmp_path: Path, server: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return (
        env
        | {
            "GATEWAY_URL": server,
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "COLUMNS": "100",
        }
        | extra
    )


def gw(tmp_path: Path, server: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env=client_env(tmp_path, server, **env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def agw(tmp_path: Path, server: str, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, env=client_env(tmp_path, server), cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_upload_two_files_share_and_download_the_bundle(served: Served, tmp_path: Path) -> None:
    a, b = tmp_path / "a.bin", tmp_path / "notes – ü.txt"
    a.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    b.write_text("hello\n" * 100)
    up = gw(
        tmp_path, served, "upload", str(a), str(b), "--max-downloads", "2", "--zip-name", "both.zip", "--json"
    )
    assert up.returncode == 0, up.stderr
    result = json.loads(up.stdout)
    assert [x["file"] for x in result["assets"]] == [str(a), str(b)]
    token = result["token"]
    assert token["max_downloads"] == 2 and len(token["asset_ids"]) == 2
    out = tmp_path / "got"
    down = gw(
        tmp_path, served, "download", token["page_url"], "-o", f"{out}/", "--extract", str(tmp_path / "x")
    )
    assert down.returncode == 0, down.stderr
    with zipfile.ZipFile(out / "both.zip") as z:
        assert sorted(z.namelist()) == sorted([a.name, b.name])
    assert (tmp_path / "x" / a.name).read_bytes() == a.read_bytes()
    assert (tmp_path / "x" / b.name).read_bytes() == b.read_bytes()

    one = gw(tmp_path, served, "upload", str(a), "--expiry", "2h", "--qr")
    assert one.returncode == 0, one.stderr
    link, *qr = one.stdout.splitlines()
    assert "/s/" in link and len(qr) > 10 and "█" in one.stdout
    got = gw(tmp_path, served, "download", link, "--json", "-o", str(tmp_path / "single.bin"))
    info = json.loads(got.stdout)
    assert info["verified"] is True and info["sha256"] == sha(a.read_bytes())
    assert (tmp_path / "single.bin").read_bytes() == a.read_bytes()


async def test_upload_resumes_after_kill_9(served: Served, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(24 * 1024 * 1024))
    port = int(served.rsplit(":", 1)[1])
    async with TcpProxy(port, rate=4 * 1024 * 1024) as proxy:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "upload", str(big), "--json",
            env=client_env(tmp_path, proxy.url), cwd=tmp_path,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        state = tmp_path / "cache" / "gateway" / "uploads.json"
        deadline = time.monotonic() + 60
        while not (state.exists() and proxy.upstream_bytes > 8 * 1024 * 1024):
            assert time.monotonic() < deadline and proc.returncode is None
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        proxy.rate = None
        code, out, err = await agw(tmp_path, proxy.url, "upload", str(big), "--json")
        assert code == 0, err
        assert json.loads(out)["assets"][0]["resumed_from"] > 0
        assert [r for r in proxy.requests() if r == ("POST", "/files/")] == [("POST", "/files/")]
        assert proxy.upstream_bytes < 1.6 * big.stat().st_size
    link = json.loads(out)["token"]["page_url"].replace(proxy.url, served)
    code, out, err = await agw(tmp_path, served, "download", link, "--json", "-o", str(tmp_path / "back.bin"))
    assert code == 0, err
    assert json.loads(out)["sha256"] == sha(big.read_bytes())
    assert json.loads(state.read_text()) == {}  # finished uploads leave no state behind


async def test_download_resumes_within_one_allowed_download(served: Served, tmp_path: Path) -> None:
    data = os.urandom(6 * 1024 * 1024)
    src = tmp_path / "once.bin"
    src.write_bytes(data)
    code, out, err = await agw(tmp_path, served, "upload", str(src), "--max-downloads", "1", "-q")
    assert code == 0, err
    link = out.strip()
    port = int(served.rsplit(":", 1)[1])
    target = tmp_path / "dl" / "once.bin"
    async with TcpProxy(port, cut_download_after=2 * 1024 * 1024) as proxy:
        proxied = link.replace(served, proxy.url)
        code, out, err = await agw(tmp_path, proxy.url, "download", proxied, "-o", str(target))
        assert code == 5 and proxy.download_cuts == 1
        assert "run the same command again to resume" in err and len(err.strip().splitlines()) <= 5
        assert not target.exists() and target.with_name("once.bin.part").stat().st_size > 0
        code, out, err = await agw(tmp_path, proxy.url, "download", proxied, "-o", str(target), "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["resumed_from"] > 0 and info["verified"] and target.read_bytes() == data
    assert not target.with_name("once.bin.part").exists()
    code, out, err = await agw(tmp_path, served, "download", link, "-o", str(tmp_path / "again.bin"))
    assert code == 4 and "410" in err and err.count("\n") == 1  # one retrieval allowed, one used


def test_password_revoke_and_errors(served: Served, tmp_path: Path) -> None:
    f = tmp_path / "p.txt"
    f.write_bytes(b"protected\n")
    up = gw(tmp_path, served, "upload", str(f), "--password", "-q", GATEWAY_SHARE_PASSWORD="s3cret-pw")
    assert up.returncode == 0, up.stderr
    link = up.stdout.strip()
    no = gw(tmp_path, served, "download", link, "-o", str(tmp_path / "p1"))
    assert no.returncode == 3 and "needs a password" in no.stderr
    bad = gw(
        tmp_path,
        served,
        "download",
        link,
        "--password",
        "-o",
        str(tmp_path / "p2"),
        GATEWAY_SHARE_PASSWORD="x",
    )
    assert bad.returncode == 3 and "wrong password" in bad.stderr
    ok = gw(tmp_path, served, "download", link, "--password", "-o", str(tmp_path / "p3"),
            GATEWAY_SHARE_PASSWORD="s3cret-pw")  # fmt: skip
    assert ok.returncode == 0 and (tmp_path / "p3").read_bytes() == b"protected\n"

    rv = gw(tmp_path, served, "revoke", link)
    assert rv.returncode == 0 and rv.stdout.strip() == "revoked"
    gone = gw(tmp_path, served, "download", link, "--password", GATEWAY_SHARE_PASSWORD="s3cret-pw")
    assert gone.returncode == 4 and gone.stderr.startswith("gateway: ") and gone.stderr.count("\n") == 1
    assert gw(tmp_path, served, "revoke", link).returncode == 4

    down = gw(tmp_path, "http://127.0.0.1:9", "download", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert down.returncode == 5 and "cannot reach http://127.0.0.1:9" in down.stderr
    assert "Traceback" not in down.stderr
    bogus = gw(tmp_path, served, "download", "not a link!")
    assert bogus.returncode == 2 and "not a link" in bogus.stderr
    missing = gw(tmp_path, served, "upload", str(tmp_path / "nope.bin"))
    assert missing.returncode == 2 and "not a file" in missing.stderr


def test_secured_server_ls_share_and_revoke_by_id(secured: Served, tmp_path: Path) -> None:
    f = tmp_path / "mine.txt"
    f.write_bytes(b"mine")
    refused = gw(tmp_path, secured, "upload", str(f))
    assert refused.returncode == 3 and "401" in refused.stderr and KEY not in refused.stderr
    (tmp_path / "config" / "gateway").mkdir(parents=True)
    (tmp_path / "config" / "gateway" / "client.toml").write_text(f'api_key = "{KEY}"\n')
    up = gw(tmp_path, secured, "upload", str(f), "--no-link")
    assert up.returncode == 0, up.stderr
    asset_id = up.stdout.strip()
    listed = gw(tmp_path, secured, "ls", "--json")
    assert [a["id"] for a in json.loads(listed.stdout)["assets"]] == [asset_id]
    plain = gw(tmp_path, secured, "ls")
    assert asset_id in plain.stdout and "mine.txt" in plain.stdout
    links = [gw(tmp_path, secured, "share", asset_id, "--expiry", "1d").stdout.strip() for _ in range(2)]
    assert all("/s/" in link for link in links)
    assert gw(tmp_path, secured, "download", links[0], "-o", str(tmp_path / "m1")).returncode == 0
    rv = gw(tmp_path, secured, "revoke", asset_id, "--json")
    assert json.loads(rv.stdout) == {"revoked": 2}
    assert gw(tmp_path, secured, "download", links[1]).returncode == 4
    wrong = gw(tmp_path, secured, "ls", GATEWAY_API_KEY="wrong-key")
    assert wrong.returncode == 3


def test_progress_on_a_terminal_and_plain_when_piped(served: Served, tmp_path: Path) -> None:
    files = []
    for i in range(2):
        p = tmp_path / f"f{i}.bin"
        p.write_bytes(os.urandom(12 * 1024 * 1024))
        files.append(str(p))
    piped = gw(tmp_path, served, "upload", *files)
    assert piped.returncode == 0, piped.stderr
    for stream in (piped.stdout, piped.stderr):
        assert "\x1b" not in stream and "\r" not in stream
    assert "f0.bin: 100% (12582912 of 12582912 bytes)" in piped.stderr

    tty = _on_a_terminal(tmp_path, served, ["upload", *files, "--max-downloads", "1"])
    assert "\x1b[" in tty and "━" in tty and "total" in tty and "/s/" in tty


def _on_a_terminal(tmp_path: Path, server: str, args: list[str]) -> str:
    """Run the client with stdout and stderr on a pseudo-terminal; what the terminal received."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", *args],
        env=client_env(tmp_path, server, TERM="xterm-256color"),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    seen = bytearray()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.wait(timeout=30) == 0, seen.decode(errors="replace")
    return seen.decode(errors="replace")
