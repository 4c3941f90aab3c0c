"""H1 §2 "Done when": the edge's API keeps the contract it serves (`/openapi.json`), checked by a
bounded schemathesis run against a real ``carwash-edge run`` with each role and with no key:
no 5xx but the documented 503s, no undocumented status, no response outside its schema, its
content type or its documented headers. Plus what the fuzz found, tested one by one.

The edge runs on a synthetic camera with plate reading off, so that any change the fuzz manages
to make is harmless: PUT/PATCH /api/config and the rollback stay in the run (their bodies are
documented as any JSON object; unknown keys are refused, ``data_dir`` and ``http.listen`` cannot
change), and the admin run checks afterwards that the camera source and the plate policy are
those it started with. The endless routes are left out (see ``_EXCLUDED``); the bounded waits
(``?wait_newer_than=``, ``?max_age_ms=``) stay in, bounded by short ``snapshots`` timeouts.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.api.pictures import MAX_AGE_MS, MAX_WIDTH
from edge.keys import KeyStore
from tests.conftest import EdgeFactory, Keys, client_for
from tests.support.edge_process import EdgeProcess

pytestmark = pytest.mark.integration

SOURCE = "synthetic://?width=160&height=90&fps=5"
# A fuzz client is one client: the default rate limit would answer most of it with 429
# (documented, but then the run tests the limiter, not the routes).
EDGE_TOML = f"""\
name = "contract"

[camera]
source = "{SOURCE}"

[http]
rate_limit_per_s = 10000.0
rate_limit_burst = 10000
max_connections = {(MAX_CONNECTIONS := 64)}

[snapshots]
# ?wait_newer_than= and ?max_age_ms= wait at most this long: the fuzz stays fast.
long_poll_s = 0.5
max_wait_ms = 300

