"""``gateway sync`` as a process, between filesystem and S3 (moto, and the real lane's RGW) both ways."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import remote_endpoints


def gateway_sync(*args: str, cwd: Path) -> tuple[int, list[dict[str, Any]], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", "sync", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=env,
    )
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines()], proc.stderr


@pytest.fixture
def s3(remote_kind: str, request: pytest.FixtureRequest) -> Any:
    endpoint, _ = remote_endpoints(remote_kind, request)
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")

    def bucket() -> str:
        name = f"sync-{uuid.uuid4().hex[:12]}"
        client.create_bucket(Bucket=name)
        return f"s3://{name}/data?region=us-east-1&endpoint={endpoint}"

    client.new_bucket = bucket
    return client


def tree(root: Path, files: dict[str, bytes]) -> None:
    for key, data in files.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)


FILES = {
    "a.txt": b"alpha",
    "photos/2024/b.bin": os.urandom(300_000),
    "photos/c.bin": os.urandom(6 * 1024 * 1024),
}


def keys_of(lines: list[dict[str, Any]], action: str) -> list[str]:
    return sorted(line["key"] for line in lines if line.get("action") == action)


def test_file_to_s3_to_s3_to_file_round_trip(tmp_path: Path, s3: Any) -> None:
    src = tmp_path / "src"
    tree(src, FILES)
    first, second = s3.new_bucket(), s3.new_bucket()
    code, lines, err = gateway_sync(f"file://{src}", first, cwd=tmp_path)
    assert code == 0, err
    assert keys_of(lines, "copy") == sorted(FILES) and lines[-1]["summary"]["copied"] == 3
    code, lines, _ = gateway_sync(f"file://{src}", first, cwd=tmp_path)  # nothing new
    assert code == 0 and lines == [{"summary": lines[-1]["summary"]}] and lines[-1]["summary"]["skipped"] == 3
    code, lines, _ = gateway_sync(first, second, "--concurrency", "2", cwd=tmp_path)  # S3 -> S3
    assert code == 0 and keys_of(lines, "copy") == sorted(FILES)
    back = tmp_path / "back"
    code, lines, _ = gateway_sync(second, f"file://{back}", cwd=tmp_path)  # S3 -> file
    assert code == 0 and keys_of(lines, "copy") == sorted(FILES)
    assert {str(p.relative_to(back)): p.read_bytes() for p in back.rglob("*") if p.is_file()} == FILES


def test_size_only_delete_dry_run_and_prefix(tmp_path: Path, s3: Any) -> None:
    src, dst = tmp_path / "src", s3.new_bucket()
    tree(src, FILES)
    assert gateway_sync(f"file://{src}", dst, cwd=tmp_path)[0] == 0
    (src / "a.txt").write_bytes(b"ALPHA")  # same size, new content
    (src / "new.txt").write_bytes(b"new")
    (src / "photos" / "c.bin").unlink()
    code, lines, _ = gateway_sync(f"file://{src}", dst, "--size-only", cwd=tmp_path)
    assert keys_of(lines, "copy") == ["new.txt"]  # aws s3 sync --size-only: equal sizes are equal
    code, lines, _ = gateway_sync(f"file://{src}", dst, "--delete", "--dry-run", cwd=tmp_path)
    assert keys_of(lines, "would-copy") == ["a.txt"] and keys_of(lines, "would-delete") == ["photos/c.bin"]
    assert lines[-1]["summary"]["dry_run"] is True and lines[-1]["summary"]["copied"] == 0
    code, lines, _ = gateway_sync(f"file://{src}", dst, "--delete", "--prefix", "photos/", cwd=tmp_path)
    assert keys_of(lines, "delete") == ["photos/c.bin"] and keys_of(lines, "copy") == []  # a.txt: outside
    code, lines, _ = gateway_sync(f"file://{src}", dst, "--delete", cwd=tmp_path)
    assert code == 0 and keys_of(lines, "copy") == ["a.txt"]  # by content, the default
    back = tmp_path / "back"
    assert gateway_sync(dst, f"file://{back}", cwd=tmp_path)[0] == 0
    assert (back / "a.txt").read_bytes() == b"ALPHA" and not (back / "photos" / "c.bin").exists()


def test_hostile_keys_fail_alone_and_the_run_says_so(tmp_path: Path, s3: Any) -> None:
    src = s3.new_bucket()
    bucket = src.split("/")[2]
    for key in ("data/ok.txt", "data/../../escape.txt", "data/sub/./dot.txt"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    out = tmp_path / "out"
    code, lines, err = gateway_sync(src, f"file://{out}", "--only-show-errors", cwd=tmp_path)
    assert code == 1, err
    assert sorted(line["key"] for line in lines if "error" in line) == [
        "../../escape.txt",
        "sub/./dot.txt",
    ], (
        lines,
        err,
    )
    assert (out / "ok.txt").read_bytes() == b"x" and not (tmp_path / "escape.txt").exists()
    assert lines[-1]["summary"]["failed"] == 2 and lines[-1]["summary"]["copied"] == 1


def test_terminal_shows_bars_pipe_gets_json(tmp_path: Path) -> None:
    src = tmp_path / "src"
    tree(src, FILES)
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | {"COLUMNS": "100"}
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", "sync", f"file://{src}", f"file://{tmp_path / 'dst'}"],
        stderr=follower,
        stdout=subprocess.PIPE,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert proc.returncode == 0
    assert b"objects" in shown and b"bytes" in shown and b"100%" in shown  # rich bars on the terminal
    assert json.loads(proc.stdout.decode().splitlines()[-1])["summary"]["copied"] == 3
    assert b"\x1b" not in proc.stdout  # the piped part is plain JSON


def test_s3_to_s3_between_two_accounts(
    tmp_path: Path, s3: Any, remote_kind: str, request: pytest.FixtureRequest
) -> None:
    """The regional backup between two accounts: each storage with its own credentials (on the real lane,
    two RGW users; the destination bucket belongs to the second)."""
    endpoint, _ = remote_endpoints(remote_kind, request)
    if remote_kind == "real":
        key, secret = os.environ["REAL_CUSTOMER_ACCESS_KEY_ID"], os.environ["REAL_CUSTOMER_SECRET_ACCESS_KEY"]
    else:
        key, secret = "customer-key", "customer-secret"
    customer = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )
    dst_bucket = f"snap-{uuid.uuid4().hex[:12]}"
    customer.create_bucket(Bucket=dst_bucket)
    src = tmp_path / "src"
    tree(src, FILES)
    first = s3.new_bucket()
    assert gateway_sync(f"file://{src}", first, cwd=tmp_path)[0] == 0
    storages = {
        "assets-us": {"url": first},
        "snapshots": {
            "url": f"s3://{dst_bucket}/nightly?region=us-east-1&endpoint={endpoint}",
            "access_key_id_env": "SNAP_KEY",
            "secret_access_key_env": "SNAP_SECRET",
        },
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | {
        "GATEWAY_STORAGES": json.dumps(storages),
        "GATEWAY_DEFAULT_STORAGE": "assets-us",
        "GATEWAY_CATALOG_URL": f"sqlite:///{tmp_path}/catalog.db",
        "SNAP_KEY": key,
        "SNAP_SECRET": secret,
    }
    cmd = [
        sys.executable,
        "-m",
        "gateway",
        "sync",
        "assets-us",
        "snapshots",
        "--size-only",
        "--only-show-errors",
    ]
    for expected in (3, 0):  # the cron's first night copies everything, the second nothing
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr
        assert [json.loads(line) for line in proc.stdout.splitlines()][-1]["summary"]["copied"] == expected
    listed = customer.list_objects_v2(Bucket=dst_bucket, Prefix="nightly/")
    assert sorted(o["Key"].removeprefix("nightly/") for o in listed["Contents"]) == sorted(FILES)
