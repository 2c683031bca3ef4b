"""`gateway init` against real botocore (moto, Ceph + DynamoDB Local): idempotent, table with TTL, bucket."""

from __future__ import annotations

import boto3
import pytest

from gateway.cli import main
from gateway.config import Settings


def test_init_is_idempotent(backend_kind: str, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_STORAGE_URL", settings.storage_url)
    monkeypatch.setenv("GATEWAY_CATALOG_URL", settings.catalog_url)
    assert main(["init"]) == 0
    assert main(["init"]) == 0
    if backend_kind != "local":
        from urllib.parse import parse_qs, urlsplit

        parts = urlsplit(settings.catalog_url)
        endpoint = parse_qs(parts.query)["endpoint"][0]
        ddb = boto3.client("dynamodb", endpoint_url=endpoint)
        ttl = ddb.describe_time_to_live(TableName=parts.netloc)["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
        keys = ddb.describe_table(TableName=parts.netloc)["Table"]["KeySchema"]
        assert keys == [
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ]
        bucket = urlsplit(settings.storage_url).netloc
        s3_endpoint = parse_qs(urlsplit(settings.storage_url).query)["endpoint"][0]
        boto3.client("s3", endpoint_url=s3_endpoint).head_bucket(Bucket=bucket)
    else:
        assert settings.catalog_url.startswith("sqlite:///")
        from pathlib import Path

        assert Path(settings.catalog_url.removeprefix("sqlite:///")).is_file()
        assert Path(settings.storage_url.removeprefix("file://")).is_dir()


def test_config_file_and_env(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    cfg = Path(str(tmp_path)) / "gw.toml"
    cfg.write_text('port = 9999\nmax_upload_size = 12345\nstorage_url = "s3://user:pw@host/b"\n')
    monkeypatch.setenv("GATEWAY_CONFIG_FILE", str(cfg))
    monkeypatch.setenv("GATEWAY_PORT", "7777")
    s = Settings()
    assert s.port == 7777 and s.max_upload_size == 12345  # env wins over the file
    assert "pw" not in str(s.redacted())
    monkeypatch.setenv("GATEWAY_DEFAULT_TOKEN_EXPIRY", "99")
    monkeypatch.setenv("GATEWAY_MAX_TOKEN_EXPIRY", "10")
    with pytest.raises(ValueError):
        Settings()
