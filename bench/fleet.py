"""bench/fleet: N simulated devices against a real ``carwash-cloud serve`` (SQLite, PostgreSQL).

The cloud runs as operators run it (``carwash-cloud serve``, one process, or ``--replicas``
processes on one PostgreSQL); the simulator is one asyncio loop (uvloop) in this process, on
the same machine, speaking HTTP/1.1 over raw asyncio streams to 127.0.0.1 (httpx costs ~10x the
CPU per request, which the server would lose). Heartbeats and ingest go over a pool of
keep-alive connections (as behind a load balancer); each long-poll holds a connection of its own.

Phases, each bounded in time:

1. set-up (not timed against a target): a database (a SQLite file, or a PostgreSQL cluster of
   its own on an ephemeral port, made and dropped here: tests/support/postgres.py), ``init``,
   N/20 sites in 10 regions, N devices written in bulk (the rows ``devices/store.enroll``
   writes, keys made by ``devices/keys.new_key``: N HTTP enrolments would take minutes and
   measure nothing new), a template with an organisation-wide assignment (every device has
   config version 1), then ``--http-enrolments`` devices enrolled through
   ``POST /api/v1/devices/enroll`` (timed);
2. heartbeats: ``POST /api/v1/devices/heartbeat`` at N/30 per second (every device every 30 s;
   ``--heartbeat-rate`` drives a rate directly), open loop: latency counts from the moment a
   request was due, so a server falling behind shows in p99 rather than hiding it;
3. ingest: ``--pushers`` devices at a time push ``--batch`` ``plate.read`` events in the edge's
   shape (gzip, as ``edge/sync/client.encode_batch`` sends them), closed loop: events/s;
4. rollout: ``--rollout-devices`` devices (default min(N, 10,000): a process may hold 20,000
   files here) long-poll ``GET /api/v1/devices/config?wait=55`` with their ETag; once the
   cloud holds them all (``carwash_cloud_config_long_polls``) an admin starts a rollout of a
   new template version (``--waves``, default 0.1 1.0); each device answers a new version as
   the edge does: it long-polls again at once while, on another connection, it reports the
   version applied and sends a heartbeat with ``cloud_config_version``. Every target device
   heartbeats once before, and every 30 s meanwhile (a silent device is judged offline).
   Measured: the time until every device runs the new version, and until the rollout says
   ``succeeded``.

Targets (issue C1): >= 5,000 ingested events/s into PostgreSQL (the reference: ThingsBoard's
published single-node figure, ~1,100 messages/s at 20 % of 4 vCPUs), heartbeat p99 <= 100 ms at
2,000 heartbeats/s, rollout to 10,000 devices within 10 s. Writes ``bench/results/fleet.json``;
exits 0 when every target that the run measured is met, 1 otherwise.

    python bench/fleet.py [--db sqlite|postgresql|both] [--devices 2000] [--heartbeat-rate R]
                          [--rollout-devices M] [--waves 0.1 1.0] [--replicas 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cloud_sync import admin  # noqa: E402
from cloud_sync.auth.passwords import HashCost  # noqa: E402
from cloud_sync.configs import assignments, templates  # noqa: E402
from cloud_sync.db import open_database  # noqa: E402
from cloud_sync.db.engine import Database  # noqa: E402
from cloud_sync.db.tables import device_configs, devices, events  # noqa: E402
from cloud_sync.devices import keys  # noqa: E402
from cloud_sync.devices import store as device_store  # noqa: E402
from cloud_sync.tenancy import add_site, find_site, new_id  # noqa: E402
from edge.sync.client import encode_batch  # noqa: E402
from fleet_common.timefmt import rfc3339  # noqa: E402
from fleet_common.wire.cloud import AssignmentRequest  # noqa: E402
from tests.support import postgres  # noqa: E402
from tests.support.cloud_process import Served, serve  # noqa: E402

ORG = "Bench Wash"
ADMIN, PASSWORD = "admin@bench.test", "bench-password"  # a throwaway database's
DEVICES_PER_SITE = 20
REGIONS = 10
TARGET_EVENTS_S = 5000.0
TARGET_HB_P99_MS = 100.0
TARGET_HB_RATE = 2000.0
TARGET_ROLLOUT_S = 10.0
TARGET_ROLLOUT_DEVICES = 10_000
THINGSBOARD_MSG_S = 1100.0  # thingsboard.io/docs/reference/performance-tests (single node)
FD_LIMIT_MARGIN = 1000
HEARTBEAT_POOL = 64
BASE_CONFIG: dict[str, Any] = {"snapshots": {"history": 10}}
NEW_CONFIG: dict[str, Any] = {"snapshots": {"history": 12}}


# ---------------------------------------------------------------------- a lean HTTP/1.1 client
class HttpError(Exception):
    pass


class Conn:
    """One keep-alive HTTP/1.1 connection: one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, local: str | None = None) -> Conn:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, local_addr=(local, 0) if local else None, limit=1 << 22
        )
        return cls(reader, writer)

    async def request(
        self, method: str, path: str, key: str, body: bytes = b"", extra: str = ""
    ) -> tuple[int, dict[str, str], bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: cloud\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n"
        )
        self.writer.write(head.encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        payload = await self.reader.readexactly(length) if length else b""
        return status, headers, payload

    def close(self) -> None:
        self.writer.close()


class Pool:
    """At most ``size`` connections to one of ``ports`` each; waiting callers queue."""

    def __init__(self, ports: list[int], size: int) -> None:
        self.ports, self.size = ports, size
        self._idle: list[Conn] = []
        self._made = 0
        self._free = asyncio.Condition()

    async def request(
        self, method: str, path: str, key: str, body: bytes = b"", extra: str = ""
    ) -> tuple[int, dict[str, str], bytes]:
        """A request on an idle connection; once more on a new one if the server had closed
        the idle one (uvicorn closes keep-alive connections idle for 5 s)."""
        for attempt in (1, 2):
            try:
                async with self.conn(fresh=attempt == 2) as conn:
                    return await conn.request(method, path, key, body, extra)
            except (OSError, asyncio.IncompleteReadError):
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    @contextlib.asynccontextmanager
    async def conn(self, fresh: bool = False) -> AsyncIterator[Conn]:
        async with self._free:
            while not self._idle and self._made >= self.size:
                await self._free.wait()
            conn = self._idle.pop() if self._idle else None
            if conn is not None and fresh:
                conn.close()
                conn = None
                self._made -= 1
            if conn is None:
                self._made += 1
        if conn is None:
            try:
                conn = await Conn.open(self.ports[self._made % len(self.ports)])
            except OSError:
                async with self._free:
                    self._made -= 1
                    self._free.notify()
                raise
        ok = False
        try:
            yield conn
            ok = True
        finally:
            async with self._free:
                if ok:
                    self._idle.append(conn)
                else:
                    conn.close()
                    self._made -= 1
                self._free.notify()

    def close(self) -> None:
        for conn in self._idle:
            conn.close()


# ---------------------------------------------------------------------- figures
def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuMeter:
    pids: list[int]
    start: float = field(default_factory=time.monotonic)
    server0: float = 0.0
    own0: float = 0.0

    def __post_init__(self) -> None:
        self.server0 = sum(cpu_s(p) for p in self.pids)
        self.own0 = time.process_time()

    def cores(self) -> dict[str, float]:
        wall = max(1e-9, time.monotonic() - self.start)
        server = sum(cpu_s(p) for p in self.pids) - self.server0
        return {
            "server_cores": round(server / wall, 2),
            "simulator_cores": round((time.process_time() - self.own0) / wall, 2),
        }


# ---------------------------------------------------------------------- set-up (blocking)
@dataclass
class Fleet:
    org_id: str
    site_ids: list[str]
    device_keys: list[tuple[str, str]]  # (device id, key), grouped by site in site order
    version_id: int = 0  # the template version the rollout brings
    setup_s: dict[str, float] = field(default_factory=dict)


def build_fleet(db: Database, n: int, http_enrolments: int) -> Fleet:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    org_id, _, _ = admin.init(db, ORG)
    admin.add_user(db, ADMIN, "admin", PASSWORD, cost=HashCost(1, 1024, 1))
    bulk = n - http_enrolments
    n_sites = max(1, -(-n // DEVICES_PER_SITE))
    with db.write() as conn:
        site_ids = [
            add_site(conn, org_id, f"Site {i:05d}", f"Region {i % REGIONS}") for i in range(n_sites)
        ]
    timings["tenancy"] = time.perf_counter() - started
    started = time.perf_counter()
    now = time.time()
    fleet = Fleet(org_id, site_ids, [])
    rows = []
    for i in range(bulk):
        device_id = new_id()
        key, digest = keys.new_key(device_id)
        fleet.device_keys.append((device_id, key))
        rows.append({
            "id": device_id, "org_id": org_id, "site_id": site_ids[i // DEVICES_PER_SITE],
            "name": f"bay-{i}", "edge_id": f"edge-{i}", "edge_version": "bench",
            "key_hash": digest, "revoked_at": None, "enrolled_at": now, "last_seen": None,
            "status": None, "stream_status": None, "config_version": None, "metrics": {},
        })  # fmt: skip
    with db.write() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(devices.insert(), rows[start : start + 5000])
    timings["devices_bulk"] = time.perf_counter() - started
    return fleet


def enrolment_tokens(db: Database, fleet: Fleet, count: int) -> list[tuple[str, str]]:
    """(token, site id) for the devices enrolled over HTTP: the fleet's last sites."""
    out = []
    with db.write() as conn:
        for i in range(len(fleet.device_keys), len(fleet.device_keys) + count):
            site = find_site(conn, fleet.site_ids[i // DEVICES_PER_SITE])
            out.append((device_store.create_token(conn, site, 3600), site.id))
    return out


def assign_base(db: Database, fleet: Fleet) -> None:
    """A template at the organisation (every device gets version 1), and the version to roll
    out; the per-device publish of version 1 is timed (the same code a rollout wave runs)."""
    now = time.time()
    with db.write() as conn:
        info = templates.add_template(
            conn, fleet.org_id, "bench", "", BASE_CONFIG, "base", "bench", now
        )
        fleet.version_id = templates.add_version(
            conn, fleet.org_id, info.id, NEW_CONFIG, "rolled out by bench/fleet", "bench", now
        ).id
    started = time.perf_counter()
    with db.write() as conn:
        body = AssignmentRequest(scope="organisation", template_version_id=info.versions[0].id)
        assignments.put(conn, fleet.org_id, body, "bench", now)
    fleet.setup_s["assign_base"] = time.perf_counter() - started


def count_rows(db: Database) -> tuple[int, int]:
    from sqlalchemy import func, select

    with db.read() as conn:
        n_events = conn.execute(select(func.count()).select_from(events)).scalar() or 0
        n_configs = conn.execute(select(func.count()).select_from(device_configs)).scalar() or 0
    return int(n_events), int(n_configs)


# ---------------------------------------------------------------------- phases (the loop)
def beat_body(cloud_version: int = 1) -> bytes:
    return json.dumps({
        "status": "ok", "stream_status": "online", "config_version": 3,
        "cloud_config_version": cloud_version, "edge_version": "bench",
        "metrics": {"fps": 10.0, "frame_age_ms": 80.0, "cpu_temp_c": 51.5, "outbox_rows": 0.0},
    }).encode()  # fmt: skip


async def phase_enrol(
    ports: list[int], tokens: list[tuple[str, str]], fleet: Fleet
) -> dict[str, Any]:
    pool = Pool(ports, 8)
    lat: list[float] = []
    failures = 0
    got_keys: list[tuple[str, str] | None] = [None] * len(tokens)

    async def one(token: str, i: int) -> None:
        nonlocal failures
        body = json.dumps({"token": token, "name": f"http-bay-{i}", "edge_version": "bench"})
        started = time.perf_counter()
        status, _, payload = await pool.request(
            "POST", "/api/v1/devices/enroll", "-", body.encode(),
            "Content-Type: application/json\r\n",
        )  # fmt: skip
        lat.append(time.perf_counter() - started)
        if status != 200:
            failures += 1
            return
        got = json.loads(payload)
        got_keys[i] = (got["device_id"], got["device_key"])

    started = time.perf_counter()
    async with asyncio.timeout(120):
        await asyncio.gather(*(one(t, i) for i, (t, _) in enumerate(tokens)))
    wall = time.perf_counter() - started
    pool.close()
    fleet.device_keys += [k for k in got_keys if k is not None]  # in site order
    return {"enrolled": len(tokens) - failures, "failures": failures, "wall_s": round(wall, 2),
            "per_s": round(len(tokens) / wall, 1) if tokens else 0.0,
            "p50_ms": round(pct(lat, 0.5) * 1000, 1),
            "p99_ms": round(pct(lat, 0.99) * 1000, 1)}  # fmt: skip


async def phase_heartbeats(
    ports: list[int], fleet: Fleet, rate: float, seconds: float, pids: list[int]
) -> dict[str, Any]:
    """Open loop at ``rate``: request i is due at t0 + i/rate, latency counts from then."""
    pool = Pool(ports, HEARTBEAT_POOL)
    body = beat_body()
    lat: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    devices_cycle = itertools.cycle(fleet.device_keys)
    tasks: set[asyncio.Task[None]] = set()

    async def one(key: str, due: float) -> None:
        nonlocal errors
        try:
            status, _, _ = await pool.request(
                "POST", "/api/v1/devices/heartbeat", key, body,
                "Content-Type: application/json\r\n",
            )  # fmt: skip
        except (OSError, asyncio.IncompleteReadError, HttpError):
            errors += 1
            return
        lat.append(time.perf_counter() - due)
        statuses[status] = statuses.get(status, 0) + 1

    meter = CpuMeter(pids)
    t0 = time.perf_counter()
    sent = 0
    total = int(rate * seconds)
    while sent < total:
        now = time.perf_counter()
        due_count = min(total, int((now - t0) * rate) + 1)
        while sent < due_count:
            _, key = next(devices_cycle)
            task = asyncio.create_task(one(key, t0 + sent / rate))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        await asyncio.sleep(0.002)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(30):
            while tasks:
                await asyncio.wait(set(tasks))
    wall = time.perf_counter() - t0
    cores = meter.cores()
    for task in tasks:
        task.cancel()
    pool.close()
    done = sum(statuses.values())
    return {
        "rate_asked": round(rate, 1), "seconds": seconds, "sent": sent, "answered": done,
        "statuses": statuses, "errors": errors, "achieved_per_s": round(done / wall, 1),
        "p50_ms": round(pct(lat, 0.5) * 1000, 2), "p99_ms": round(pct(lat, 0.99) * 1000, 2),
        "max_ms": round(max(lat, default=float("nan")) * 1000, 1), **cores,
    }  # fmt: skip


def plate_event(device_n: int, seq: int, ts: float) -> dict[str, Any]:
    """One outbox row as the edge's sync client sends it (edge/sync/outbox.to_wire)."""
    plate = f"B{device_n % 100:02d}{seq % 10000:04d}"
    return {
        "key": uuid.uuid4().hex, "seq": seq, "kind": "plate.read", "topic": "plates",
        "ts": rfc3339(ts),
        "payload": {
            "id": seq, "plate": plate, "text": plate, "score": 0.91, "dscore": 0.88,
            "recognizer": "local", "trigger": "motion", "snapshot_seq": seq * 7,
            "captured_at": rfc3339(ts),
            "box": {"xmin": 812, "ymin": 604, "xmax": 1010, "ymax": 660},
            "region": "de", "vehicle": {"type": "Sedan", "score": 0.8}, "format": "eu",
            "candidates": [{"plate": plate, "score": 0.91}], "member": None,
            "latency_ms": 42.0, "crop_url": f"/api/plates/{seq}/crop.jpg",
        },
    }  # fmt: skip


async def phase_ingest(
    ports: list[int], fleet: Fleet, pushers: int, batch: int, seconds: float, pids: list[int]
) -> dict[str, Any]:
    pool = Pool(ports, pushers)
    accepted = duplicates = 0
    lat: list[float] = []
    statuses: dict[int, int] = {}
    order = itertools.cycle(range(len(fleet.device_keys)))
    seqs = [0] * len(fleet.device_keys)
    meter = CpuMeter(pids)
    t0 = time.perf_counter()
    deadline = t0 + seconds

    async def pusher() -> None:
        nonlocal accepted, duplicates
        while time.perf_counter() < deadline:
            n = next(order)
            _, key = fleet.device_keys[n]
            now = time.time()
            rows = [plate_event(n, seqs[n] + i + 1, now - 1) for i in range(batch)]
            seqs[n] += batch
            body = encode_batch(rows)
            started = time.perf_counter()
            status, _, payload = await pool.request(
                "POST", "/api/v1/ingest", key, body,
                "Content-Type: application/json\r\nContent-Encoding: gzip\r\n",
            )  # fmt: skip
            lat.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                got = json.loads(payload)
                accepted += got["accepted"]
                duplicates += got["duplicates"]

    async with asyncio.timeout(seconds + 60):
        await asyncio.gather(*(pusher() for _ in range(pushers)))
    wall = time.perf_counter() - t0
    cores = meter.cores()
    pool.close()
    return {
        "pushers": pushers, "batch": batch, "wall_s": round(wall, 2), "accepted": accepted,
        "duplicates": duplicates, "statuses": statuses, "events_per_s": round(accepted / wall, 1),
        "batch_p50_ms": round(pct(lat, 0.5) * 1000, 1),
        "batch_p99_ms": round(pct(lat, 0.99) * 1000, 1), **cores,
    }  # fmt: skip


async def admin_token(port: int) -> str:
    conn = await Conn.open(port)
    body = json.dumps({"email": ADMIN, "password": PASSWORD}).encode()
    status, _, payload = await conn.request(
        "POST", "/api/v1/auth/login", "-", body, "Content-Type: application/json\r\n"
    )
    conn.close()
    if status != 200:
        raise HttpError(f"login: {status} {payload[:200]!r}")
    return str(json.loads(payload)["access_token"])


async def metric(port: int, name: str) -> float:
    conn = await Conn.open(port)
    try:
        _, _, payload = await conn.request("GET", "/metrics", "-")
    finally:
        conn.close()
    for line in payload.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


async def phase_rollout(
    ports: list[int], fleet: Fleet, count: int, waves: list[float], pids: list[int]
) -> dict[str, Any]:
    """``count`` devices long-poll; a rollout to them; until each runs it, and it succeeded."""
    target = fleet.device_keys[:count]
    whole = count == len(fleet.device_keys)
    sites = sorted({fleet.site_ids[i // DEVICES_PER_SITE] for i in range(count)})
    beats = Pool(ports, HEARTBEAT_POOL)
    received: dict[str, float] = {}
    reported: dict[str, float] = {}
    t_start = [0.0]
    problems: list[str] = []
    running: dict[str, int] = {}  # device key → the config version it runs (1 before)
    background: set[asyncio.Task[None]] = set()
    reconnects = 0
    everyone = asyncio.Event()
    stop = asyncio.Event()
    locals_ = [f"127.0.0.{1 + i // 20000}" for i in range(count)]  # source ports per address

    async def report(device_id: str, key: str, version: int) -> None:
        body = json.dumps({"version": version, "outcome": "applied"}).encode()
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await beats.request("POST", "/api/v1/devices/config/report", key, body,
                                "Content-Type: application/json\r\n")  # fmt: skip
            await beats.request("POST", "/api/v1/devices/heartbeat", key, beat_body(version),
                                "Content-Type: application/json\r\n")  # fmt: skip
            reported[device_id] = time.perf_counter() - t_start[0]
            if len(reported) == count:
                everyone.set()

    async def device(i: int, device_id: str, key: str) -> None:
        """An edge's config loop: long-poll; on a new version report it, heartbeat, again.
        A dropped connection is reopened (as the edge's client does), and counted."""
        nonlocal reconnects
        version = 1
        conn: Conn | None = None
        failures = 0
        while not stop.is_set():
            try:
                if conn is None:
                    conn = await Conn.open(ports[i % len(ports)], locals_[i])
                status, _, payload = await conn.request(
                    "GET", "/api/v1/devices/config?wait=55", key,
                    extra=f'If-None-Match: "{version}"\r\n',
                )  # fmt: skip
                failures = 0
                if status == 304:
                    continue
                if status != 200:
                    problems.append(f"config {status}: {payload[:100]!r}")
                    return
                version = running[key] = int(json.loads(payload)["version"])
                received[device_id] = time.perf_counter() - t_start[0]
                # As the edge does: report and heartbeat on their own connection, while the
                # config loop long-polls again at once.
                task = asyncio.create_task(report(device_id, key, version))
                background.add(task)
                task.add_done_callback(background.discard)
            except (OSError, asyncio.IncompleteReadError) as err:
                if conn is not None:
                    conn.close()
                    conn = None
                if stop.is_set():
                    break
                reconnects += 1
                failures += 1
                if failures >= 5:
                    problems.append(f"{type(err).__name__}: {err}")
                    return
                await asyncio.sleep(0.2 * failures)
        if conn is not None:
            conn.close()

    # Every target device is online first (a heartbeat within 3 intervals), as a real fleet
    # beating every 30 s is: the rollout judges a silent device "offline".
    started = time.perf_counter()
    online = asyncio.Semaphore(HEARTBEAT_POOL)

    async def beat_once(key: str) -> None:
        async with online:
            body = beat_body(running.get(key, 1))
            await beats.request("POST", "/api/v1/devices/heartbeat", key, body,
                                "Content-Type: application/json\r\n")  # fmt: skip

    async with asyncio.timeout(120):
        await asyncio.gather(*(beat_once(k) for _, k in target))
    online_s = time.perf_counter() - started

    async def keep_beating() -> None:
        """Each target device every 30 s meanwhile (count/30 a second), as the fleet does."""
        order = itertools.cycle(target)
        period = 30.0 / count
        next_at = time.perf_counter()
        while not stop.is_set():
            _, key = next(order)
            task = asyncio.create_task(beat_once(key))
            background.add(task)
            task.add_done_callback(background.discard)
            next_at += period
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    beater = asyncio.create_task(keep_beating())
    opened = time.perf_counter()
    runners = []
    for start in range(0, count, 500):  # open the long-polls in steps, as edges boot
        runners += [
            asyncio.create_task(device(i, d, k))
            for i, (d, k) in enumerate(target[start : start + 500], start)
        ]
        await asyncio.sleep(0.05)
    held = 0.0
    async with asyncio.timeout(120):
        while held < count and not problems:
            await asyncio.sleep(0.25)
            held = sum([await metric(p, "carwash_cloud_config_long_polls") for p in ports])
    open_s = time.perf_counter() - opened
    token = await admin_token(ports[0])
    admin_conn = await Conn.open(ports[0])
    body = {
        "template_version_id": fleet.version_id, "waves": waves, "device_timeout_s": 600,
        "target": {"organisation": True} if whole else {"sites": sites},
    }  # fmt: skip
    if not whole and len(sites) * DEVICES_PER_SITE != count:
        raise SystemExit("--rollout-devices must be a multiple of 20 (whole sites)")
    meter = CpuMeter(pids)
    t_start[0] = time.perf_counter()
    status, _, payload = await admin_conn.request(
        "POST", "/api/v1/rollouts", token, json.dumps(body).encode(),
        "Content-Type: application/json\r\n",
    )  # fmt: skip
    start_s = time.perf_counter() - t_start[0]
    if status != 201:
        raise HttpError(f"rollout: {status} {payload[:300]!r}")
    rollout_id = json.loads(payload)["id"]
    state, reason, succeeded_s = "running", "", None
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(120):
            while state in ("running", "paused"):
                await asyncio.sleep(0.5)
                status, _, payload = await admin_conn.request(
                    "GET", f"/api/v1/rollouts/{rollout_id}", token
                )
                info = json.loads(payload)
                state, reason = info["state"], info["reason"]
            succeeded_s = time.perf_counter() - t_start[0]
            await asyncio.wait_for(everyone.wait(), 10)
    cores = meter.cores()
    stop.set()
    for task in [*runners, beater, *background]:
        task.cancel()
    await asyncio.gather(*runners, beater, *background, return_exceptions=True)
    admin_conn.close()
    beats.close()
    got = sorted(received.values())
    return {
        "devices": count, "waves": waves, "long_polls_held": held, "open_s": round(open_s, 1),
        "start_request_s": round(start_s, 2), "state": state, "reason": reason,
        "received": len(got), "all_received_s": round(got[-1], 2) if len(got) == count else None,
        "received_p50_s": round(statistics.median(got), 2) if got else None,
        "all_reported_s": round(max(reported.values()), 2) if len(reported) == count else None,
        "succeeded_s": round(succeeded_s, 2) if succeeded_s and state == "succeeded" else None,
        "problems": problems[:5], "reconnects": reconnects, "online_s": round(online_s, 1),
        **cores,
    }  # fmt: skip


# ---------------------------------------------------------------------- one database
@contextlib.contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'cloud.db'}"
        return
    reason = postgres.missing()
    if reason is not None:
        raise SystemExit(f"bench/fleet --db postgresql: {reason}")
    with postgres.cluster("carwash_bench") as cluster:
        cluster.psql("CREATE DATABASE fleet")
        yield cluster.url("fleet")


def run_one(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    n = args.devices
    with (
        tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp,
        database(kind, Path(tmp)) as url,
    ):
        db = open_database(url)
        fleet = build_fleet(db, n, args.http_enrolments)
        tokens = enrolment_tokens(db, fleet, args.http_enrolments)
        replicas = args.replicas if kind == "postgresql" else 1
        with contextlib.ExitStack() as stack:
            profile = ["-m", "cProfile", "-o", args.profile_server] if args.profile_server else []
            served: list[Served] = [
                stack.enter_context(serve(url, python_args=profile)) for _ in range(replicas)
            ]
            ports = [int(s.url.rsplit(":", 1)[1]) for s in served]
            pids = [s.pid for s in served]
            result: dict[str, Any] = {"db": kind, "devices": n, "replicas": replicas}

            async def phases() -> None:
                result["enrol_http"] = await phase_enrol(ports, tokens, fleet)
                await asyncio.to_thread(assign_base, db, fleet)
                result["setup_s"] = {k: round(v, 2) for k, v in fleet.setup_s.items()}
                rate = args.heartbeat_rate or n / 30.0
                if "heartbeats" in args.phases:
                    result["heartbeats"] = await phase_heartbeats(
                        ports, fleet, rate, args.heartbeat_seconds, pids
                    )
                if "ingest" in args.phases:
                    result["ingest"] = await phase_ingest(
                        ports, fleet, args.pushers, args.batch, args.ingest_seconds, pids
                    )
                if "rollout" in args.phases:
                    count = min(args.rollout_devices or min(n, TARGET_ROLLOUT_DEVICES), n)
                    result["rollout"] = await phase_rollout(ports, fleet, count, args.waves, pids)

            uvloop.run(phases())
        stored_events, configs = count_rows(db)
        result["stored_events"] = stored_events
        result["device_configs"] = configs
        result["server_tracebacks"] = sum("Traceback" in line for s in served for line in s.lines)
        result["server_warnings"] = [
            line.rstrip()
            for s in served
            for line in s.lines
            if " WARNING " in line or " ERROR " in line
        ][:20]
        result["server_rollout_log"] = [
            line.rstrip() for s in served for line in s.lines if "cloud.rollouts" in line
        ][:20]
        db.dispose()
    return result


def verdicts(r: dict[str, Any]) -> dict[str, bool | None]:
    """True met, False missed, None not measured by this run (too few devices, SQLite...)."""
    hb, ing, ro = r.get("heartbeats"), r.get("ingest"), r.get("rollout")
    out: dict[str, bool | None] = {
        "heartbeat p99 <= 100 ms at 2,000/s": (
            hb["p99_ms"] <= TARGET_HB_P99_MS and hb["achieved_per_s"] >= 0.95 * TARGET_HB_RATE
        ) if hb and hb["rate_asked"] >= TARGET_HB_RATE else None,
        "ingest >= 5,000 events/s (PostgreSQL)": ing["events_per_s"] >= TARGET_EVENTS_S
        if ing and r["db"] == "postgresql" else None,
        "rollout to 10,000 devices within 10 s": (
            ro["all_received_s"] is not None and ro["all_received_s"] <= TARGET_ROLLOUT_S
            and ro["state"] == "succeeded"
        ) if ro and ro["devices"] >= TARGET_ROLLOUT_DEVICES else None,
        "every event stored once": r["stored_events"] == (ing["accepted"] if ing else 0),
        "rollout succeeded": ro["state"] == "succeeded" if ro else None,
        "no traceback in the server's log": r["server_tracebacks"] == 0,
    }  # fmt: skip
    return out


def report(r: dict[str, Any]) -> None:
    hb, ing, ro, en = r.get("heartbeats"), r.get("ingest"), r.get("rollout"), r["enrol_http"]
    print(f"\nbench/fleet on {r['db']}: {r['devices']:,} devices, {r['replicas']} serve "
          f"process(es), simulator in this process, {os.cpu_count()} cores")  # fmt: skip
    print(f"  set-up: {r['devices'] - en['enrolled']:,} devices in bulk; base config to all "
          f"(one assignment) {r['setup_s']['assign_base']:.2f} s")  # fmt: skip
    print(f"  enrolment over HTTP: {en['enrolled']} devices, {en['per_s']:.0f}/s, "
          f"p50 {en['p50_ms']:.1f} ms, p99 {en['p99_ms']:.1f} ms")  # fmt: skip
    if hb:
        print(f"  heartbeats: asked {hb['rate_asked']:,.0f}/s for {hb['seconds']:g} s, achieved "
          f"{hb['achieved_per_s']:,.0f}/s; p50 {hb['p50_ms']:.1f} ms, p99 {hb['p99_ms']:.1f} ms "
          f"(target 100 ms: {hb['p99_ms'] / TARGET_HB_P99_MS:.2f}x), max {hb['max_ms']:.0f} ms; "
          f"statuses {hb['statuses']}, errors {hb['errors']}; server {hb['server_cores']} cores, "
          f"simulator {hb['simulator_cores']}")  # fmt: skip
    if ing:
        print(f"  ingest: {ing['events_per_s']:,.0f} events/s ({ing['pushers']} pushers x "
          f"{ing['batch']}-event batches, {ing['wall_s']:.0f} s; {ing['accepted']:,} stored, "
          f"{r['stored_events']:,} in the table); "
          f"{ing['events_per_s'] / TARGET_EVENTS_S:.2f}x the target, "
          f"{ing['events_per_s'] / THINGSBOARD_MSG_S:.1f}x ThingsBoard's 1,100 msg/s; batch p50 "
          f"{ing['batch_p50_ms']:.0f} ms, p99 {ing['batch_p99_ms']:.0f} ms; statuses "
          f"{ing['statuses']}; server {ing['server_cores']} cores, simulator "
          f"{ing['simulator_cores']}")  # fmt: skip
    if ro:
        print(f"  rollout to {ro['devices']:,} long-polling devices, waves {ro['waves']}: "
          f"{ro['long_polls_held']:,.0f} long-polls held (opened in {ro['open_s']:.1f} s); "
          f"start request {ro['start_request_s']:.2f} s; every device runs it after "
          f"{ro['all_received_s']} s (median {ro['received_p50_s']} s, reported "
          f"{ro['all_reported_s']} s); rollout {ro['state']} after {ro['succeeded_s']} s "
          f"({ro['reason']}); server {ro['server_cores']} cores, simulator "
          f"{ro['simulator_cores']}")  # fmt: skip
    if ro and ro["all_received_s"] and ro["devices"] >= TARGET_ROLLOUT_DEVICES:
        print(f"    (target 10 s for 10,000: {ro['all_received_s'] / TARGET_ROLLOUT_S:.2f}x)")
    if ro and (ro["problems"] or ro["reconnects"]):
        print(f"    long-poll connections reopened: {ro['reconnects']}; problems: {ro['problems']}")
    for name, ok in r["verdicts"].items():
        print(f"  {'n/a ' if ok is None else 'ok  ' if ok else 'FAIL'} {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--heartbeat-rate", type=float, default=None,
                        help="heartbeats per second (default: devices / 30)")  # fmt: skip
    parser.add_argument("--heartbeat-seconds", type=float, default=20.0)
    parser.add_argument("--pushers", type=int, default=8, help="ingest batches in flight")
    parser.add_argument(
        "--batch", type=int, default=200, help="events per ingest batch (edge: 200)"
    )
    parser.add_argument("--ingest-seconds", type=float, default=15.0)
    parser.add_argument("--rollout-devices", type=int, default=None,
                        help="long-polling devices, the target (min(N, 10000))")  # fmt: skip
    parser.add_argument("--waves", type=float, nargs="+", default=[0.1, 1.0])
    parser.add_argument("--replicas", type=int, default=1, help="serve processes (PostgreSQL)")
    parser.add_argument("--http-enrolments", type=int, default=100)
    parser.add_argument("--profile-server", metavar="FILE", default=None,
                        help="serve under cProfile (loop thread), stats to FILE")  # fmt: skip
    parser.add_argument("--phases", nargs="+", default=["heartbeats", "ingest", "rollout"],
                        choices=("heartbeats", "ingest", "rollout"))  # fmt: skip
    args = parser.parse_args()
    if not 1 <= args.http_enrolments < args.devices:
        parser.error("--http-enrolments must be at least 1 and below --devices")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the serve processes inherit it
    wanted = min(args.rollout_devices or TARGET_ROLLOUT_DEVICES, args.devices)
    if wanted + HEARTBEAT_POOL + FD_LIMIT_MARGIN > hard:
        parser.error(f"--rollout-devices {wanted}: each long-poll holds a file here and in the "
                     f"server, and this machine allows {hard} per process")  # fmt: skip
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results = []
    for kind in kinds:
        r = run_one(kind, args)
        r["verdicts"] = verdicts(r)
        report(r)
        results.append(r)
    met = all(ok is not False for r in results for ok in r["verdicts"].values())
    print("\ntargets met" if met else "\ntargets NOT met")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "fleet.json").write_text(json.dumps({
        "args": vars(args), "load": os.getloadavg(), "results": results, "met": met,
    }, indent=2))  # fmt: skip
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
