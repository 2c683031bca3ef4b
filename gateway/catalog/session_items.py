"""How a resumable upload is stored, in both catalog engines (the single-table design's upload items).

    PK                  SK                          what
    UPLOAD#<id>         STATE                       the session: JSON state + ``rev`` (conditional writes)
    UPLOADS-DUE         <expires 12 digits>#<id>    expiry index the sweeper walks (no scans)

The session is one opaque JSON attribute next to ``rev``: nothing but the rev is ever a condition, and
every field changes together, so there is nothing to gain from one attribute per field. The item's TTL is
a week after the upload expires: the sweeper must still find the storage handle (S3 multipart id) to
abort it, so the catalog may only forget a session well after the sweeper had its chance.

All uploads' expiry entries share one partition. Creating an upload is rare next to appending to one
(one write here per upload, against one per PATCH on its own item), so the partition's write rate is far
below DynamoDB's per-partition limit for any realistic upload rate; the sweeper reads it with one query.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from gateway.records import UploadSession

STATE_SK = "STATE"
DUE_PK = "UPLOADS-DUE"
FORGET_AFTER = 7 * 86400

Item = dict[str, Any]


def upload_pk(upload_id: str) -> str:
    return f"UPLOAD#{upload_id}"


def due_sk(s: UploadSession) -> str:
    return f"{s.expires_at:012d}#{s.id}"


def due_upper_bound(now: float) -> str:
    return f"{int(now):012d}~"


def session_item(s: UploadSession) -> Item:
    state = dataclasses.asdict(s)
    state.pop("rev")
    return {
        "PK": upload_pk(s.id),
        "SK": STATE_SK,
        "kind": "upload",
        "rev": s.rev,
        "expires_at": s.expires_at + FORGET_AFTER,
        "state": json.dumps(state, separators=(",", ":")),
    }


def session_from(item: Item) -> UploadSession:
    return UploadSession(**json.loads(item["state"]), rev=int(item["rev"]))


def due_item(s: UploadSession) -> Item:
    return {"PK": DUE_PK, "SK": due_sk(s), "kind": "upload-due", "upload_id": s.id}


def due_id(item: Item) -> str:
    return str(item["upload_id"])
