"""Downloads from an envelope-encrypted storage next to plain ones (same gateway, same run).

One served gateway with two storages on the local disk -- ``plain`` and ``sealed`` (encryption =
envelope, a local KEK) -- receives the same random file into each (profile purposes pick the storage),
then both are downloaded several times; printed: MiB/s of each and their ratio. Run:
``python benchmarks/encryption.py [--size-mib 256]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.helpers import running_gateway

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "kek").write_bytes(os.urandom(32))
        storages = {
            "plain": {"url": f"file://{root}/plain"},
            "sealed": {
                "url": f"file://{root}/sealed",
                "encryption": "envelope",
                "kek": f"local:{root / 'kek'}",
            },
        }
        profiles = {"default": {"purposes": {"general": "plain", "secret": "sealed"}}}
        env = {
            "GATEWAY_STORAGES": json.dumps(storages),
            "GATEWAY_PROFILES": json.dumps(profiles),
            "GATEWAY_DEFAULT_STORAGE": "plain",
            "GATEWAY_CATALOG_URL": f"sqlite:///{root}/catalog.db",
        }
        data = os.urandom(args.size_mib << 20)
        with running_gateway(root, env) as base:
            ids = {}
            for purpose in ("general", "secret"):
                req = urllib.request.Request(f"{base}/asset/f.bin?purpose={purpose}", data=data, method="PUT")
                with urllib.request.urlopen(req) as resp:
                    ids[purpose] = json.loads(resp.read())["asset"]["id"]
            rates = {}
            for purpose, aid in ids.items():
                best = 0.0
                for _ in range(args.runs):
                    start = time.perf_counter()
                    with urllib.request.urlopen(f"{base}/asset/{aid}") as resp:
                        got = 0
                        while chunk := resp.read(1 << 20):
                            got += len(chunk)
                    assert got == len(data)
                    best = max(best, got / (time.perf_counter() - start) / 2**20)
                rates[purpose] = best
        print(
            f"plain download     {rates['general']:8.1f} MiB/s   ({args.size_mib} MiB, best of {args.runs})"
        )
        print(f"encrypted download {rates['secret']:8.1f} MiB/s")
        print(f"encrypted / plain: x{rates['secret'] / rates['general']:.2f}")


if __name__ == "__main__":
    main()
