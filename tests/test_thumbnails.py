"""Thumbnails through real HTTP on every backend pair; the images are decoded back with Pillow."""

from __future__ import annotations

import asyncio
import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from PIL import Image

from tests.helpers import error_code, upload


def jpeg_with_orientation(width: int, height: int, orientation: int) -> bytes:
    """A JPEG stored ``width`` x ``height`` whose EXIF says to rotate it, and which carries GPS data."""
    im = Image.new("RGB", (width, height), (200, 30, 30))
    im.paste((30, 30, 200), (0, 0, width // 2, height))  # left half blue: shows where the rotation went
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"  # Make
    exif.get_ifd(0x8825)[2] = (52.0, 22.0, 1.0)  # GPSLatitude
    out = io.BytesIO()
    im.save(out, "JPEG", exif=exif.tobytes(), quality=95)
    return out.getvalue()


def png_with_alpha() -> bytes:
    im = Image.new("RGBA", (80, 80), (0, 128, 0, 0))
    im.paste((0, 128, 0, 255), (20, 20, 60, 60))
    out = io.BytesIO()
    im.save(out, "PNG")
    return out.getvalue()


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def webp_image() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 100), (10, 200, 10)).save(out, "WEBP")
    return out.getvalue()


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG header claiming 10 gigapixels, with a tiny (wrong) body: refused from the header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + chunk(b"IEND", b"")
    )


async def thumb(client: TestClient[Any, Any], url: str, **params: Any) -> Image.Image:
    resp = await client.get(url, params=params)
    body = await resp.read()
    assert resp.status == 200, body[:300]
    im = Image.open(io.BytesIO(body))
    im.load()
    return im


async def test_exif_rotation_applied_and_metadata_stripped(client: TestClient[Any, Any]) -> None:
    aid = (await upload(client, "photo.jpg", jpeg_with_orientation(64, 32, 6)))["asset"]["id"]
    im = await thumb(client, f"/asset/{aid}/thumbnail", w=32, h=64, fit="contain", format="png")
    assert im.size == (32, 64)  # stored wide, shown tall: orientation 6 applied
    top = im.convert("RGB").getpixel((16, 4))
    assert top[2] > 150 and top[0] < 100  # orientation 6 = rotate 90° clockwise: left (blue) goes on top
    assert not im.getexif() and "exif" not in im.info and "icc_profile" not in im.info
    jpeg = await thumb(client, f"/asset/{aid}/thumbnail", w=20, format="jpeg")
    assert jpeg.format == "JPEG" and jpeg.size == (20, 20) and not jpeg.getexif()  # cover: cropped square


async def test_png_alpha_gif_first_frame_webp_in(client: TestClient[Any, Any]) -> None:
    png = (await upload(client, "a.png", png_with_alpha()))["asset"]["id"]
    out = await thumb(client, f"/asset/{png}/thumbnail", w=40, h=40)
    assert out.format == "WEBP" and out.mode == "RGBA"
    assert out.getpixel((1, 1))[3] == 0 and out.getpixel((20, 20))[3] == 255  # transparency kept
    flat = await thumb(client, f"/asset/{png}/thumbnail", w=40, format="jpeg")
    assert flat.mode == "RGB" and min(flat.getpixel((1, 1))) > 240  # flattened onto white
    gif = (await upload(client, "anim.gif", animated_gif()))["asset"]["id"]
    first = (await thumb(client, f"/asset/{gif}/thumbnail", w=16, format="png")).convert("RGB")
    assert first.getpixel((8, 8))[0] > 200 and first.getpixel((8, 8))[2] < 50  # the red first frame
    webp = (await upload(client, "in.webp", webp_image()))["asset"]["id"]
    contained = await thumb(client, f"/asset/{webp}/thumbnail", w=150, h=150, fit="contain")
    assert contained.size == (150, 50)


