"""The pages in a real Chromium (Debian's, driven by Playwright; no browser is ever downloaded).

What a person does: pick files, watch progress reach 100 %, copy the link, open it in another browser,
download, and get the same bytes; type a password; come back to an upload a dropped network or a closed
tab interrupted; open a link that has expired or been used up; see a hostile file name as text.
Each page is photographed; ``PAGE_SCREENSHOTS=docs/screenshots`` (``make screenshots``) keeps them.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import shutil
import time
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import segno
from aiohttp.test_utils import TestServer

from gateway.config import Settings
from gateway.http.app import create_app
from gateway.http.keys import SERVICE
from tests.conftest import backend_settings, remote_endpoints
from tests.tcpproxy import TcpProxy

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")
# Flags for a machine with no internet: nothing in the background reaches for Google's hosts.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
XSS_NAME = "<img src=x onerror=alert(1)>.txt"


@pytest.fixture(params=["local", "moto"])
def page_kind(request: pytest.FixtureRequest) -> str:
    """Backends for the pages: the embedded default and S3 + DynamoDB on moto (pages are not what the
    real lane is for, so this is not ``backend_kind``)."""
    return str(request.param)


@pytest.fixture
def page_settings(page_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    endpoints = remote_endpoints(page_kind, request) if page_kind != "local" else None
    # Links are built from the Host the browser used (the proxy's, in the fault tests).
    return backend_settings(page_kind, tmp_path, endpoints, public_base_url=None)


@pytest.fixture
async def server(page_settings: Settings) -> AsyncIterator[TestServer]:
    srv = TestServer(create_app(page_settings), host="127.0.0.1")
    await srv.start_server()
    yield srv
    await srv.close()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        await b.close()


@pytest.fixture
def shots(tmp_path: Path) -> Any:
    target = Path(os.environ.get("PAGE_SCREENSHOTS") or tmp_path / "shots")
    target.mkdir(parents=True, exist_ok=True)

    async def shoot(page: Any, name: str) -> None:
        path = target / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 2000  # a rendered page, not an empty frame

    return shoot


def url_of(srv: TestServer, path: str = "/") -> str:
    return f"http://127.0.0.1:{srv.port}{path}"


async def new_page(browser: Any, **kw: Any) -> Any:
    context = await browser.new_context(accept_downloads=True, **kw)
    page = await context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    page.dialogs = dialogs
    return page


async def upload_through_page(page: Any, base: str, files: list[dict[str, Any]], **opts: str) -> list[str]:
    await page.goto(base + "/")
    await page.set_input_files("#files", files)
    if "max_downloads" in opts:
        await page.fill("#max-downloads", opts["max_downloads"])
    if "password" in opts:
        await page.fill("#password", opts["password"])
    await page.click("#start")
    await page.wait_for_selector("#status.ok", timeout=60_000)
    assert await page.text_content("#total-percent") == "100 %"
    for bar in await page.query_selector_all("#file-list progress"):
        assert await bar.evaluate("b => b.value") == 100
    return [await f.input_value() for f in await page.query_selector_all(".share-url")]


async def labelled(page: Any) -> list[str]:
    """Form controls without a label or an accessible name (should be none)."""
    return list(
        await page.evaluate(
            """() => [...document.querySelectorAll('input:not([type=hidden]), select, button, textarea')]
                .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                             && !(e.tagName === 'BUTTON' && e.textContent.trim()))
                .map(e => e.id || e.outerHTML)"""
        )
    )


async def test_upload_two_files_then_recipient_downloads_the_zip(
    server: TestServer, browser: Any, shots: Any, tmp_path: Path
) -> None:
    first = os.urandom(9 * 1024 * 1024 + 123)  # more than one 8 MiB PATCH
    second = "ünïcødé, and <b>markup</b>\n".encode() * 100
    page = await new_page(browser)
    await page.goto(url_of(server))
    assert await labelled(page) == []
    await shots(page, "upload-page")
    links = await upload_through_page(
        page,
        url_of(server).rstrip("/"),
        [
            {"name": "big.bin", "mimeType": "application/octet-stream", "buffer": first},
            {"name": XSS_NAME, "mimeType": "text/plain", "buffer": second},
        ],
        max_downloads="2",
    )
    assert len(links) == 1 and "/s/" in links[0]
    names = [await n.text_content() for n in await page.query_selector_all("#file-list .file-name")]
    assert names == ["big.bin", XSS_NAME]  # the hostile name is text, not an element
    assert await page.query_selector("#file-list img") is None
    # The QR on the page is the link's: the same SVG segno draws for that URL, and the image loaded.
    qr = await page.query_selector("#links img.qr")
    assert await qr.evaluate("i => i.complete && i.naturalWidth > 0")
    svg = await page.evaluate("u => fetch(u).then(r => r.text())", await qr.get_attribute("src"))
    expected = io.BytesIO()
    segno.make(links[0], error="m").save(expected, kind="svg", scale=6, border=2, title="x")
    assert _qr_path(svg) == _qr_path(expected.getvalue().decode())
    await shots(page, "upload-done")

    # A recipient in a fresh browser (no storage shared with the uploader).
    recipient = await new_page(browser)
    resp = await recipient.goto(links[0])
    assert resp.status == 200
    members = [await m.text_content() for m in await recipient.query_selector_all("#members .member-name")]
    assert members == ["big.bin", XSS_NAME]
    assert (await recipient.text_content("#downloads-left")).strip() == "2"
    await shots(recipient, "share-bundle")
    async with recipient.expect_download() as info:
        await recipient.click("#download")
    download = await info.value
    saved = tmp_path / "saved.zip"
    await download.save_as(saved)
    with zipfile.ZipFile(saved) as z:
        assert z.namelist() == ["big.bin", XSS_NAME]
        assert z.read("big.bin") == first and z.read(XSS_NAME) == second
    await recipient.reload()
    assert (await recipient.text_content("#downloads-left")).strip() == "1"
    assert page.dialogs == [] and recipient.dialogs == []


def _qr_path(svg: str) -> str:
    start = svg.index(" d=") + 4
    return svg[start : svg.index('"', start)]


async def test_single_file_share_page_downloads_same_bytes_and_works_without_javascript(
    server: TestServer, browser: Any, shots: Any, tmp_path: Path
) -> None:
    body = os.urandom(300_000)
    page = await new_page(browser)
    (link,) = await upload_through_page(
        page, url_of(server).rstrip("/"), [{"name": "photo.raw", "mimeType": "", "buffer": body}]
    )
    nojs = await new_page(browser, java_script_enabled=False)
    await nojs.goto(link)
    assert await nojs.text_content("#file-name") == "photo.raw"
    assert "expires in" in (await nojs.text_content("#expires"))
    await shots(nojs, "share-file")
    async with nojs.expect_download() as info:
        await nojs.click("#download")
    path = await (await info.value).path()
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == hashlib.sha256(body).hexdigest()

    phone = await new_page(browser, viewport={"width": 390, "height": 800}, is_mobile=True)
    await phone.goto(link)
    assert await phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await shots(phone, "share-phone")


async def test_password_flow(server: TestServer, browser: Any, shots: Any, tmp_path: Path) -> None:
    body = b"for your eyes only\n" * 1000
    page = await new_page(browser)
    (link,) = await upload_through_page(
        page,
        url_of(server).rstrip("/"),
        [{"name": "secret.txt", "mimeType": "text/plain", "buffer": body}],
        password="correct horse",
    )
    recipient = await new_page(browser)
    resp = await recipient.goto(link)
    assert resp.status == 200
    assert await recipient.query_selector("#file-name") is None  # nothing shown before the password
    await shots(recipient, "share-password")
    await recipient.fill("#password", "wrong")
    async with recipient.expect_navigation() as nav:
        await recipient.click("button[type=submit]")
    assert (await nav.value).status == 401
    assert "Wrong password" in await recipient.text_content("#password-error")
    await recipient.fill("#password", "correct horse")
    await recipient.click("button[type=submit]")
    await recipient.wait_for_selector("#file-name")
    assert await recipient.text_content("#file-name") == "secret.txt"
    async with recipient.expect_download() as info:
        await recipient.click("#download")
    assert Path(await (await info.value).path()).read_bytes() == body


async def test_dropped_connection_resumes_and_closed_tab_resumes(
    server: TestServer, browser: Any, tmp_path: Path
) -> None:
    body = os.urandom(12 * 1024 * 1024)
    async with TcpProxy(server.port, cut_after=3 * 1024 * 1024) as proxy:
        page = await new_page(browser)
        (link,) = await upload_through_page(
            page, proxy.url, [{"name": "cut.bin", "mimeType": "application/octet-stream", "buffer": body}]
        )
        assert proxy.cuts == 1
        requests = proxy.requests()
        creations = [r for r in requests if r[0] == "POST" and r[1] == "/files/"]
        assert len(creations) == 1 and any(m == "HEAD" for m, _ in requests)
        # The bytes that arrived before the cut were kept: the upload went on from there.
        assert int(await page.get_attribute("#file-list li", "data-resumed-from")) > 0
        assert proxy.upstream_bytes < 3 * len(body)
        token = link.rsplit("/", 1)[1]
        assert await _fetch(page, f"{proxy.url}/asset-token/{token}") == hashlib.sha256(body).hexdigest()

    # A closed tab: the upload stops half-way; a new tab picking the same file continues it.
    path = tmp_path / "tab.bin"
    path.write_bytes(os.urandom(20 * 1024 * 1024))
    async with TcpProxy(server.port, rate=8 * 1024 * 1024) as slow:
        context = await browser.new_context(accept_downloads=True)
        first = await context.new_page()
        await first.goto(slow.url + "/")
        await first.set_input_files("#files", str(path))
        await first.click("#start")
        deadline = time.monotonic() + 60
        while await first.eval_on_selector("#file-list progress", "p => p.value") < 45:
            assert time.monotonic() < deadline, "the upload did not get half-way"
            await asyncio.sleep(0.1)
        await first.close()
        second = await context.new_page()
        await second.goto(slow.url + "/")
        await second.set_input_files("#files", str(path))
        await second.click("#start")
        await second.wait_for_selector("#status.ok", timeout=60_000)
        assert [r for r in slow.requests() if r[0] == "POST" and r[1] == "/files/"] == [("POST", "/files/")]
        assert int(await second.get_attribute("#file-list li", "data-resumed-from")) > 0
        assert slow.upstream_bytes < 2 * path.stat().st_size
        (link,) = [await f.input_value() for f in await second.query_selector_all(".share-url")]
        digest = await _fetch(second, f"{slow.url}/asset-token/{link.rsplit('/', 1)[1]}")
        assert digest == hashlib.sha256(path.read_bytes()).hexdigest()


async def _fetch(page: Any, url: str) -> str:
    """sha256 (hex) of what the browser gets from ``url``."""
    return str(
        await page.evaluate(
            """async u => { const r = await fetch(u); const b = await r.arrayBuffer();
               const d = await crypto.subtle.digest('SHA-256', b);
               return [...new Uint8Array(d)].map(x => x.toString(16).padStart(2, '0')).join(''); }""",
            url,
        )
    )


async def test_expired_used_up_and_unknown_links_show_friendly_pages(
    server: TestServer, browser: Any, shots: Any
) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        up = await http.put(url_of(server, "/asset/once.txt?token=1&max_downloads=1"), data=b"once")
        once = (await up.json())["token"]["token"]
        up = await http.put(url_of(server, "/asset/later.txt?token=1&expiry=2h"), data=b"later")
        later = (await up.json())["token"]["token"]
        assert (await http.get(url_of(server, f"/asset-token/{once}"))).status == 200

    page = await new_page(browser)
    resp = await page.goto(url_of(server, f"/s/{once}"))
    assert resp.status == 410
    assert await page.text_content("#error-title") == "This link has been used up"
    await shots(page, "link-used-up")

    svc = server.app[SERVICE]
    svc.backends.clock = lambda: time.time() + 3 * 3600
    try:
        resp = await page.goto(url_of(server, f"/s/{later}"))
        assert resp.status == 410
        assert await page.text_content("#error-title") == "This link has expired"
        await shots(page, "link-expired")
    finally:
        svc.backends.clock = time.time

    resp = await page.goto(url_of(server, "/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
    assert resp.status == 404
    assert await page.text_content("#error-title") == "This link does not exist"


async def test_hostile_name_on_share_page_is_text(server: TestServer, browser: Any) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        from urllib.parse import quote

        up = await http.put(url_of(server, f"/asset/{quote(XSS_NAME)}?token=1"), data=b"x")
        token = (await up.json())["token"]["token"]
    page = await new_page(browser)
    await page.goto(url_of(server, f"/s/{token}"))
    assert await page.text_content("#file-name") == XSS_NAME
    assert await page.query_selector("main img:not(#qr)") is None
    assert await page.title() == XSS_NAME
    assert page.dialogs == []


async def test_upload_link_page_uploads_to_the_links_owner(
    server: TestServer, browser: Any, shots: Any
) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        made = await http.post(
            url_of(server, "/upload-links"),
            json={"max_uploads": 2, "label": "Invoices <Q3>", "share": {"expiry": "1d", "max_downloads": 1}},
        )
        link = (await made.json())["upload_link"]
    page = await new_page(browser)
    await page.goto(link["url"])
    assert await page.text_content("h1") == "Invoices <Q3>"
    assert "2 uploads left" in await page.text_content("#link-limits")
    await shots(page, "upload-link-page")
    pdf = {"name": "inv.pdf", "mimeType": "application/pdf", "buffer": b"%PDF"}
    await page.set_input_files("#files", [pdf])
    await page.click("#start")
    await page.wait_for_selector("#status.ok", timeout=30_000)
    (share,) = [await f.input_value() for f in await page.query_selector_all(".share-url")]
    assert await _fetch(page, share.replace("/s/", "/asset-token/")) == hashlib.sha256(b"%PDF").hexdigest()
    await page.reload()
    assert "1 upload left" in await page.text_content("#link-limits")


async def test_secured_mode_page_asks_for_an_api_key(
    page_kind: str, tmp_path: Path, request: pytest.FixtureRequest, browser: Any
) -> None:
    from gateway.auth import hash_api_key

    endpoints = remote_endpoints(page_kind, request) if page_kind != "local" else None
    settings = backend_settings(
        page_kind, tmp_path, endpoints, public_base_url=None, api_keys=[f"dana:{hash_api_key('dana-key-42')}"]
    )
    srv = TestServer(create_app(settings), host="127.0.0.1")
    await srv.start_server()
    try:
        page = await new_page(browser)
        await page.goto(url_of(srv))
        file = {"name": "k.txt", "mimeType": "text/plain", "buffer": b"keyed"}
        await page.set_input_files("#files", [file])
        await page.click("#start")
        assert "API key" in await page.text_content("#status")  # nothing sent without one
        await page.fill("#api-key", "not-the-key")
        await page.click("#start")
        await page.wait_for_selector("#status.error", timeout=30_000)
        assert "API key was refused" in await page.text_content("#status")
        await page.fill("#api-key", "dana-key-42")
        await page.click("#start")
        await page.wait_for_selector("#status.ok", timeout=30_000)
        assert "dana-key-42" not in page.url
        assert await page.evaluate("sessionStorage.getItem('gateway-api-key')") == "dana-key-42"
        assert await page.evaluate("localStorage.getItem('gateway-api-key')") is None
        (link,) = [await f.input_value() for f in await page.query_selector_all(".share-url")]
        digest = await _fetch(page, link.replace("/s/", "/asset-token/"))
        assert digest == hashlib.sha256(b"keyed").hexdigest()
    finally:
        await srv.close()
