"""deploy/: the CloudFormation template (cfn-lint, moto CloudFormation + a real round trip), the
Dockerfile's install and health-check steps (run here exactly as the image runs them), docker-compose."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import yaml
from cfnlint.decode import cfn_yaml

from gateway.catalog.dynamodb import TTL_ATTRIBUTE
from gateway.config import Settings
from gateway.http.app import create_app
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "deploy" / "cloudformation.yaml"


def test_template_is_cfn_lint_clean() -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    proc = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_template_data_layer_settings() -> None:
    tpl = cfn_yaml.load(str(TEMPLATE))
    res = tpl["Resources"]
    bucket = res["Bucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    rule = bucket["LifecycleConfiguration"]["Rules"][0]
    assert rule["Status"] == "Enabled" and rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] >= 1
    table = res["Table"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["PK", "SK"]
    statements = res["TaskRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    actions = {a for s in statements for a in s["Action"]}
    assert not any(a.endswith("*") for a in actions)  # least privilege: no wildcards
    # every call the adapters make is allowed
    needed = {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListBucket",
              "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:PutItem",
              "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
              "dynamodb:ConditionCheckItem", "dynamodb:DescribeTable"}  # fmt: skip
    assert needed <= actions
    lb_attrs = {a["Key"]: a["Value"] for a in res["LoadBalancer"]["Properties"]["LoadBalancerAttributes"]}
    assert int(lb_attrs["idle_timeout.timeout_seconds"]) >= 3600
    assert res["TargetGroup"]["Properties"]["HealthCheckPath"] == "/healthcheck"
    assert "CpuScaling" in res and "ScalableTarget" in res


@pytest.mark.filterwarnings("ignore:Tried to parse AWS")  # moto has no S3 BucketPolicy in CFN
async def test_stack_data_layer_in_moto_then_round_trip(
    moto_endpoint: str, tmp_path: Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cf = boto3.client("cloudformation", endpoint_url=moto_endpoint)
    name = f"gw{int(time.time() * 1000)}"
    cf.create_stack(
        StackName=name,
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[
            {"ParameterKey": "CreateService", "ParameterValue": "false"},
            {"ParameterKey": "VpcId", "ParameterValue": "vpc-12345678"},
            {"ParameterKey": "PublicSubnetIds", "ParameterValue": "subnet-12345678,subnet-87654321"},
            {"ParameterKey": "PrivateSubnetIds", "ParameterValue": "subnet-12345678"},
        ],
        Capabilities=["CAPABILITY_IAM"],
    )
    stack = cf.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    types = {r["ResourceType"] for r in cf.list_stack_resources(StackName=name)["StackResourceSummaries"]}
    assert {"AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::IAM::Role"} <= types
    assert not any(t.startswith(("AWS::ECS", "AWS::ElasticLoadBalancingV2")) for t in types)
    role = boto3.client("iam", endpoint_url=moto_endpoint).get_role(
        RoleName=outputs["TaskRoleArn"].split("/")[-1]
    )
    assert role["Role"]["AssumeRolePolicyDocument"]

    # gateway init and a real round trip against exactly what the stack created
    storage = f"{outputs['StorageUrl']}&endpoint={moto_endpoint}"
    catalog = f"{outputs['CatalogUrl']}&endpoint={moto_endpoint}"
    monkeypatch.setenv("GATEWAY_STORAGE_URL", storage)
    monkeypatch.setenv("GATEWAY_CATALOG_URL", catalog)
    from gateway.cli import main

    assert await asyncio.to_thread(main, ["init"]) == 0  # the CLI runs its own event loop
    ddb = boto3.client("dynamodb", endpoint_url=moto_endpoint)
    ttl = ddb.describe_time_to_live(TableName=outputs["TableName"])["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED"
    client = await aiohttp_client(create_app(Settings(storage_url=storage, catalog_url=catalog)))
    data = os.urandom(6 * 1024 * 1024)
    resp = await client.put("/asset/deployed.bin", data=data, params={"token": "1"})
    body = await resp.json()
    assert resp.status == 201, body
    got = await client.get(f"/asset-token/{body['token']['token']}")
    assert got.status == 200 and await got.read() == data
    endpoint = parse_qs(urlsplit(storage).query)["endpoint"][0]
    keys = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=outputs["BucketName"])
    assert keys["KeyCount"] == 1


def test_dockerfile_runs_the_tested_steps() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "RUN install-gateway /src /opt/venv" in text
    assert "HEALTHCHECK" in text and 'CMD ["gateway", "healthcheck"]' in text
    assert "\nUSER gateway\n" in text and "useradd --system --uid 10001" in text
    assert text.count("FROM ") == 2  # multi-stage


@pytest.mark.slow
def test_image_install_steps_and_healthcheck(tmp_path: Path) -> None:
    """deploy/install.sh into a fresh venv (what the image's build stage runs), then the HEALTHCHECK."""
    venv = tmp_path / "venv"
    subprocess.run(["sh", str(ROOT / "deploy" / "install.sh"), str(ROOT), str(venv)], check=True, timeout=900)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | {
        "GATEWAY_PORT": str(port),
        "GATEWAY_HOST": "127.0.0.1",
    }
    check = [str(venv / "bin" / "gateway"), "healthcheck"]
    assert subprocess.run(check, env=env, capture_output=True).returncode == 1  # nothing listening yet
    proc = subprocess.Popen([str(venv / "bin" / "gateway"), "serve"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(check, env=env, capture_output=True).returncode != 0:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0


def test_compose_file_wires_the_gateway() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"gateway", "init", "minio", "dynamodb"} <= set(services)
    env = services["gateway"]["environment"]
    assert env["GATEWAY_STORAGE_URL"].startswith("s3://") and env["GATEWAY_CATALOG_URL"].startswith(
        "dynamodb://"
    )
    assert services["init"]["command"] == "init"
    assert services["gateway"]["ports"] == ["127.0.0.1:8080:8080"]
