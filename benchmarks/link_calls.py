"""Share-link downloads against S3 + DynamoDB: catalog calls per request, and latency under load.

For each pair (moto, or the real lane's Ceph radosgw + DynamoDB Local) one gateway process serves an
unlimited link to a 4 KiB asset under wrk (``--connections``, ``--seconds``). The catalog calls are
counted by the gateway itself (``gateway_backend_call_duration_seconds_count{backend="catalog"}`` per
operation, from /metrics before and after), so the figure is what the code does, not what we think it does.

    python benchmarks/link_calls.py [--pairs moto] [--connections 16] [--seconds 10]
    make bench-real   # adds the pair "real" inside scripts/real-lane.sh
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections import Counter
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent))
from per_request import wrk
from stream import bench_credentials, for_each_pair, start_gateway, stop, wait_http


async def catalog_calls(http: aiohttp.ClientSession, base: str) -> Counter[str]:
    async with http.get(f"{base}/metrics") as resp:
        text = await resp.text()
    out: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "gateway_backend_call_duration_seconds_count"
                and sample.labels.get("backend") == "catalog"
            ):
                out[sample.labels["op"]] += int(sample.value)
    return out


async def run(pair: str, workdir: Path, moto_url: str | None, connections: int, seconds: int) -> None:
    gw, base = start_gateway(pair, workdir, moto_url, "bench-links", GATEWAY_LOG_LEVEL="WARNING")
    try:
        await wait_http(f"{base}/healthcheck", gw)
        async with aiohttp.ClientSession() as http:
            async with http.put(f"{base}/asset/l.bin", data=os.urandom(4096), params={"token": "1"}) as r:
                secret = (await r.json())["token"]["token"]
            before = await catalog_calls(http, base)
            result = wrk(f"{base}/asset-token/{secret}", seconds, connections)
            await asyncio.sleep(0.2)  # the last history batch
            after = await catalog_calls(http, base)
    finally:
        stop(gw)
    requests = result["rps"] * seconds
    calls = {op: (after[op] - before[op]) / requests for op in after if after[op] != before[op]}
    total = sum(calls.values())
    detail = ", ".join(f"{op} {n:.2f}" for op, n in sorted(calls.items(), key=lambda kv: -kv[1]))
    print(
        f"{pair}: {result['rps']:.0f} req/s, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
        f"errors {result['errors']:.0f} | catalog calls per request {total:.2f} ({detail})"
    )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", default="moto")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    bench_credentials()

    async def bench(pair: str, workdir: Path, moto_url: str | None) -> None:
        await run(pair, workdir, moto_url, args.connections, args.seconds)

    await for_each_pair(args.pairs, bench)


if __name__ == "__main__":
    asyncio.run(main())