[plates]
policy = "none"
"""

# Endless responses: a request runs until the client leaves (the per-request timeout would
# report each as a failure). tests/integration/test_events.py and test_api.py test them.
_EXCLUDED = ("/api/events", "/api/stream.mjpeg")
_CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,response_headers_conformance"
)
# 503 is a documented answer (no picture yet or none fresh enough, the config store not open,
# locks or plate reading off: this edge has both off); status_code_conformance still fails one
# where it is not documented, and response_schema_conformance one outside the error shape. Any
# other 5xx fails.
_SCHEMATHESIS_TOML = """\
[checks.not_a_server_error]
expected-statuses = ["2xx", "3xx", "4xx", "503"]
"""
# Per operation, after the coverage phase (edge cases of every parameter and body): a short
# fuzz. A run takes ~10-30 s on a busy 2-core machine.
_MAX_EXAMPLES = 5
_RUN_TIMEOUT_S = 150.0


@pytest.fixture(scope="module")
def contract_edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EdgeProcess, Keys]]:
    data_dir = tmp_path_factory.mktemp("contract-edge")
    keys = Keys(KeyStore.in_dir(data_dir))
    config = data_dir / "edge.toml"
    config.write_text(EDGE_TOML, encoding="utf-8")
    with EdgeProcess(data_dir, "--config", str(config), log_level="info") as edge:
        yield edge, keys


def _alive(edge: EdgeProcess) -> None:
    """The process still runs and answers its health."""
    with edge.client(timeout=10) as client:
        health = client.get("/api/health")
    assert health.status_code == 200, health.text
    assert health.json()["status"] == "ok", health.text


@pytest.mark.slow
@pytest.mark.parametrize("role", ["none", "viewer", "operator", "admin"])
def test_schemathesis_finds_nothing(
    contract_edge: tuple[EdgeProcess, Keys], role: str, tmp_path: Path
) -> None:
    edge, keys = contract_edge
    settings = tmp_path / "schemathesis.toml"
    settings.write_text(_SCHEMATHESIS_TOML, encoding="utf-8")
    auth = [] if role == "none" else ["--header", f"Authorization: Bearer {getattr(keys, role)}"]
    excluded = [arg for path in _EXCLUDED for arg in ("--exclude-path", path)]
    cmd = [
        sys.executable, "-c", "import sys; from schemathesis.cli import schemathesis;"
        " sys.exit(schemathesis())",
        "--config-file", str(settings), "--no-color",
        "run", f"{edge.url}/openapi.json", *auth, *excluded,
        "--checks", _CHECKS,
        # Stateful testing follows OpenAPI links, and the document has none worth following.
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(_MAX_EXAMPLES),
        "--workers", "2",
        "--request-timeout", "10",
        "--generation-database", "none",  # nothing written into the working tree
    ]  # fmt: skip
    try:
        run = subprocess.run(
            cmd, cwd=tmp_path, capture_output=True, text=True, timeout=_RUN_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"schemathesis ran longer than {_RUN_TIMEOUT_S} s: {err.stdout!r}")
    report = run.stdout[-12000:] + run.stderr[-3000:]
    assert run.returncode == 0, f"schemathesis as {role}:\n{report}\nedge:\n{edge.log[-3000:]}"
    assert "API Operations" in run.stdout, report  # it did run the operations
    _alive(edge)
    assert "Traceback" not in edge.log, edge.log[-5000:]
    if role == "admin":
        with edge.client(keys.admin) as client:
            config = client.get("/api/config").json()["config"]
        assert config["camera"]["source"] == SOURCE
        assert config["plates"]["policy"] == "none"


def _idle_connections(url: str, count: int) -> list[socket.socket]:
    host, port = url.removeprefix("http://").split(":")
    return [socket.create_connection((host, int(port)), timeout=5) for _ in range(count)]


def test_over_the_connection_limit_a_client_gets_a_json_503_and_the_edge_recovers(
    contract_edge: tuple[EdgeProcess, Keys],
) -> None:
    edge, _ = contract_edge
    held = _idle_connections(edge.url, MAX_CONNECTIONS)  # opened, no request (yet)
    try:
        with edge.client() as client:
            busy = client.get("/api/health")
        assert busy.status_code == 503
        assert busy.headers["content-type"] == "application/json"
        body = busy.json()
        assert body["error"] == "unavailable"
        assert "http.max_connections" in body["message"]
    finally:
        for sock in held:
            sock.close()
    # The server sees the closed sockets asynchronously: bounded polling (no event to await in
    # another process).
    deadline = time.monotonic() + 10.0
    status = 0
    with edge.client() as client:
        while time.monotonic() < deadline:
            status = client.get("/api/health").status_code
            if status == 200:
                break
            time.sleep(0.05)
    assert status == 200
    _alive(edge)


# ---------------------------------------------------------------------- found by the fuzz
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "role"),
    [("/api/carts/1/lock", "operator"), ("/api/plates/recognize", "operator")],
)  # fmt: skip
async def test_a_body_that_is_not_utf8_is_a_documented_422(
    edge_factory: EdgeFactory, keys: Keys, path: str, role: str
) -> None:
    """FastAPI answered a body it could not decode with an undocumented 400."""
    edge = edge_factory(start=False)
    headers = {**Keys.auth(getattr(keys, role)), "Content-Type": "application/json"}
    async with client_for(edge) as client:
        # Not UTF-8 (json.loads takes a BOM for UTF-16/32, and then it is a JSON error).
        answer = await client.post(path, content=b'{"request_id": "\x81"}', headers=headers)
        doc: dict[str, Any] = (await client.get("/openapi.json")).json()
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "invalid_request"
    assert body["errors"] == [{"path": "body", "reason": "not JSON text (UTF-8)"}]
    assert "request_id" not in answer.text  # the input is not echoed
    assert "422" in doc["paths"][path.replace("/1/", "/{cart_id}/")]["post"]["responses"]


@pytest.mark.asyncio
async def test_the_picture_parameters_document_their_real_bounds(
    edge_factory: EdgeFactory, keys: Keys
) -> None:
    """The document said any width up to 2**63-1; the route refuses above MAX_WIDTH, so the
    fuzz's "valid" requests were mostly refused."""
    edge = edge_factory(start=False)
    async with client_for(edge) as client:
        doc = (await client.get("/openapi.json")).json()
        too_wide = await client.get(
            "/api/snapshot", params={"width": MAX_WIDTH + 1}, headers=Keys.auth(keys.viewer)
        )
    params = {p["name"]: p["schema"] for p in doc["paths"]["/api/snapshot"]["get"]["parameters"]}
    assert params["width"]["maximum"] == MAX_WIDTH
    assert params["max_age_ms"]["maximum"] == MAX_AGE_MS
    assert too_wide.status_code == 422


def test_an_empty_put_cannot_reset_the_fuzzed_edge_to_defaults(
    contract_edge: tuple[EdgeProcess, Keys],
) -> None:
    """Why PUT/PATCH /api/config may stay in the fuzz: the one body the fuzz easily makes that
    could reset everything (``{}``: the default camera, plate reading with its models) is
    refused, since ``data_dir`` and ``http.listen`` differ from their defaults and cannot
    change."""
    edge, keys = contract_edge
    with edge.client(keys.admin) as client:
        before = client.get("/api/config").json()
        answer = client.put("/api/config", json={})
        after = client.get("/api/config").json()
    assert answer.status_code == 422, answer.text
    assert {e["path"] for e in answer.json()["errors"]} >= {"data_dir", "http.listen"}
    assert after == before
