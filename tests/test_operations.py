"""OpenAPI, /docs, /metrics, request ids and JSON logs, CORS (both backend pairs)."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from gateway.http.openapi import described
from tests.helpers import upload


async def test_openapi_is_valid_and_covers_every_route(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    spec = await resp.json()
    validate(spec)  # OpenAPI 3.1 schema validation
    assert spec["openapi"] == "3.1.0"
    for route in client.app.router.routes():
        if route.method == "HEAD":
            continue
        assert described(route.handler) is not None, f"{route.method} {route.resource} has no description"
        path = route.resource.get_info().get("formatter") or route.resource.get_info().get("path")
        assert route.method.lower() in spec["paths"][path], (route.method, path)
    for path in (
        "/asset/{name}",
        "/asset-token/{token}",
        "/zip",
        "/bundle",
        "/assets",
        "/asset/{id}/content",
    ):
        assert path in spec["paths"]
    upload_schema = spec["paths"]["/asset/{name}"]["post"]["responses"]["201"]["content"]["application/json"]
    assert upload_schema["schema"] == {"$ref": "#/components/schemas/UploadResponse"}
    assert "UploadResponse" in spec["components"]["schemas"]


async def test_docs_page_works_offline(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/docs")
    assert resp.status == 200 and resp.content_type == "text/html"
    page = await resp.text()
    assert "openapi.json" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing from a CDN


async def test_metrics(client: TestClient[Any, Any]) -> None:
    body = await upload(client, "m.bin", b"x" * 1000, token="1", max_downloads="1")
    url = f"/asset-token/{body['token']['token']}"
    first = await client.get(url)
    assert first.status == 200 and await first.read() == b"x" * 1000  # body sent before we look
    assert (await client.get(url)).status == 410
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.content_type.startswith("text/plain")
    text = await resp.text()

    def value(pattern: str) -> float:
        match = re.search(pattern + r" ([0-9.e+]+)$", text, re.M)
        assert match, pattern
        return float(match.group(1))

    assert value(r'gateway_requests_total\{method="PUT",route="upload-raw-put",status="201"\}') == 1
    assert value(r'gateway_requests_total\{method="GET",route="token-download",status="410"\}') == 1
    assert value(r"gateway_uploaded_bytes_total") == 1000
    assert value(r"gateway_downloaded_bytes_total") == 1000
    assert value(r'gateway_token_claims_total\{result="granted"\}') == 1
    assert value(r'gateway_token_claims_total\{result="refused"\}') == 1
    assert value(r'gateway_backend_call_duration_seconds_count\{backend="storage",op="write"\}') == 1
    # the second GET is refused from the token read alone, before any claim is attempted
    assert value(r'gateway_backend_call_duration_seconds_count\{backend="catalog",op="open_retrieval"\}') == 1
    # serving the latest version reads one catalog item (the asset carries a copy of it)
    assert value(r'gateway_backend_call_duration_seconds_count\{backend="catalog",op="get_asset"\}') == 1
    assert not re.search(r'op="get_version"\}', text)
    assert value(r'gateway_transfers_in_flight\{kind="download"\}') == 0
    assert body["token"]["token"] not in text


async def test_request_ids_and_json_logs(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.access")
    body = await upload(client, "l.bin", b"log me", token="1")
    secret = body["token"]["token"]
    resp = await client.get(f"/asset-token/{secret}?x={secret}", headers={"X-Request-ID": "req-42"})
    assert resp.headers["X-Request-ID"] == "req-42" and await resp.read() == b"log me"  # logged when done
    resp = await client.get("/healthcheck", headers={"X-Request-ID": "bad id\twith junk"})
    assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["X-Request-ID"])
    resp = await client.get("/asset/6b84149d-332c-4152-bb73-0ca9da463eaf")  # errors get one too
    assert resp.status == 404 and resp.headers["X-Request-ID"]
    from gateway.observability import JsonFormatter

    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "gateway.access"]
    entries = [json.loads(line) for line in lines]
    token_entry = next(e for e in entries if e.get("request_id") == "req-42")
    assert token_entry["route"] == "/asset-token/{token}" and token_entry["status"] == 200
    assert token_entry["duration_ms"] >= 0 and token_entry["method"] == "GET"
    ours = [r for r in caplog.records if r.name.startswith("gateway")]
    assert ours and all(secret not in JsonFormatter().format(r) for r in ours)
    # (the real server runs aiohttp with access_log=None; test_e2e checks its whole log for secrets)


@pytest.mark.parametrize("origins", [["https://app.example"], ["*"]])
async def test_cors(settings_factory: Any, make_client: Any, origins: list[str]) -> None:
    client = await make_client(settings_factory(cors_origins=origins))
    pre = await client.options(
        "/asset/x.bin",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type, range, authorization",
        },
    )
    assert pre.status == 204
    assert pre.headers["Access-Control-Allow-Origin"] in ("https://app.example", "*")
    assert "PUT" in pre.headers["Access-Control-Allow-Methods"]
    allowed = pre.headers["Access-Control-Allow-Headers"].lower()
    assert all(h in allowed for h in ("content-type", "range", "authorization"))
    body = await upload(client, "c.bin", b"cors")
    resp = await client.get(f"/asset/{body['asset']['id']}", headers={"Origin": "https://app.example"})
    assert resp.headers["Access-Control-Allow-Origin"] in ("https://app.example", "*")
    assert "Content-Range" in resp.headers["Access-Control-Expose-Headers"]
    other = await client.options(
        "/asset/x.bin", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"}
    )
    if origins != ["*"]:
        assert "Access-Control-Allow-Origin" not in other.headers


async def test_no_cors_by_default(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/healthcheck", headers={"Origin": "https://app.example"})
    assert "Access-Control-Allow-Origin" not in resp.headers
