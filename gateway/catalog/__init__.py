"""Catalog adapters, chosen by URL scheme (``sqlite://`` or ``dynamodb://``)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from gateway.config import Settings
from gateway.ports import Catalog


def catalog_from_settings(settings: Settings) -> Catalog:
    url = settings.catalog_url
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        from gateway.catalog.sqlite import SqliteCatalog

        # sqlite:///relative/path and sqlite:////absolute/path, as SQLAlchemy spells them
        path = url.split("://", 1)[1]
        path = path[1:] if path.startswith("/") else path
        return SqliteCatalog(path or ":memory:")
    if parts.scheme == "dynamodb":
        from gateway.awsconfig import CallPolicy
        from gateway.catalog.dynamodb import DynamoCatalog

        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        return DynamoCatalog(
            table=parts.netloc,
            region=query.get("region"),
            endpoint_url=query.get("endpoint"),
            policy=CallPolicy.of(settings),
        )
    raise ValueError(f"unsupported catalog URL scheme {parts.scheme!r} (use sqlite:// or dynamodb://)")
