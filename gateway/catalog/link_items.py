"""How upload links are stored, in both catalog engines.

    PK                  SK                  what
    ULINK#<sha256>      LINK                the link: limits, ``uploads`` counter, ``revoked``, TTL
    ULINKS#<owner>      ULINK#<link_id>     the owner's index entry (listing, revoking by id): the hash

The counter is claimed with one conditional update on the LINK item (``uploads < max_uploads``, not
revoked, not expired), so the limit is exact across any number of processes. The owner's entries live in
their own partition, apart from the owner's assets, so listing assets never reads past links.
"""

from __future__ import annotations

from typing import Any

from gateway.records import UploadLink

LINK_SK = "LINK"
Item = dict[str, Any]


def link_pk(token_hash: str) -> str:
    return f"ULINK#{token_hash}"


def owner_links_pk(owner: str) -> str:
    return f"ULINKS#{owner}"


def pointer_sk(link_id: str) -> str:
    return f"ULINK#{link_id}"


def link_item(link: UploadLink) -> Item:
    item: Item = {
        "PK": link_pk(link.token_hash),
        "SK": LINK_SK,
        "kind": "upload-link",
        "link_id": link.link_id,
        "owner": link.owner,
        "created": link.created,
        "expires_at": link.expires_at,
        "uploads": link.uploads,
        "revoked": link.revoked,
        "content_types": list(link.content_types),
        "label": link.label,
    }
    for name in ("max_uploads", "max_size", "share", "placement"):
        if (value := getattr(link, name)) is not None:
            item[name] = value
    return item


def pointer_item(link: UploadLink) -> Item:
    return {
        "PK": owner_links_pk(link.owner),
        "SK": pointer_sk(link.link_id),
        "kind": "upload-link-pointer",
        "token_hash": link.token_hash,
        "expires_at": link.expires_at,
    }


def link_from(item: Item) -> UploadLink:
    return UploadLink(
        token_hash=item["PK"].removeprefix("ULINK#"),
        link_id=item["link_id"],
        owner=item["owner"],
        created=float(item["created"]),
        expires_at=int(item["expires_at"]),
        max_uploads=None if item.get("max_uploads") is None else int(item["max_uploads"]),
        uploads=int(item["uploads"]),
        max_size=None if item.get("max_size") is None else int(item["max_size"]),
        content_types=tuple(item.get("content_types") or ()),
        label=str(item.get("label", "")),
        share=item.get("share"),
        revoked=bool(item["revoked"]),
        placement=item.get("placement"),
    )
