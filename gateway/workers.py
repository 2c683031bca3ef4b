"""``gateway serve --workers N``: N server processes on one port, supervised by the one you started.

Why processes: one Python event loop uses one core, and small requests are CPU-bound in the framework;
two cores serve nearly twice the requests only with two loops. Why ``SO_REUSEPORT`` rather than one
shared listening socket: the kernel spreads new connections evenly over the workers' sockets, where a
shared accept queue lets whichever loop wakes first take a burst of them.

- The supervisor binds the address first, with ``SO_REUSEPORT`` and without listening: port 0 resolves
  once, the port stays reserved while workers restart, and a bound socket that never listens receives no
  connections. Each worker binds the same address and listens (``server.run_server(reuse_port=True)``).
- Metrics: workers write prometheus_client's multiprocess files into a directory the supervisor creates
  (``PROMETHEUS_MULTIPROC_DIR``) and removes; any worker's ``/metrics`` sums every worker's counters, and
  the in-flight gauge counts only live processes.
- Shutdown: SIGTERM or SIGINT to the supervisor is forwarded to every worker; each drains its own
  transfers (``server.py``) and the supervisor exits when all have. A worker that dies on its own is
  replaced; one that *fails* (a non-zero exit, not a signal) within ``EARLY_EXIT`` seconds of starting
  (a bad config, an unusable catalog) stops the whole group with its exit status instead of restarting
  forever.

Background work (retention sweeps, expired uploads) runs in every worker: it was built for several
processes over one catalog already (leases and conditional writes), so nothing is elected.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from types import FrameType

from gateway.config import Settings

log = logging.getLogger("gateway")
EARLY_EXIT = 5.0  # seconds: a worker gone this soon after starting will not do better if restarted
WORKER_FLAG = "--worker"


def bind_reserved(host: str, port: int) -> socket.socket:
    """A bound, non-listening SO_REUSEPORT socket holding the address for the workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class Supervisor:
    def __init__(self, settings: Settings, count: int) -> None:
        self.settings = settings
        self.count = count
        self.procs: dict[int, tuple[int, subprocess.Popen[bytes], float]] = {}  # pid -> (slot, proc, start)
        self.stopping = False
        self.metrics_dir = tempfile.mkdtemp(prefix="gateway-metrics-")
        self.port = 0

    def _spawn(self, slot: int) -> None:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir, "GATEWAY_WORKER_ID": str(slot)}
        cmd = [sys.executable, "-m", "gateway", "serve", "--port", str(self.port), WORKER_FLAG]
        proc = subprocess.Popen(cmd, env=env)  # noqa: S603 (our own interpreter and module)
        self.procs[proc.pid] = (slot, proc, time.monotonic())

    def _forward(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True
        for _, proc, _ in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    def run(self) -> int:
        reserved = bind_reserved(self.settings.host, self.settings.port)
        self.port = reserved.getsockname()[1]
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._forward)
        status = 0
        try:
            for slot in range(self.count):
                if self.stopping:  # a signal during start-up: start no more
                    break
                self._spawn(slot)
            log.info(
                "workers started",
                extra={"fields": {"workers": self.count, "pids": sorted(self.procs), "port": self.port}},
            )
            while self.procs:
                try:
                    pid, wait_status = os.wait()
                except ChildProcessError:
                    break
                if pid not in self.procs:
                    continue
                slot, _, started = self.procs.pop(pid)
                code = os.waitstatus_to_exitcode(wait_status)
                _mark_dead(pid, self.metrics_dir)
                if self.stopping:
                    continue
                if code > 0 and time.monotonic() - started < EARLY_EXIT:
                    log.error("worker %d exited at start (status %d); stopping", slot, code)
                    status = code
                    self._forward(signal.SIGTERM, None)
                    continue
                log.warning("worker %d (pid %d) exited with status %d; replacing it", slot, pid, code)
                self._spawn(slot)
        finally:
            reserved.close()
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
        return status


def _mark_dead(pid: int, metrics_dir: str) -> None:
    """Drop a gone worker's live gauges from the aggregate (its counters stay: they happened)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, metrics_dir)  # type: ignore[no-untyped-call]
