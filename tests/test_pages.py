"""The pages over plain HTTP, on every backend pair: what they promise beyond what a browser shows.

Opening a share page never spends a download (unfurlers open every link in a chat); pages carry a strict
CSP and set no cookie; a protected link's page reveals nothing before the password, and its download
grant cannot be forged, moved to another link or kept past its time; hostile names and labels are text.
"""

from __future__ import annotations

import io
import time
from typing import Any
from urllib.parse import quote

import pytest
import segno
from aiohttp.test_utils import TestClient

from gateway.auth import hash_api_key
from gateway.http.keys import SERVICE
from gateway.service.passwords import GRANT_SECONDS
from tests.helpers import error_code, upload

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
UNFURLERS = ("Slackbot-LinkExpanding 1.0", "TelegramBot (like TwitterBot)", "WhatsApp/2.23", "Discordbot/2.0")


async def share(
    client: TestClient[Any, Any], name: str, data: bytes, password: str | None = None, **params: Any
) -> tuple[str, str]:
    if password is None:
        body = await upload(client, name, data, token=1, **params)
    else:  # a link password travels in a header, never in the URL
        resp = await client.put(
            f"/asset/{name}", data=data, params={"token": 1, **params}, headers={"Share-Password": password}
        )
        assert resp.status == 201
        body = await resp.json()
    return body["asset"]["id"], body["token"]["token"]


def assert_page_headers(resp: Any) -> None:
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "Set-Cookie" not in resp.headers
    assert resp.content_type == "text/html"


async def test_opening_the_share_page_never_counts_a_download(client: TestClient[Any, Any]) -> None:
    _, token = await share(client, "report.pdf", b"%PDF-1.7 body", max_downloads=1)
    for agent in UNFURLERS:
        for method in ("GET", "HEAD"):
            resp = await client.request(method, f"/s/{token}", headers={"User-Agent": agent})
            assert resp.status == 200
    page = await (await client.get(f"/s/{token}")).text()
    assert '<meta property="og:title" content="report.pdf">' in page
    assert "13 Bytes" in page and 'id="downloads-left">1<' in page
    assert (await client.get(f"/s/{token}/qr.svg")).status == 200
    first = await client.get(f"/asset-token/{token}")
    assert first.status == 200 and await first.read() == b"%PDF-1.7 body"
    assert (await client.get(f"/asset-token/{token}")).status == 410
    gone = await client.get(f"/s/{token}", headers=HTML)
    assert gone.status == 410 and "used up" in await gone.text()
    assert_page_headers(gone)


async def test_pages_are_locked_down(client: TestClient[Any, Any]) -> None:
    _, token = await share(client, "a.txt", b"a")
    for path in ("/", f"/s/{token}", "/s/nonexistent-token-000000000000"):
        resp = await client.get(path, headers=HTML)
        assert_page_headers(resp)
        html = await resp.text()
        assert "<script>" not in html and " style=" not in html and "onclick" not in html


async def test_hostile_names_and_labels_are_text(client: TestClient[Any, Any]) -> None:
    name = '"><script>alert(1)<b><img src=x onerror=alert(2)>.html'
    body = await upload(client, quote(name, safe=""), b"x", token=1)
    page = await (await client.get(f"/s/{body['token']['token']}")).text()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&#34;&gt;&lt;script&gt;alert(1)&lt;" in page or "&quot;&gt;&lt;script&gt;alert(1)&lt;" in page
    made = await client.post("/upload-links", json={"label": "</title><script>alert(3)</script>"})
    url = (await made.json())["upload_link"]["url"]
    link_page = await (await client.get(url.replace("http://gateway.test", ""), headers=HTML)).text()
    assert "<script>alert(3)" not in link_page and "&lt;/title&gt;&lt;script&gt;alert(3)" in link_page


async def test_bundle_page_lists_members(client: TestClient[Any, Any]) -> None:
    a, _ = await share(client, "one.txt", b"1" * 1500)
    b, _ = await share(client, "two.txt", b"2" * 20)
    made = await client.post("/bundle", json={"assets": [a, b], "name": "both.zip", "max_downloads": 3})
    token = (await made.json())["token"]
    assert token["page_url"].endswith(f"/s/{token['token']}")
    page = await (await client.get(f"/s/{token['token']}")).text()
    assert "both.zip" in page and "one.txt" in page and "two.txt" in page and "1.5 kB" in page
    assert "Download all (.zip)" in page and 'id="downloads-left">3<' in page