async def test_stored_once_with_etag_and_304(client: TestClient[Any, Any], inspector: Any) -> None:
    aid = (await upload(client, "p.png", png_with_alpha()))["asset"]["id"]
    first = await client.get(f"/asset/{aid}/thumbnail", params={"w": 64})
    body, etag = await first.read(), first.headers["ETag"]
    assert first.headers["Content-Type"] == "image/webp" and "inline" in first.headers["Content-Disposition"]
    again = await client.get(f"/asset/{aid}/thumbnail", params={"w": 64})
    assert again.headers["ETag"] == etag and await again.read() == body
    cached = await client.get(f"/asset/{aid}/thumbnail", params={"w": 64}, headers={"If-None-Match": etag})
    assert cached.status == 304
    stored = [k for k in inspector.blob_keys() if "thumbnails/" in k and "64x64-cover.webp" in k]
    assert len(stored) == 1


async def test_presets_made_after_upload_then_deleted_with_the_asset(
    client: TestClient[Any, Any], inspector: Any
) -> None:
    aid = (await upload(client, "photo.jpg", jpeg_with_orientation(400, 300, 1)))["asset"]["id"]
    for _ in range(200):  # presets are made in the background after the upload
        keys = [k for k in inspector.blob_keys() if f"thumbnails/{aid}/" in k]
        if len(keys) == 2:
            break
        await asyncio.sleep(0.05)
    assert sorted(k.rsplit("/", 1)[1] for k in keys) == ["128x128-cover.webp", "512x512-cover.webp"]
    small = await thumb(client, f"/asset/{aid}/thumbnail", preset="small")
    assert small.size == (128, 128)
    text = (await upload(client, "notes.txt", b"not an image"))["asset"]["id"]
    assert (await client.delete(f"/asset/{aid}")).status == 204
    assert not [k for k in inspector.blob_keys() if "thumbnails/" in k]
    assert "THUMB" not in repr(inspector.catalog_items())
    await asyncio.sleep(0.2)
    assert not [k for k in inspector.blob_keys() if f"thumbnails/{text}/" in k]  # a text upload: none made


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (png_bomb(), "image_too_large"),
        (jpeg_with_orientation(300, 200, 1)[:900], "corrupt_image"),
        (b"%PDF-1.4 definitely not an image", "not_an_image"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not_an_image"),
    ],
)
async def test_hostile_images_are_422_and_store_nothing(
    client: TestClient[Any, Any], inspector: Any, data: bytes, code: str
) -> None:
    aid = (await upload(client, "evil.png", data))["asset"]["id"]
    resp = await client.get(f"/asset/{aid}/thumbnail", params={"w": 64})
    assert resp.status == 422 and await error_code(resp) == code
    await asyncio.sleep(0.2)  # the background presets fail the same way
    assert not [k for k in inspector.blob_keys() if "thumbnails/" in k]


@pytest.mark.parametrize(
    "params",
    [
        {"w": "5000"},
        {"w": "8"},
        {"w": "abc"},
        {"w": "64", "fit": "stretch"},
        {"w": "64", "format": "gif"},
        {"preset": "huge"},
        {"preset": "small", "w": "64"},
        {},
    ],
)
async def test_bad_thumbnail_requests_are_400(client: TestClient[Any, Any], params: dict[str, str]) -> None:
    aid = (await upload(client, "a.png", png_with_alpha()))["asset"]["id"]
    resp = await client.get(f"/asset/{aid}/thumbnail", params=params)
    assert resp.status == 400 and await error_code(resp) == "invalid_thumbnail"


