"""Pillow vs libvips (pyvips) making a 256 px thumbnail of a 24-megapixel JPEG: time and peak memory.

Each library runs in its own fresh process (peak RSS is per process), on the same file, the same
number of times; the report prints both and their ratio. This is how the thumbnail library was chosen
(docs/media.md): run `python benchmarks/thumbnails.py`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

WORKER = r"""
import io, json, resource, sys, time
lib, path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
for _ in range(runs):
    start = time.perf_counter()
    if lib == "pillow":
        from PIL import Image, ImageOps
        with Image.open(path) as im:
            im.draft("RGB", (256, 256))
            im = ImageOps.exif_transpose(im)
            im.thumbnail((256, 256))
            out = io.BytesIO()
            im.save(out, "WEBP", quality=80)
    elif lib == "pillow-nodraft":
        from PIL import Image, ImageOps
        with Image.open(path) as im:
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
print(json.dumps({"median_s": sorted(times)[len(times) // 2], "peak_rss_mib": peak / 1024, "import_rss_mib": base / 1024}))
"""


def make_jpeg(path: Path, width: int, height: int) -> None:
    """In a child process: Linux keeps a parent's peak RSS across fork+exec, so this one must stay small."""
    code = (
        "import sys; from PIL import Image; "
        "Image.effect_noise((int(sys.argv[2]), int(sys.argv[3])), 64).convert('RGB')"
        ".save(sys.argv[1], 'JPEG', quality=90)"
    )
    subprocess.run([sys.executable, "-c", code, str(path), str(width), str(height)], check=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "24mp.jpg"
        make_jpeg(src, 6000, 4000)
        print(f"source: 6000x4000 JPEG, {src.stat().st_size / 2**20:.1f} MiB, {args.runs} runs each")
        results = {}
        for lib in ("pillow", "pillow-nodraft", "pyvips"):
            if lib == "pyvips" and importlib.util.find_spec("pyvips") is None:
                print("pyvips: not installed (pip install pyvips pyvips-binary) -- skipped")
                return
            out = subprocess.run(
                [sys.executable, "-c", WORKER, lib, str(src), str(args.runs)],
                capture_output=True,
                text=True,
                check=True,
            )
            results[lib] = json.loads(out.stdout)
            r = results[lib]
            print(f"{lib:15} median {r['median_s'] * 1000:7.1f} ms   peak RSS {r['peak_rss_mib']:6.1f} MiB")
        p, v = results["pillow"], results["pyvips"]
        print(
            f"pyvips / pillow(draft): time x{v['median_s'] / p['median_s']:.2f}, peak RSS x{v['peak_rss_mib'] / p['peak_rss_mib']:.2f}"
        )


if __name__ == "__main__":
    main()