async def test_revoked_and_deleted_links_say_so(client: TestClient[Any, Any]) -> None:
    asset_id, token = await share(client, "r.txt", b"r")
    assert (await client.delete(f"/asset-token/{token}")).status == 204
    resp = await client.get(f"/s/{token}", headers=HTML)
    assert resp.status == 410 and "withdrawn" in await resp.text()
    asset_id, token = await share(client, "d.txt", b"d")
    assert (await client.delete(f"/asset/{asset_id}")).status == 204
    resp = await client.get(f"/s/{token}", headers=HTML)
    assert resp.status in (404, 410) and "text/html" in resp.headers["Content-Type"]


async def test_qr_code_is_the_share_page_link(client: TestClient[Any, Any]) -> None:
    _, token = await share(client, "q.txt", b"q")
    resp = await client.get(f"/s/{token}/qr.svg")
    assert resp.status == 200 and resp.content_type == "image/svg+xml"
    expected = io.BytesIO()
    segno.make(f"http://gateway.test/s/{token}", error="m").save(
        expected, kind="svg", scale=6, border=2, title="QR code of the share link"
    )
    assert await resp.read() == expected.getvalue()
    assert (await client.get("/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/qr.svg")).status == 404


async def test_password_page_reveals_nothing_and_grants_cannot_be_forged(
    client: TestClient[Any, Any],
) -> None:
    _, token = await share(client, "private-name.txt", b"secret bytes", password="pw-1234", max_downloads=5)
    _, other = await share(client, "other.txt", b"other", password="pw-5678")
    locked = await client.get(f"/s/{token}")
    assert locked.status == 200 and "private-name" not in await locked.text()
    assert "WWW-Authenticate" not in locked.headers  # a page, not a browser prompt

    wrong = await client.post(f"/s/{token}", data={"password": "nope"})
    assert wrong.status == 401 and "Wrong password" in await wrong.text()
    assert "private-name" not in await wrong.text()
    right = await client.post(f"/s/{token}", data={"password": "pw-1234"})
    page = await right.text()
    assert right.status == 200 and "private-name.txt" in page and "pw-1234" not in page
    grant = page.split('name="grant" value="', 1)[1].split('"', 1)[0]

    for forged in ("", "9999999999.00", grant[:-1] + ("0" if grant[-1] != "0" else "1"), "x" * 2000):
        resp = await client.post(f"/s/{token}/download", data={"grant": forged})
        assert resp.status in (400, 401), forged
    stolen = await client.post(f"/s/{other}/download", data={"grant": grant})
    assert stolen.status == 401  # a grant is bound to its link

    ok = await client.post(f"/s/{token}/download", data={"grant": grant})
    assert ok.status == 200 and await ok.read() == b"secret bytes"
    assert "attachment" in ok.headers["Content-Disposition"]
    svc = client.server.app[SERVICE]
    svc.backends.clock = lambda: time.time() + GRANT_SECONDS + 5
    try:
        late = await client.post(f"/s/{token}/download", data={"grant": grant})
        assert late.status == 401
    finally:
        svc.backends.clock = time.time
    direct = await client.post(f"/s/{token}/download", data={"password": "pw-1234"})
    assert direct.status == 200 and await direct.read() == b"secret bytes"


async def test_wrong_passwords_on_the_page_are_throttled_and_count_nothing(
    settings_factory: Any, make_client: Any
) -> None:
    client = await make_client(settings_factory(password_attempts_per_minute=3))
    _, token = await share(client, "t.txt", b"t", password="right-one", max_downloads=1)
    statuses = [(await client.post(f"/s/{token}", data={"password": f"guess{i}"})).status for i in range(5)]
    assert statuses[:3] == [401, 401, 401] and statuses[3:] == [429, 429]
    limited = await client.post(f"/s/{token}", data={"password": "right-one"})
    assert limited.status == 429 and int(limited.headers["Retry-After"]) >= 1
    assert "Too many attempts" in await limited.text()


