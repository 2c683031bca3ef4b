"""A real clamd (Debian's clamav-daemon) for tests, started offline on a database of one signature.

freshclam cannot reach the internet here, and clamd starts on any database directory: this one holds a
single ``.hdb`` line (md5:size:name) matching the EICAR test string, so the test file is detected by a
real scanner through the real INSTREAM protocol, and everything else is clean.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"zPING\0")
            return s.recv(16).startswith(b"PONG")
    except OSError:
        return False


@contextmanager
def running_clamd(workdir: Path, port: int, *, stream_max: str = "1M") -> Iterator[str]:
    """clamd on 127.0.0.1:``port``; yields its address (tcp://…); stopped afterwards."""
    binary = shutil.which("clamd") or "/usr/sbin/clamd"
    db = workdir / "clamdb"
    db.mkdir(parents=True, exist_ok=True)
    (db / "eicar.hdb").write_text(f"{hashlib.md5(EICAR).hexdigest()}:{len(EICAR)}:Eicar-Test-Signature\n")
    conf = workdir / "clamd.conf"
    conf.write_text(
        "Foreground yes\n"
        f"TCPSocket {port}\nTCPAddr 127.0.0.1\n"
        f"DatabaseDirectory {db}\nLogFile {workdir / 'clamd.log'}\n"
        f"StreamMaxLength {stream_max}\n"
    )
    log = (workdir / "clamd.out").open("wb")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while not _answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((workdir / "clamd.out").read_text(errors="replace")[-2000:])
            time.sleep(0.1)
        yield f"tcp://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
