"""Load: >= 500 concurrent connections of mixed uploads and downloads against one gateway process.

Bounded in time (``--seconds``, default 60) and connections (``--connections``, default 500). Each
connection loops: 70 % download a random seeded asset (sometimes a Range, sometimes via a share link),
30 % upload a 64-256 KiB body. Reports requests, errors (anything but the expected status), p50/p99
latency per kind, and the gateway's peak RSS.

    python benchmarks/load.py [--connections 500] [--seconds 60] [--pairs local,moto]
    make bench-real   # pair "real": Ceph radosgw + DynamoDB Local, inside scripts/real-lane.sh
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import statistics
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stream import bench_credentials, for_each_pair, rss_kib, start_gateway, stop, wait_http

KiB = 1024


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


async def run(pair: str, connections: int, seconds: float, workdir: Path, moto_url: str | None) -> None:
    gw, base = start_gateway(pair, workdir, moto_url, "load", GATEWAY_LOG_LEVEL="WARNING")
    lat: dict[str, list[float]] = {"download": [], "range": [], "token": [], "upload": []}
    errors: dict[str, int] = {}
    peak = 0
    try:
        await wait_http(f"{base}/healthcheck", gw)
        conn = aiohttp.TCPConnector(limit=0, force_close=False)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(connector=conn, timeout=timeout) as s:
            seeded = []
            for i in range(50):
                async with s.put(
                    f"{base}/asset/seed{i}.bin", data=os.urandom(256 * KiB), params={"token": "1"}
                ) as r:
                    body = await r.json()
                    seeded.append((body["asset"]["id"], body["token"]["token"]))
            deadline = time.monotonic() + seconds
            rng = random.Random(42)
            payloads = [os.urandom(n * KiB) for n in (64, 128, 256)]

            async def worker() -> None:
                # one session per worker = one connection each: >= `connections` concurrent sockets
                async with aiohttp.ClientSession(timeout=timeout) as own:
                    while time.monotonic() < deadline:
                        roll = rng.random()
                        aid, tok = rng.choice(seeded)
                        t = time.perf_counter()
                        try:
                            if roll < 0.3:
                                kind, want = "upload", 201
                                async with own.put(f"{base}/asset/u.bin", data=rng.choice(payloads)) as r:
                                    await r.read()
                            elif roll < 0.5:
                                kind, want = "range", 206
                                async with own.get(
                                    f"{base}/asset/{aid}", headers={"Range": "bytes=1000-9999"}
                                ) as r:
                                    await r.read()
                            elif roll < 0.6:
                                kind, want = "token", 200
                                async with own.get(f"{base}/asset-token/{tok}") as r:
                                    await r.read()
                            else:
                                kind, want = "download", 200
                                async with own.get(f"{base}/asset/{aid}") as r:
                                    await r.read()
                            if r.status != want:
                                errors[f"{kind}:{r.status}"] = errors.get(f"{kind}:{r.status}", 0) + 1
                            else:
                                lat[kind].append(time.perf_counter() - t)
                        except (aiohttp.ClientError, TimeoutError) as exc:
                            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1

            async def sample() -> None:
                nonlocal peak
                while time.monotonic() < deadline:
                    peak = max(peak, rss_kib(gw.pid, "VmRSS"))
                    await asyncio.sleep(0.5)

            started = time.monotonic()
            await asyncio.gather(sample(), *(worker() for _ in range(connections)))
            elapsed = time.monotonic() - started
    finally:
        stop(gw, 60)
    total = sum(len(v) for v in lat.values())
    print(f"{pair}: {connections} connections for {elapsed:.0f} s: {total} ok requests "
          f"({total / elapsed:.0f}/s), errors {sum(errors.values())} {errors or ''}, "
          f"gateway peak RSS {peak / 1024:.0f} MiB")  # fmt: skip
    for kind, values in lat.items():
        if values:
            p50, p99, mean = pct(values, 0.5), pct(values, 0.99), statistics.fmean(values) * 1000
            print(f"  {kind:8} n={len(values):6}  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  mean {mean:7.1f} ms")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--pairs", default="local")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192)), hard))  # inherited by the gateway
    bench_credentials()

    async def bench(pair: str, workdir: Path, moto_url: str | None) -> None:
        await run(pair, args.connections, args.seconds, workdir, moto_url)

    await for_each_pair(args.pairs, bench)


if __name__ == "__main__":
    asyncio.run(main())
