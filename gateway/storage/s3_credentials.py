"""Which AWS credentials an S3 storage uses: the default chain, a profile, named env vars, or a role.

Why per storage: a customer who brings their own bucket grants *our* principal access by bucket policy
(the default chain is then enough) or lets us assume a role in their account, with an external id
against the confused-deputy problem. Assumed-role credentials expire (an hour by default), so they are
refreshable: botocore asks for fresh ones shortly before expiry, and every client built from the session
picks them up. No credential value is ever logged or put into an error message.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import aioboto3
from aiobotocore.credentials import AioDeferredRefreshableCredentials
from aiobotocore.session import get_session

from gateway.awsconfig import CallPolicy
from gateway.errors import StorageError
from gateway.topology import StorageSpec


def _env(name: str | None) -> str | None:
    if name is None:
        return None
    value = os.environ.get(name)
    if not value:
        raise StorageError(f"credentials variable {name} is not set", code="storage_misconfigured")
    return value


def session_for(
    spec: StorageSpec | None, *, region: str | None, endpoint: str | None, policy: CallPolicy
) -> Any:
    """An aioboto3 Session with the storage's credentials (no network call until first use)."""
    if spec is None:
        return aioboto3.Session()
    if spec.aws_profile:
        base = aioboto3.Session(profile_name=spec.aws_profile)
    else:
        base = aioboto3.Session(
            aws_access_key_id=_env(spec.access_key_id_env),
            aws_secret_access_key=_env(spec.secret_access_key_env),
            aws_session_token=_env(spec.session_token_env),
        )
    if not spec.role_arn:
        return base
    role_arn, external_id, session_name = spec.role_arn, spec.external_id, spec.role_session_name
    sts_endpoint = spec.sts_endpoint or endpoint

    async def refresh() -> dict[str, Any]:
        kwargs: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": session_name}
        if external_id:
            kwargs["ExternalId"] = external_id
        async with base.client(
            "sts", region_name=region, endpoint_url=sts_endpoint, config=policy.config()
        ) as sts:
            creds = (await sts.assume_role(**kwargs))["Credentials"]
        expiry = creds["Expiration"]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": expiry.isoformat() if isinstance(expiry, datetime) else str(expiry),
        }

    botocore_session = get_session()
    botocore_session._credentials = AioDeferredRefreshableCredentials(
        refresh_using=refresh, method="assume-role"
    )
    return aioboto3.Session(botocore_session=botocore_session)


def write_args(spec: StorageSpec | None) -> dict[str, Any]:
    """Extra PutObject / CreateMultipartUpload arguments: encryption at rest and storage class."""
    if spec is None:
        return {}
    out: dict[str, Any] = {}
    if spec.sse:
        out["ServerSideEncryption"] = spec.sse
    if spec.kms_key_id:
        out["SSEKMSKeyId"] = spec.kms_key_id
    if spec.storage_class:
        out["StorageClass"] = spec.storage_class
    return out
