"""schemathesis hooks for tests/test_fuzz.py (loaded through SCHEMATHESIS_HOOKS).

A download answers with the asset's own bytes under the asset's own Content-Type, and the fuzzer uploads
arbitrary bytes under types such as ``application/yaml`` or ``text/plain``. schemathesis would parse
such a body as YAML or text before checking it against the download's schema (a binary string) and
report a deserialization error that says nothing about the gateway. These types are therefore read as
what the contract says a download is: opaque bytes, handed to the schema check as a string.
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.deserializer(
    "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/*", "application/xml"
)
def as_opaque_bytes(ctx: Any, response: Any) -> str:
    return bytes(response.content).decode("latin-1")
