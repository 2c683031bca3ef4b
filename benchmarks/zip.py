"""Zip benchmark: 1,000-member zip vs one object of the same total size, through one gateway process.

Both downloads go through the same gateway, client and backend in the same run, so the ratio is the cost
of building the archive on the fly. Then a zip of over 4 GiB (the 1,000 members referenced repeatedly)
measures the gateway's peak RSS growth while streaming it.

    python benchmarks/zip.py [--members 1000] [--member-mib 1.1] [--pairs local]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stream import (
    CHUNK,
    bench_credentials,
    body,
    for_each_pair,
    reset_peak,
    rss_kib,
    start_gateway,
    stop,
    wait_http,
)

MiB = 1024 * 1024


async def drain(resp: aiohttp.ClientResponse) -> int:
    got = 0
    async for chunk in resp.content.iter_chunked(CHUNK):
        got += len(chunk)
    return got


async def run(pair: str, members: int, member_size: int, workdir: Path, moto_url: str | None) -> None:
    gw, base = start_gateway(pair, workdir, moto_url, "bench-zip")
    total = members * member_size
    try:
        await wait_http(f"{base}/healthcheck", gw)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as s:
            ids = []
            sem = asyncio.Semaphore(8)

            async def put(i: int) -> None:
                async with sem, s.put(f"{base}/asset/m{i:04}.bin", data=body(member_size)) as r:
                    assert r.status == 201
                    ids.append((await r.json())["asset"]["id"])

            await asyncio.gather(*(put(i) for i in range(members)))
            async with s.put(f"{base}/asset/single.bin", data=body(total)) as r:
                single = (await r.json())["asset"]["id"]

        # A fresh session: the pool's connections idled through the long upload above and the server
        # may have closed them (a POST is not retried on a dead kept-alive connection).
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as s:
            results = {}
            for label in ("single", "zip") * 5:  # interleaved, best of five
                t = time.perf_counter()
                if label == "single":
                    async with s.get(f"{base}/asset/{single}") as r:
                        size = await drain(r)
                else:
                    async with s.post(f"{base}/zip", json={"assets": ids}) as r:
                        size = await drain(r)
                        assert size == int(r.headers["Content-Length"])
                rate = size / (time.perf_counter() - t) / 1e6
                results[label] = max(results.get(label, 0.0), rate)

            repeat = -(-(4 * 1024 * MiB + MiB) // total)  # enough copies to pass 4 GiB
            reset_peak(gw.pid)
            base_rss = rss_kib(gw.pid, "VmRSS")
            t = time.perf_counter()
            async with s.post(f"{base}/zip", json={"assets": ids * repeat}) as r:
                big = await drain(r)
            big_rate = big / (time.perf_counter() - t) / 1e6
            growth = (rss_kib(gw.pid, "VmHWM") - base_rss) / 1024
    finally:
        stop(gw)
    print(
        f"{pair}: {members} members x {member_size / MiB:.2f} MiB = {total / MiB:.0f} MiB | "
        f"single object {results['single']:.0f} MB/s, zip {results['zip']:.0f} MB/s, "
        f"ratio {results['zip'] / results['single']:.2f} | "
        f"zip of {big / 1024**3:.2f} GiB ({members * repeat} members) at {big_rate:.0f} MB/s, "
        f"gateway peak RSS growth {growth:.1f} MiB"
    )


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=1000)
    ap.add_argument("--member-mib", type=float, default=1.1)
    ap.add_argument("--pairs", default="local")
    args = ap.parse_args()
    bench_credentials()

    async def bench(pair: str, workdir: Path, moto_url: str | None) -> None:
        await run(pair, args.members, int(args.member_mib * MiB), workdir, moto_url)

    await for_each_pair(args.pairs, bench)


if __name__ == "__main__":
    asyncio.run(main())
