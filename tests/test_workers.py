"""`gateway serve --workers N`: the supervisor keeps N workers on one port, replaces one that dies, stops
the group on SIGTERM, and gives up (non-zero) when workers cannot start. Exact limits and draining with
workers are in test_multiprocess.py and test_shutdown.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.helpers import free_port, running_gateway


def children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out |= {int(c) for c in text}
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def wait_for(predicate: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return int(resp.status) == 200
    except OSError:
        return False


def listening(log: Path) -> int:
    """Workers that have started serving (each logs 'listening' once it accepts connections)."""
    return log.read_text().count('"msg": "listening"')


def test_supervisor_replaces_a_dead_worker_and_stops_the_group(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with running_gateway(tmp_path, {"GATEWAY_AUTO_INIT": "true", "GATEWAY_WORKERS": "2"}) as base:
        supervisor = base.proc.pid
        wait_for(lambda: len(children(supervisor)) == 2 and listening(log) == 2)
        first = children(supervisor)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: victim not in children(supervisor) and len(children(supervisor)) == 2)
        replacement = children(supervisor) - first
        assert len(replacement) == 1
        wait_for(lambda: listening(log) == 3)  # the replacement serves too
        assert all(healthy(f"{base}/healthcheck") for _ in range(10))
        workers = children(supervisor)
        base.proc.send_signal(signal.SIGTERM)
        assert base.proc.wait(timeout=30) == 0
        assert not any(alive(w) for w in workers)


def test_workers_that_cannot_start_stop_the_supervisor(tmp_path: Path) -> None:
    """A worker dying at start (here: the catalog path is a directory) is not restarted forever."""
    (tmp_path / "catalog.db").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | {
        "GATEWAY_PORT": str(free_port()),
        "GATEWAY_WORKERS": "2",
        "GATEWAY_CATALOG_URL": f"sqlite:///{tmp_path}/catalog.db",
        "GATEWAY_STORAGE_URL": f"file://{tmp_path}/blobs",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", "serve"], cwd=tmp_path, env=env, capture_output=True, timeout=60
    )
    assert proc.returncode != 0
    assert b"exited at start" in proc.stderr


def test_workers_setting_is_validated(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    for bad in ("0", "-1", "many", "1000"):
        proc = subprocess.run(
            [sys.executable, "-m", "gateway", "serve", "--workers", bad],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            timeout=60,
        )
        assert proc.returncode == 2 and b"workers" in proc.stderr.lower(), (bad, proc.stderr)
