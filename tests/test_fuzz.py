"""schemathesis against the served OpenAPI description: no 5xx, every response as documented.

Bounded (fixed seed, a few examples per operation) so CI time stays small and a failure reproduces.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import running_gateway

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def test_schemathesis_finds_nothing(tmp_path: Path) -> None:
    with running_gateway(tmp_path, {}, "fuzz.log") as base:
        cli = Path(sys.executable).with_name("schemathesis")
        proc = subprocess.run(
            [str(cli), "run", f"{base}/openapi.json", "--max-examples", "15", "--seed", "20261121",
             "--checks", CHECKS, "--no-color"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
        assert "18 selected" in proc.stdout.replace("Selected: 18/18", "18 selected")
        log = (tmp_path / "fuzz.log").read_text()
        assert '"status": 500' not in log
