"""``gateway sync`` memory and speed: a 2 GiB object against a 1 MiB one (the baseline, same run).

Each sync is its own process; its peak RSS comes from ``wait4`` (``RUSAGE_CHILDREN`` of a fresh
helper, so earlier children do not count). Flat memory means the 2 GiB copy peaks where the 1 MiB one
does: the object is streamed, never held. Run: ``python benchmarks/sync.py [--size-mib 2048]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

MEASURE = r"""
import os, resource, subprocess, sys, time
start = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
took = time.perf_counter() - start
print(took, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
"""


def run_sync(src: Path, dst: Path) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "gateway", "sync", f"file://{src}", f"file://{dst}", "--size-only"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True, check=True, env=env
    )
    took, peak = out.stdout.split()
    return float(took), float(peak)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=2048)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = []
        for label, size in (("baseline 1 MiB", 1 << 20), (f"{args.size_mib} MiB", args.size_mib << 20)):
            src = root / label.replace(" ", "_") / "src"
            src.mkdir(parents=True)
            with (src / "object.bin").open("wb") as f:  # written, not sparse: reads hit real pages
                block = os.urandom(1 << 20)
                for _ in range(size >> 20):
                    f.write(block)
            took, peak = run_sync(src, src.parent / "dst")
            assert (src.parent / "dst" / "object.bin").stat().st_size == size
            rows.append((label, size, took, peak))
        for label, size, took, peak in rows:
            rate = size / took / 2**20
            print(f"{label:>15}: {took:6.2f} s  {rate:8.1f} MiB/s  peak RSS {peak:6.1f} MiB")
        print(f"peak RSS ratio (big / baseline): x{rows[1][3] / rows[0][3]:.2f}")


if __name__ == "__main__":
    main()
