"""A many-storage deployment for the topology tests: several S3 buckets in different regions, a
filesystem storage, an SSE-KMS storage and a customer's bucket -- on moto reached through an assumed role
(STS, with an external id), on the real lane owned by a second RGW user who grants ours access by
bucket policy. Built here once so every topology test reads the same picture.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from gateway.auth import hash_api_key
from gateway.config import MiB, Settings

KEYS = {name: f"gw_{name}_{uuid.uuid4().hex}" for name in ("alice", "bob", "carol", "dave")}
ROLE_ARN = "arn:aws:iam::123456789012:role/asset-gateway"
EXTERNAL_ID = "acme-7f3c"


@dataclass
class Topology:
    kind: str
    settings: Settings
    endpoint: str
    buckets: dict[str, tuple[str, str]]  # storage name -> (bucket, region)
    files: Path  # root of the filesystem storage

    def s3(self, region: str = "us-east-1", customer: bool = False) -> Any:
        creds: dict[str, str] = {}
        if customer and self.kind == "real":
            creds = {
                "aws_access_key_id": os.environ["REAL_CUSTOMER_ACCESS_KEY_ID"],
                "aws_secret_access_key": os.environ["REAL_CUSTOMER_SECRET_ACCESS_KEY"],
            }
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=region, **creds)

    def keys_in(self, storage: str) -> list[str]:
        if storage == "files":
            return sorted(str(p.relative_to(self.files)) for p in self.files.rglob("*") if p.is_file())
        bucket, region = self.buckets[storage]
        s3 = self.s3(region, customer=storage == "customer")
        return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))

    def head(self, storage: str, key: str) -> dict[str, Any]:
        bucket, region = self.buckets[storage]
        return dict(self.s3(region, customer=storage == "customer").head_object(Bucket=bucket, Key=key))


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name]}"}


def build(kind: str, endpoint: str, ddb_endpoint: str, tmp_path: Path, **extra: Any) -> Topology:
    tag = uuid.uuid4().hex[:10]
    real = kind == "real"
    # RGW has one zonegroup: every bucket there is in the lane's region; moto keeps them apart.
    regions = {"use1": "us-east-1", "usw2": "us-west-2", "euw1": "eu-west-1"}
    if real:
        regions = dict.fromkeys(regions, "us-east-1")
    buckets = {
        "us-east-general": (f"use1-{tag}", regions["use1"]),
        "us-west-general": (f"usw2-{tag}", regions["usw2"]),
        "us-east-thumbs": (f"thumbs-{tag}", regions["use1"]),
        "customer": (f"acme-{tag}", regions["euw1"]),
    }
    files = tmp_path / "files"

    def url(name: str, prefix: str = "") -> str:
        bucket, region = buckets[name]
        return f"s3://{bucket}/{prefix}?region={region}&endpoint={endpoint}"

    storages: dict[str, Any] = {
        "us-east-general": {"url": url("us-east-general", "gw")},
        "us-west-general": {"url": url("us-west-general")},
        "us-east-thumbs": {"url": url("us-east-thumbs")},
        "files": {"url": f"file://{files}"},
    }
    if real:
        _customer_bucket_with_policy(endpoint, *buckets["customer"])
        storages["customer"] = {"url": url("customer", "gateway"), "gc": False}
    else:
        boto3.client("s3", endpoint_url=endpoint, region_name=regions["euw1"]).create_bucket(
            Bucket=buckets["customer"][0],
            CreateBucketConfiguration={"LocationConstraint": regions["euw1"]},
        )
        storages["customer"] = {
            "url": url("customer", "gateway"),
            "role_arn": ROLE_ARN,
            "external_id": EXTERNAL_ID,
            "gc": False,
        }
        kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1")
        key_id = kms.create_key(Description="gateway test")["KeyMetadata"]["KeyId"]
        buckets["kms"] = (f"kms-{tag}", "us-east-1")
        storages["kms"] = {"url": url("kms"), "sse": "aws:kms", "kms_key_id": key_id}
    profiles: dict[str, Any] = {
        "default": {
            "default_region": "us-east",
            "purposes": {
                "general": {"us-east": "us-east-general", "us-west": "us-west-general"},
                "thumbnails": "us-east-thumbs",
            },
        },
        "local": {"purposes": {"general": "files"}},
    }
    if "kms" in storages:
        profiles["secure"] = {"purposes": {"general": "kms"}}
    settings = Settings(
        **{
            "catalog_url": f"dynamodb://t{tag}?region=us-east-1&endpoint={ddb_endpoint}",
            "storages": storages,
            "default_storage": "us-east-general",
            "profiles": profiles,
            "tenants": {"acme": {"storage": "customer"}, "beta": {}},
            "principals": {
                "key:alice": {
                    "region": "us-west",
                    "profiles": ["default", "local", *sorted(profiles.keys() - {"default", "local"})],
                },
                "key:bob": {"tenant": "acme"},
                "key:carol": {"tenant": "beta"},
                "key:dave": {"profiles": ["default"]},
            },
            "api_keys": [f"{n}:{hash_api_key(k)}" for n, k in KEYS.items()],
            "auto_init": True,
            "s3_part_size": 5 * MiB,
            "public_base_url": "http://gateway.test",
        }
        | extra
    )
    return Topology(kind, settings, endpoint, buckets, files)


def _customer_bucket_with_policy(endpoint: str, bucket: str, region: str) -> None:
    """The customer's side of onboarding (docs/storage-topology.md): their bucket, our user in its policy,
    limited to the ``gateway/`` path (objects) and listing under it."""
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=os.environ["REAL_CUSTOMER_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["REAL_CUSTOMER_SECRET_ACCESS_KEY"],
    )
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(customer_policy(bucket, "gateway", "gateway/")))


def customer_policy(bucket: str, our_user: str, prefix: str) -> dict[str, Any]:
    principal = {"AWS": [f"arn:aws:iam:::user/{our_user}"]}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "GatewayObjects",
                "Effect": "Allow",
                "Principal": principal,
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                "Resource": [f"arn:aws:s3:::{bucket}/{prefix}*"],
            },
            {
                "Sid": "GatewayList",
                "Effect": "Allow",
                "Principal": principal,
                "Action": ["s3:ListBucket", "s3:ListBucketMultipartUploads"],
                "Resource": [f"arn:aws:s3:::{bucket}"],
            },
        ],
    }