async def test_share_link_thumbnail_never_counts(client: TestClient[Any, Any]) -> None:
    out = await upload(client, "pic.png", png_with_alpha(), token="1", max_downloads="1")
    link = f"/asset-token/{out['token']['token']}"
    for _ in range(3):
        im = await thumb(client, f"{link}/thumbnail", preset="small")
        assert im.size == (128, 128)
    resp = await client.get(f"{link}/thumbnail", params={"w": 300})
    assert resp.status == 400 and await error_code(resp) == "invalid_thumbnail"  # presets only
    assert (await client.get(link)).status == 200  # the one download is still there
    assert (await client.get(f"{link}/thumbnail", params={"preset": "small"})).status == 410
    second = (await upload(client, "b.webp", webp_image()))["asset"]["id"]
    bundle = await client.post("/bundle", json={"assets": [out["asset"]["id"], second]})
    secret = (await bundle.json())["token"]["token"]
    im = await thumb(client, f"/asset-token/{secret}/thumbnail", preset="small", asset=second)
    assert im.size == (128, 128)
    resp = await client.get(f"/asset-token/{secret}/thumbnail", params={"preset": "small"})
    assert resp.status == 400 and await error_code(resp) == "invalid_member"


async def test_purge_command(tmp_path: Path) -> None:
    from tests.helpers import running_gateway

    env = {
        "GATEWAY_STORAGE_URL": f"file://{tmp_path}/blobs",
        "GATEWAY_CATALOG_URL": f"sqlite:///{tmp_path}/catalog.db",
        "GATEWAY_THUMBNAIL_EAGER": "false",  # only the one asked for below
    }
    with running_gateway(tmp_path, env) as base:
        import urllib.request

        req = urllib.request.Request(f"{base}/asset/a.png", data=png_with_alpha(), method="PUT")
        with urllib.request.urlopen(req) as resp:
            aid = json.loads(resp.read())["asset"]["id"]
        with urllib.request.urlopen(f"{base}/asset/{aid}/thumbnail?w=40") as resp:
            assert resp.status == 200
    assert list((tmp_path / "blobs").rglob("*40x40-cover.webp"))
    run = subprocess.run(
        [sys.executable, "-m", "gateway", "thumbnails", "purge", "--owner", "public"],
        env={k: v for k, v in __import__("os").environ.items() if not k.startswith("GATEWAY_")} | env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["purged"] >= 1
    assert not list((tmp_path / "blobs").rglob("thumbnails/**/*.webp"))


@pytest.mark.parametrize(("kind", "name"), [("AVIF", "photo.avif"), ("HEIF", "photo.heic")])
async def test_avif_and_heic_in(client: TestClient[Any, Any], kind: str, name: str) -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()  # the test encodes HEIC with the same plugin the gateway decodes with
    out = io.BytesIO()
    Image.new("RGB", (120, 80), (200, 10, 10)).save(out, kind)
    aid = (await upload(client, name, out.getvalue()))["asset"]["id"]
    im = (await thumb(client, f"/asset/{aid}/thumbnail", w=60, h=60, fit="contain", format="png")).convert(
        "RGB"
    )
    assert im.size == (60, 40) and im.getpixel((30, 20))[0] > 150


async def test_thumbnail_created_event(settings_factory: Any, make_client: Any) -> None:
    import base64
    import os

    from tests.webhook_receiver import Receiver, wait_for

    receiver = await Receiver().start()
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    try:
        sink = {"url": receiver.url, "secret": secret, "types": ["thumbnail.created"]}
        client = await make_client(
            settings_factory(
                event_sinks={"hooks": sink},
                webhook_allow_private=True,
                outbox_poll_interval=0.05,
                thumbnail_eager=False,
            )
        )
        aid = (await upload(client, "p.png", png_with_alpha()))["asset"]["id"]
        await thumb(client, f"/asset/{aid}/thumbnail", w=48)
        await thumb(client, f"/asset/{aid}/thumbnail", w=48)  # served from storage: no second event
        await wait_for(lambda: receiver.received, what="thumbnail.created")
        await asyncio.sleep(0.3)
        [event] = receiver.verified(secret).values()
        assert event["type"] == "thumbnail.created" and event["data"]["asset_id"] == aid
        assert event["data"]["thumbnail"] == "48x48-cover.webp"
    finally:
        await receiver.stop()