async def test_bad_form_posts_get_pages_not_errors(client: TestClient[Any, Any]) -> None:
    _, token = await share(client, "f.txt", b"f", password="pw-1234")
    long = await client.post(f"/s/{token}", data={"password": "p" * 5000})
    assert long.status == 400 and long.content_type == "text/html"
    huge = await client.post(f"/s/{token}", data={"password": "p" * (2 * 1024 * 1024)})
    assert huge.status == 413 and huge.content_type == "text/html"
    as_json = await client.post(f"/s/{token}", json={"password": "pw-1234"})
    assert as_json.status == 401  # not a form: no password was given
    unknown = await client.post("/s/unknown-token-00000000000000000/download", data={"grant": "1.a"})
    assert unknown.status == 404 and unknown.content_type == "text/html"


async def test_upload_link_page_html_or_json(client: TestClient[Any, Any]) -> None:
    made = await client.post(
        "/upload-links", json={"label": "Photos", "max_uploads": 3, "content_types": ["image/*"]}
    )
    link = (await made.json())["upload_link"]
    path = f"/upload/{link['token']}"
    page = await client.get(path, headers=HTML)
    assert page.status == 200 and "Photos" in await page.text() and 'accept="image/*"' in await page.text()
    assert_page_headers(page)
    as_json = await client.get(path)
    body = await as_json.json()
    assert body["upload_link"]["uploads"] == 0 and body["upload_link"]["max_uploads"] == 3
    assert link["token"] not in await as_json.text()
    assert (await client.delete(f"/upload-links/{link['link_id']}")).status == 204
    gone = await client.get(path, headers=HTML)
    assert gone.status == 410 and "withdrawn" in await gone.text()
    assert await error_code(await client.get(path)) == "upload_link_revoked"


async def test_static_files(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/static/upload.js")
    assert resp.status == 200 and resp.content_type == "text/javascript"
    again = await client.get("/static/upload.js", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status == 304
    for bad in ("/static/nope.js", "/static/..%2F..%2Fapp.py", "/static/style.css%00", "/static/copy.js.bak"):
        assert (await client.get(bad)).status == 404, bad


@pytest.fixture
async def secured(settings_factory: Any, make_client: Any) -> TestClient[Any, Any]:
    return await make_client(settings_factory(api_keys=[f"alice:{hash_api_key('alice-key-123')}"]))  # type: ignore[no-any-return]


async def test_secured_mode_pages_are_public_and_the_api_is_not(secured: TestClient[Any, Any]) -> None:
    home = await secured.get("/")
    assert home.status == 200 and 'id="api-key"' in await home.text()
    tus = {"Tus-Resumable": "1.0.0", "Upload-Length": "1"}
    assert (await secured.post("/files/", headers=tus)).status == 401
    auth = {"Authorization": "Bearer alice-key-123"}
    up = await secured.put("/asset/s.txt?token=1", data=b"s", headers=auth)
    token = (await up.json())["token"]["token"]
    assert (await secured.get(f"/s/{token}")).status == 200
    assert (await secured.get(f"/s/{token}/qr.svg")).status == 200
    resp = await secured.post(f"/s/{token}/download")
    assert resp.status == 200 and await resp.read() == b"s"


async def test_image_share_page_previews_a_thumbnail_that_never_counts(client: TestClient[Any, Any]) -> None:
    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (900, 600), (20, 120, 220)).save(png, "PNG")
    _, token = await share(client, "holiday.png", png.getvalue(), max_downloads=1)
    page = await (await client.get(f"/s/{token}")).text()
    src = f"/asset-token/{token}/thumbnail?preset=medium"
    assert f'id="preview" class="preview" src="{src}"' in page and 'alt="Preview of holiday.png"' in page
    assert f'<meta property="og:image" content="http://gateway.test{src}">' in page
    for _ in range(3):  # the page's preview, an unfurler's og:image: none of it spends the download
        resp = await client.get(src)
        assert resp.status == 200 and resp.content_type == "image/webp"
        assert Image.open(io.BytesIO(await resp.read())).size == (512, 512)
    assert (await client.get(f"/asset-token/{token}")).status == 200
    _, pdf = await share(client, "notes.pdf", b"%PDF-1.7")
    assert 'id="preview"' not in await (await client.get(f"/s/{pdf}")).text()  # not an image: no preview
    _, locked = await share(client, "secret.png", png.getvalue(), password="hunter2hunter2")
    assert "thumbnail" not in await (await client.get(f"/s/{locked}")).text()  # protected: nothing shown
