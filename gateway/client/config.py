"""Where the client finds its server and credentials, and where it keeps resume state.

Precedence: command-line flags, then ``GATEWAY_URL`` / ``GATEWAY_API_KEY``, then the config file
(``<user config dir>/gateway/client.toml``: ``server = "…"``, ``api_key = "…"``), then
``http://127.0.0.1:8080`` (what ``make serve`` listens on). Directories follow the platform's rules
(platformdirs: XDG on Linux), so a user's cache and config land where their OS expects them.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import platformdirs

DEFAULT_SERVER = "http://127.0.0.1:8080"
APP = "gateway"


class ConfigProblem(Exception):
    pass


@dataclass(frozen=True)
class ClientConfig:
    server: str
    api_key: str | None
    state_dir: Path

    @property
    def uploads_file(self) -> Path:
        return self.state_dir / "uploads.json"


def config_file() -> Path:
    return Path(platformdirs.user_config_dir(APP)) / "client.toml"


def load(server: str | None = None, api_key: str | None = None) -> ClientConfig:
    stored: dict[str, object] = {}
    path = config_file()
    if path.is_file():
        try:
            stored = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigProblem(f"cannot read {path}: {exc}") from None
    url = server or os.environ.get("GATEWAY_URL") or _text(stored, "server", path) or DEFAULT_SERVER
    if not url.startswith(("http://", "https://")):
        raise ConfigProblem(f"the server must be an http:// or https:// URL, not {url!r}")
    key = api_key or os.environ.get("GATEWAY_API_KEY") or _text(stored, "api_key", path)
    return ClientConfig(url.rstrip("/"), key or None, Path(platformdirs.user_cache_dir(APP)))


def _text(stored: dict[str, object], name: str, path: Path) -> str | None:
    value = stored.get(name)
    if value is not None and not isinstance(value, str):
        raise ConfigProblem(f"{path}: {name} must be a string")
    return value
