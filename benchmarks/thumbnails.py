"""Thumbnails of a 24-megapixel JPEG: Pillow vs libvips, then the gateway itself.

1. Library choice: each library makes a 256 px WebP of the same 6000x4000 JPEG in its own fresh process
   (peak RSS is per process), five times; the report prints both and their ratio. This is how Pillow
   was chosen (docs/media.md).
2. The gateway: a served gateway (embedded backends) receives the JPEG, then renders a 512 px thumbnail
   on request; printed: the request's time, and the server's peak RSS (VmHWM) before and after, next
   to the same figures for a plain download of the same file (the baseline in the same run).

Run: ``python benchmarks/thumbnails.py`` (pyvips is optional: pip install pyvips pyvips-binary).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

WORKER = r"""
import io, json, resource, sys, time
lib, path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
times = []
for _ in range(runs):
    start = time.perf_counter()
    if lib.startswith("pillow"):
        from PIL import Image, ImageOps
        with Image.open(path) as im:
            if lib == "pillow":
                im.draft("RGB", (256, 256))
            im = ImageOps.exif_transpose(im)
            im.thumbnail((256, 256))
            out = io.BytesIO()
            im.save(out, "WEBP", quality=80)
    else:
        import pyvips
        im = pyvips.Image.thumbnail(path, 256, height=256)
        im.webpsave_buffer(Q=80)
    times.append(time.perf_counter() - start)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"median_s": sorted(times)[len(times) // 2], "peak_rss_mib": peak / 1024}))
"""


def make_jpeg(path: Path, width: int, height: int) -> None:
    """In a child process: Linux keeps a parent's peak RSS across fork+exec, so this one must stay small."""
    code = (
        "import sys; from PIL import Image; "
        "Image.effect_noise((int(sys.argv[2]), int(sys.argv[3])), 64).convert('RGB')"
        ".save(sys.argv[1], 'JPEG', quality=90)"
    )
    subprocess.run([sys.executable, "-c", code, str(path), str(width), str(height)], check=True)


def libraries(src: Path, runs: int) -> None:
    results = {}
    for lib in ("pillow", "pillow-nodraft", "pyvips"):
        if lib == "pyvips" and importlib.util.find_spec("pyvips") is None:
            print("pyvips: not installed (pip install pyvips pyvips-binary) -- skipped")
            return
        out = subprocess.run(
            [sys.executable, "-c", WORKER, lib, str(src), str(runs)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = results[lib] = json.loads(out.stdout)
        print(f"{lib:15} median {r['median_s'] * 1000:7.1f} ms   peak RSS {r['peak_rss_mib']:6.1f} MiB")
    p, v = results["pillow"], results["pyvips"]
    ratio_t, ratio_m = v["median_s"] / p["median_s"], v["peak_rss_mib"] / p["peak_rss_mib"]
    print(f"pyvips / pillow(draft): time x{ratio_t:.2f}, peak RSS x{ratio_m:.2f}")


def hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def gateway(src: Path, tmp: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.helpers import running_gateway

    env = {
        "GATEWAY_STORAGE_URL": f"file://{tmp}/blobs",
        "GATEWAY_CATALOG_URL": f"sqlite:///{tmp}/catalog.db",
        "GATEWAY_THUMBNAIL_EAGER": "false",
    }
    with running_gateway(tmp, env) as base:
        pid = base.proc.pid
        req = urllib.request.Request(f"{base}/asset/big.jpg", data=src.read_bytes(), method="PUT")
        with urllib.request.urlopen(req) as resp:
            aid = json.loads(resp.read())["asset"]["id"]
        rows = []
        for what, url in (
            ("download (baseline)", f"/asset/{aid}"),
            ("thumbnail 512 px", f"/asset/{aid}/thumbnail?w=512"),
        ):
            before = hwm_mib(pid)
            start = time.perf_counter()
            with urllib.request.urlopen(f"{base}{url}") as resp:
                size = len(resp.read())
            rows.append((what, time.perf_counter() - start, before, hwm_mib(pid), size))
        for what, took, before, after, size in rows:
            peak = f"server peak RSS {before:6.1f} -> {after:6.1f} MiB"
            print(f"{what:20} {took * 1000:7.1f} ms  {size:>9} B   {peak}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "24mp.jpg"
        make_jpeg(src, 6000, 4000)
        print(f"source: 6000x4000 JPEG, {src.stat().st_size / 2**20:.1f} MiB, {args.runs} runs each")
        libraries(src, args.runs)
        os.makedirs(Path(tmp) / "gw", exist_ok=True)
        gateway(src, Path(tmp) / "gw")


if __name__ == "__main__":
    main()
