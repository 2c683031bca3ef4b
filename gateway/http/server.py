"""Running the app, and shutting it down without losing transfers.

aiohttp's own graceful shutdown stops reading from connections the moment it starts, so an upload in
flight can never finish. We drain instead: on SIGTERM/SIGINT stop listening, answer new requests on
kept-alive connections with 503, wait for in-flight requests up to ``shutdown_grace``, and only then let
the runner cancel what is left -- cancellation aborts multipart uploads and removes temp files, so
nothing partial is left behind.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from gateway.config import Settings
from gateway.http.app import create_app
from gateway.http.keys import INFLIGHT

log = logging.getLogger("gateway")
CANCEL_TIMEOUT = 10.0  # after the grace: time for cancelled transfers to abort cleanly


async def run_server(settings: Settings, *, reuse_port: bool = False) -> None:
    """Serve until SIGTERM/SIGINT; ``reuse_port`` when one of several workers (``gateway/workers.py``)."""
    app = create_app(settings)
    # aiohttp's keep-alive timer starts when a connection opens and is not extended by partial data,
    # so it is also the deadline for a request's headers (a slowloris client is cut off after it).
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=CANCEL_TIMEOUT,
        keepalive_timeout=settings.header_timeout,
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse_port or None)
    await site.start()
    log.info("listening", extra={"fields": {"url": f"http://{settings.host}:{settings.port}"}})

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        inflight = app[INFLIGHT]
        inflight.draining = True
        await site.stop()  # no new connections; open ones stay
        log.info(
            "draining", extra={"fields": {"in_flight": inflight.count, "grace_s": settings.shutdown_grace}}
        )
        try:
            await asyncio.wait_for(inflight.idle.wait(), settings.shutdown_grace)
        except TimeoutError:
            log.warning(
                "grace period over, aborting transfers", extra={"fields": {"in_flight": inflight.count}}
            )
    finally:
        await runner.cleanup()
        log.info("stopped")
