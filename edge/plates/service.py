"""The plate service of one bay: which reader reads, when, and what becomes of a read.

- **Policy** (``plates.policy``, read live): ``local`` (offline reader), ``cloud`` (Plate
  Recognizer), ``local_then_cloud`` (the cloud only when the local read scores below
  ``cloud_below_score``), ``none``; ``auto`` is local until a cloud token is configured.
- **Triggers**: the handshake (:meth:`PlateService.recognize_now`, ``POST
  /api/plates/recognize``); vehicle presence (:mod:`.motion`: one arrival is one *episode*, read
  until a confident plate or the car leaves, then stored once); an optional interval.
- **Dedup** (:mod:`.dedup`): the same plate within ``dedup_window_s`` is one read — a repeat
  answers with the stored read and sends no event. A stationary car is not sent to the cloud
  again: while the picture has not changed since the last cloud call, its answer is reused.
- **Members** (:mod:`.members`): the best read and its candidates matched against the list.
- **Storage and events**: each new read goes to the store with its crop, its ``plate.read`` event
  and the event's outbox row in one transaction; a member match also sends ``member.recognized``.

Nothing here blocks the loop: readers run in their own thread or over async HTTP, JPEG work in
worker threads, the store through :meth:`EventLog.emit_written`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from edge.errors import EdgeError
from edge.plates.dedup import Deduper
from edge.plates.members import MemberMatch, MembersFile
from edge.plates.store import add_read, get_read
from edge.plates.types import (
    Box,
    Picture,
    PlateRead,
    Recognition,
    Recognizer,
    RecognizerError,
    RecognizerUnavailable,
)
from fleet_common.timefmt import rfc3339
from fleet_common.wire.edge import MemberInfo, PlateBox, PlateCandidate, VehicleInfo
from fleet_common.wire.events import (
    PLATE_READ,
    TOPIC_EVENTS,
    TOPIC_PLATES,
    MemberRecognizedPayload,
    PlateReadPayload,
    dump_payload,
)

if TYPE_CHECKING:
    from edge.camera import FrameSource
    from edge.config import EdgeConfig, PlatesConfig
    from edge.events import EventLog
    from edge.metrics import EdgeMetrics
    from edge.plates.motion import PresenceDetector
    from edge.snapshots.cache import Snapshot, SnapshotCache
    from edge.store import Store
    from fleet_common.wire.edge import ComponentHealth

log = logging.getLogger("edge.plates")

Trigger = Literal["handshake", "motion", "interval"]
EPISODE_READ_HZ = 2.0  # reads per second while a vehicle is in the bay and not yet read
SAME_SCENE_LEVEL = 6.0  # mean grey difference (0..255) under which two pictures show one scene


class PlatesError(EdgeError):
    """The handshake could not be answered: ``code`` (``plates_disabled``, ``no_frame``,
    ``timeout``, ``recognizer_failed``, ``recognizer_unavailable``) and a sentence."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


@dataclass
class Outcome:
    """What one attempt gave: the read as stored (or the earlier stored one), or None."""

    payload: dict[str, Any] | None
    duplicate: bool
    snapshot: Snapshot
    recognizers: list[str]
    note: str | None = None


@dataclass
class _Episode:
    """One vehicle in the bay, from arrival to leaving (motion trigger)."""

    started: float
    best: tuple[Recognition, Picture] | None = None
    done: bool = False  # a read was stored (or found to be a duplicate)
    last_seq: int = -1
    last_try: float = 0.0


@dataclass
class _CloudMemo:
    thumb: NDArray[np.uint8]
    recognition: Recognition
    at: float


class PlateParts(Protocol):
    """What the plate service uses of the edge: the running config (read each time, as the
    live config edits it in place), the camera and its pictures, the store, the event log and
    the metrics. :class:`edge.service.Edge` is one; tests may pass their own."""

    config: EdgeConfig
    metrics: EdgeMetrics
    source: FrameSource
    cache: SnapshotCache
    store: Store | None
    events: EventLog
    device_id: str


@dataclass
class PlateService:
    edge: PlateParts
    local: Recognizer | None = None
    cloud: Recognizer | None = None
    detector: PresenceDetector | None = None
    members: MembersFile | None = None
    dedup: Deduper = field(default_factory=lambda: Deduper(120.0))
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _episode: _Episode | None = None
    _cloud_memo: _CloudMemo | None = None
    _read_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _members_path: str | None = None
    _memory_ids: int = 0

    @property
    def config(self) -> PlatesConfig:
        return self.edge.config.plates  # edited in place by the live config: read each time

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        cfg = self.config
        self.dedup = Deduper(cfg.dedup_window_s)
        self.local = self._make_local()
        self.cloud = self._make_cloud()
        self.detector = None  # made at the first motion step: OpenCV only when plates are read
        await self.refresh_members()  # loaded before the first car, off the loop
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._motion_loop(), name="plates-motion"),
            loop.create_task(self._interval_loop(), name="plates-interval"),
        ]
        if cfg.effective_policy() in ("local", "local_then_cloud"):
            # The models load (~1.3 s) in the reader's thread now, not on the first car.
            self._tasks.append(loop.create_task(self._warm_up(), name="plates-warm-up"))
        log.info("plates: policy %s", cfg.effective_policy())

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        async with self._read_lock:  # a read in progress finishes (and is stored) first
            for reader in (self.local, self.cloud):
                if reader is not None:
                    await reader.aclose()
            self.local = self.cloud = None

    async def _warm_up(self) -> None:
        local = self.local
        warm = getattr(local, "warm_up", None)
        if warm is None:
            return
        try:
            await warm()
        except RecognizerError as err:  # the reader says so in its status and the health
            log.error("plates: the offline reader cannot load its models: %s", err)  # noqa: TRY400

    async def _release_unused(self) -> None:
        """The offline reader's models loaded while the policy (changed live) no longer uses
        them: drop them (they load again on the next read the policy asks of them)."""
        if self.config.effective_policy() in ("local", "local_then_cloud"):
            return
        release = getattr(self.local, "release", None)
        if release is not None:
            await release()

    def _make_local(self) -> Recognizer:
        from edge.plates.local import LocalReader

        return LocalReader(self.config, self.edge.metrics)

    def _make_cloud(self) -> Recognizer | None:
        cfg = self.config
        if cfg.cloud.token is None:
            return None
        from edge.plates.cloud import PlateRecognizerCloud
        from edge.plates.normalize import fit_plate

        return PlateRecognizerCloud(
            cfg.cloud, normalize=lambda text: fit_plate(text, self.config.formats),
            metrics=self.edge.metrics,
        )  # fmt: skip

    def _sync_members(self) -> None:
        """Follow ``members_file`` (hot): a new path opens a new file, none drops the list."""
        path = self.config.members_file
        key = str(path) if path is not None else None
        if key != self._members_path:
            self._members_path = key
            self.members = MembersFile(path) if path is not None else None
        self.dedup.window_s = self.config.dedup_window_s

    # ------------------------------------------------------------------ the handshake
    async def recognize_now(
        self, *, max_age_ms: int | None = None, timeout_s: float | None = None
    ) -> Outcome:
        """Read the bay now: a picture at most ``max_age_ms`` old, read and stored (or matched
        to the same plate's earlier read). Raises :class:`PlatesError`."""
        cfg = self.config
        if cfg.effective_policy() == "none":
            raise PlatesError("plates_disabled", "plate reading is off (plates.policy = none)")
        started = time.monotonic()
        deadline = started + (timeout_s if timeout_s is not None else cfg.handshake_timeout_s)
        max_age = cfg.handshake_max_age_ms if max_age_ms is None else max_age_ms
        self.edge.source.request_fresh()
        snap = await self.edge.cache.wait_fresh(max_age, max(0.0, deadline - time.monotonic()))
        if snap is None:
            latest = self.edge.cache.latest
            age = f"{latest.age_ms():.0f} ms old" if latest is not None else "none yet"
            raise PlatesError("no_frame", f"no picture at most {max_age} ms old (newest: {age})")
        try:
            return await self.read_snapshot(snap, "handshake", deadline)
        finally:
            self.edge.metrics.plate_handshake_seconds.observe(time.monotonic() - started)

    # ------------------------------------------------------------------ one attempt
    async def read_snapshot(self, snap: Snapshot, trigger: Trigger, deadline: float) -> Outcome:
        """Recognise ``snap`` by the policy, then store the best read (unless a duplicate)."""
        picture = _picture(snap)
        async with self._read_lock:
            recognition, used, note = await self._recognize(picture, deadline)
        return await self._conclude(recognition, picture, snap, trigger, used, note)

    async def _recognize(
        self, picture: Picture, deadline: float
    ) -> tuple[Recognition | None, list[str], str | None]:
        """The policy: which readers to ask, in order; the best recognition, who was asked."""
        policy = self.config.effective_policy()
        used: list[str] = []
        result: Recognition | None = None
        note: str | None = None
        if policy in ("local", "local_then_cloud"):
            if self.local is None:
                raise PlatesError("plates_disabled", "the plate service is not running")
            used.append(self.local.name)
            result = await self._call(self.local, picture, deadline)
        if policy == "cloud" or (policy == "local_then_cloud" and self._wants_cloud(result)):
            if self.cloud is None:
                if policy == "cloud":
                    raise PlatesError(
                        "recognizer_unavailable", "plates.policy is cloud but no token is set"
                    )
                return result, used, note
            used.append(self.cloud.name)
            try:
                result = await self._cloud_read(picture, deadline, fallback=result)
            except RecognizerError as err:
                if policy == "cloud":
                    code = "recognizer_unavailable"
                    if not isinstance(err, RecognizerUnavailable):
                        code = "timeout" if err.code == "timeout" else "recognizer_failed"
                    raise PlatesError(code, f"Plate Recognizer: {err.message}") from err
                note = f"the cloud was not used ({err.code}: {err.message}); local read kept"
                log.info("plates: %s", note)
        return result, used, note

    def _wants_cloud(self, local: Recognition | None) -> bool:
        best = local.best if local is not None else None
        return best is None or best.score < self.config.cloud_below_score

    async def _call(self, reader: Recognizer, picture: Picture, deadline: float) -> Recognition:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise PlatesError("timeout", "no time left to read the plate")
        try:
            async with asyncio.timeout(remaining):  # not wait_for: it can swallow a cancel (3.11)
                return await reader.recognize(
                    picture, camera_id=self._camera_id(), deadline_s=remaining
                )
        except TimeoutError:
            raise PlatesError("timeout", f"{reader.name} did not answer in time") from None
        except RecognizerError as err:
            if isinstance(err, RecognizerUnavailable) or reader is self.cloud:
                raise
            raise PlatesError("recognizer_failed", f"{reader.name}: {err.message}") from err

    async def _cloud_read(
        self, picture: Picture, deadline: float, *, fallback: Recognition | None
    ) -> Recognition:
        """Ask the cloud, unless it already read this very scene (a stationary car)."""
        if self.cloud is None:
            raise RecognizerUnavailable("not_configured", "no Plate Recognizer token is set")
        thumb = await asyncio.to_thread(_thumb, picture)
        memo, now = self._cloud_memo, time.monotonic()
        if (
            memo is not None
            and now - memo.at <= max(self.config.dedup_window_s, 1.0)
            and _scene_distance(memo.thumb, thumb) < SAME_SCENE_LEVEL
        ):
            return memo.recognition
        result = await self._call(self.cloud, picture, deadline)
        self._cloud_memo = _CloudMemo(thumb, result, now)
        if result.best is None and fallback is not None and fallback.best is not None:
            return fallback  # the cloud saw no plate where the local reader did
        return result

    def _camera_id(self) -> str:
        return self.edge.device_id or self.edge.config.name

    # ------------------------------------------------------------------ storing
    async def _conclude(
        self,
        recognition: Recognition | None,
        picture: Picture,
        snap: Snapshot,
        trigger: Trigger,
        used: list[str],
        note: str | None,
    ) -> Outcome:
        best = recognition.best if recognition is not None else None
        if recognition is None or best is None or best.score < self.config.min_score:
            self.edge.metrics.plate_no_read.labels(trigger).inc()
            why = "no plate found" if best is None else f"best read scored {best.score:.2f}"
            return Outcome(None, False, snap, used, note or why)
        self._sync_members()
        now = time.time()
        recent = self.dedup.check(best.plate, now, candidates=[c.plate for c in best.candidates])
        if recent is not None:
            self.edge.metrics.plate_duplicates.inc()
            earlier = await self._stored_payload(recent.read_id)
            return Outcome(earlier, True, snap, used, note)
        match = await asyncio.to_thread(self._match, best)  # a big list loads in its thread
        payload = await self._store(recognition, best, picture, trigger, match)
        self.dedup.remember(best.plate, now, int(payload["id"]))
        return Outcome(payload, False, snap, used, note)

    def _match(self, read: PlateRead) -> MemberMatch | None:
        """The member the read belongs to. Blocking (the list is re-read when its file changed,
        the fuzzy index built on first use): call it in a worker thread."""
        if self.members is None:
            return None
        listed = self.members.current()
        candidates = [(c.plate, c.score) for c in read.candidates]
        match = listed.match(read.plate, candidates, self.config.member_max_distance)
        if match is not None:
            self.edge.metrics.plate_members.labels(match.match).inc()
        return match

    async def _stored_payload(self, read_id: int) -> dict[str, Any] | None:
        store = self.edge.store
        if store is None:
            return None
        stored = await asyncio.to_thread(get_read, store, read_id)
        return stored.payload if stored is not None else None

    async def _store(
        self,
        recognition: Recognition,
        best: PlateRead,
        picture: Picture,
        trigger: Trigger,
        match: MemberMatch | None,
    ) -> dict[str, Any]:

        crop = await asyncio.to_thread(_crop_jpeg, picture, best)
        member = _member_info(match)

        def read_payload(read_id: int, crop_url: str | None) -> dict[str, Any]:
            return dump_payload(PlateReadPayload(
                id=read_id, plate=best.plate, text=best.text, score=round(best.score, 4),
                dscore=round(best.dscore, 4), recognizer=best.recognizer, trigger=trigger,
                snapshot_seq=picture.seq, captured_at=rfc3339(picture.captured_at),
                box=_box(best.box), region=best.region, vehicle=_vehicle_info(best),
                format=best.format,
                candidates=[PlateCandidate(plate=c.plate, score=round(c.score, 4))
                            for c in best.candidates],
                member=member, latency_ms=round(recognition.latency_ms, 1), crop_url=crop_url,
            ))  # fmt: skip

        row = {
            "ts": time.time(), "captured_at": picture.captured_at, "snapshot_seq": picture.seq,
            "plate": best.plate, "score": best.score, "recognizer": best.recognizer,
            "trigger": trigger, "member_id": member.id if member is not None else None,
        }  # fmt: skip
        caps = self.edge.config.store
        holder: dict[str, Any] = {}

        def payload_for(read_id: int) -> dict[str, Any]:
            url = f"/api/plates/{read_id}/crop.jpg" if crop is not None else None
            holder["payload"] = payload = read_payload(read_id, url)
            return payload

        def write(store: Store) -> int:
            return add_read(
                store, row, crop, payload_for, kind=PLATE_READ, outbox_topic=TOPIC_PLATES,
                max_reads=caps.max_plate_reads, max_crops=caps.max_plate_crops,
            )  # fmt: skip

        self._memory_ids += 1  # ids of reads while there is no store (kept in memory only)
        in_memory = read_payload(self._memory_ids, None)
        event_id = await self.edge.events.emit_written(PLATE_READ, write, in_memory)
        payload = holder.get("payload", in_memory) if event_id != 0 else in_memory
        if event_id == 0:
            log.warning("plates: read of %s could not be stored (sent live only)", best.plate)
        self.edge.metrics.plate_reads.labels(best.recognizer, trigger).inc()
        log.info("plate %s (%.2f, %s, %s)%s", best.plate, best.score, best.recognizer, trigger,
                 f" member {member.id}" if member else "")  # fmt: skip
        if member is not None:
            await self.edge.events.publish(
                MemberRecognizedPayload(
                    read_id=payload["id"], plate=best.plate, member=member,
                    snapshot_seq=picture.seq,
                ),
                TOPIC_EVENTS,
            )  # fmt: skip
        return payload

    # ------------------------------------------------------------------ motion trigger
    async def _motion_loop(self) -> None:
        """Watch for vehicles; read each one until a confident plate, store it once."""
        last_seq = -1
        while True:
            motion = self.config.motion
            await asyncio.sleep(1.0 / motion.fps if motion.enabled else 1.0)
            await self._release_unused()
            if not motion.enabled or self.config.effective_policy() == "none":
                self._episode = None
                continue
            snap = self.edge.cache.latest
            if snap is None or snap.seq == last_seq:
                continue
            last_seq = snap.seq
            try:
                await self._motion_step(snap)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad picture or a reader bug must not end the trigger
                log.exception("plates: motion trigger step failed")

    async def _motion_step(self, snap: Snapshot) -> None:
        if self.detector is None:  # the first step: OpenCV is imported now, off the loop
            self.detector = await asyncio.to_thread(_make_detector, self.config)
        gray = await asyncio.to_thread(_decode_gray, snap.jpeg)
        now = time.monotonic()
        self.detector.roi = self.config.roi  # hot
        change = self.detector.update(gray, now)
        if change is not None:
            self._cloud_memo = None  # another car (or none): never reuse the last cloud answer
        if change == "arrived":
            self.edge.metrics.plate_vehicles.inc()
            self._episode = _Episode(started=now)
            log.debug("plates: vehicle arrived (snapshot %d)", snap.seq)
        elif change == "left":
            episode, self._episode = self._episode, None
            if episode is not None and not episode.done:
                await self._finish(episode, snap)
            log.debug("plates: vehicle left (snapshot %d)", snap.seq)
        episode = self._episode
        if episode is None or episode.done:
            return
        burst = self.config.motion.burst_s
        if now - episode.started > burst:
            await self._finish(episode, snap)
            return
        self.edge.source.request_fresh(2.0, explicit=False)  # every frame while the car is here
        if now - episode.last_try < 1.0 / EPISODE_READ_HZ:
            return
        episode.last_try = now
        await self._episode_try(episode, snap)

    async def _episode_try(self, episode: _Episode, snap: Snapshot) -> None:
        """One local look at the vehicle; a confident read ends the episode."""
        policy = self.config.effective_policy()
        if policy == "cloud":
            # The cloud is asked once per vehicle: once it has had time to come to a stop.
            if time.monotonic() - episode.started >= min(2.0, self.config.motion.burst_s / 2):
                await self._finish(episode, snap)
            return
        if self.local is None:
            return
        picture = _picture(snap)
        deadline = time.monotonic() + 10.0
        async with self._read_lock:
            try:
                result = await self._call(self.local, picture, deadline)
            except (PlatesError, RecognizerError) as err:
                log.debug("plates: motion read failed: %s", err)
                return
        best = result.best
        if best is None:
            return
        held = episode.best[0].best if episode.best is not None else None
        if held is None or best.score > held.score:
            episode.best = (result, picture)
        if best.score >= self.config.cloud_below_score:  # confident: no need to look again
            await self._finish(episode, snap)

    async def _finish(self, episode: _Episode, snap: Snapshot) -> None:
        """End the episode with one stored read: the best local one, or the policy's answer."""
        episode.done = True
        policy = self.config.effective_policy()
        deadline = time.monotonic() + 30.0
        held = episode.best
        try:
            if held is not None and not (policy != "local" and self._wants_cloud(held[0])):
                recognition, picture = held
                await self._conclude(recognition, picture, snap, "motion",
                                     [recognition.recognizer], None)  # fmt: skip
                return
            if policy == "local":
                self.edge.metrics.plate_no_read.labels("motion").inc()
                return
            target = held[1] if held is not None else _picture(snap)
            async with self._read_lock:
                result, used, note = await self._recognize_cloud_step(target, deadline, held)
            await self._conclude(result, target, snap, "motion", used, note)
        except PlatesError as err:
            log.info("plates: no read for this vehicle: %s", err.message)

    async def _recognize_cloud_step(
        self, picture: Picture, deadline: float, held: tuple[Recognition, Picture] | None
    ) -> tuple[Recognition | None, list[str], str | None]:
        fallback = held[0] if held is not None else None
        if self.cloud is None:
            return fallback, [], None
        try:
            result = await self._cloud_read(picture, deadline, fallback=fallback)
        except RecognizerError as err:
            return fallback, [self.cloud.name], f"cloud not used ({err.code})"
        return result, [self.cloud.name], None

    # ------------------------------------------------------------------ interval trigger
    async def _interval_loop(self) -> None:
        while True:
            interval = self.config.interval_s
            if interval <= 0 or self.config.effective_policy() == "none":
                await asyncio.sleep(1.0)
                continue
            await asyncio.sleep(interval)
            snap = self.edge.cache.latest
            if snap is None or snap.age_ms() > self.edge.config.camera.offline_after_ms:
                continue
            try:
                await self.read_snapshot(snap, "interval", time.monotonic() + interval)
            except (PlatesError, RecognizerError) as err:
                log.debug("plates: interval read failed: %s", err)

    async def refresh_members(self) -> None:
        """Look at the members file now (re-read if it changed), in a worker thread."""
        self._sync_members()
        members = self.members
        if members is not None:
            await asyncio.to_thread(members.current)

    # ------------------------------------------------------------------ status
    def health(self) -> ComponentHealth:
        """For ``/api/health``: failing when the policy's reader cannot read at all."""
        from fleet_common.wire.edge import ComponentHealth

        policy = self.config.effective_policy()
        if policy == "none":
            return ComponentHealth(status="ok", detail="plate reading is off")
        problems = []
        for reader in (self.local, self.cloud):
            if reader is None:
                continue
            state = str(reader.status().get("state", "ok"))
            if state not in ("ok", "loading", "throttled"):
                problems.append(f"{reader.name}: {state}")
        if self.members is not None and self.members.error:
            problems.append(f"members file: {self.members.error}")
        if not problems:
            return ComponentHealth(status="ok")
        local_dead = any(p.startswith("local:") for p in problems)
        failing = (policy == "local" and local_dead) or (policy == "cloud" and self.cloud is None)
        return ComponentHealth(status="failing" if failing else "degraded",
                               detail="; ".join(problems))  # fmt: skip

    def status(self) -> dict[str, Any]:
        recognizers: dict[str, dict[str, Any]] = {}
        for reader in (self.local, self.cloud):
            if reader is not None:
                recognizers[reader.name] = reader.status()
        if self.cloud is None:
            recognizers["platerecognizer"] = {"state": "not_configured"}
        members: dict[str, Any] = {"file": self._members_path, "count": 0, "error": None}
        if self.members is not None:
            members["count"] = len(self.members.loaded)  # no file I/O on the loop
            members["error"] = self.members.error
        return {
            "policy": self.config.effective_policy(),
            "recognizers": recognizers,
            "members": members,
            "vehicle_present": self._episode is not None,
        }


# ---------------------------------------------------------------------- helpers (pure / threads)
def _picture(snap: Snapshot) -> Picture:
    return Picture(snap.jpeg, snap.seq, snap.captured_at, snap.width, snap.height)


def _make_detector(config: PlatesConfig) -> PresenceDetector:
    from edge.plates.motion import PresenceDetector

    return PresenceDetector(config.motion, config.roi)


def _decode_gray(jpeg: bytes) -> NDArray[np.uint8]:
    """A small grey picture for the motion trigger: libjpeg-turbo scales while decoding (the
    detector shrinks it the rest of the way)."""
    import simplejpeg

    from edge.plates.motion import WORK_WIDTH

    gray = simplejpeg.decode_jpeg(jpeg, colorspace="GRAY", min_width=WORK_WIDTH, fastdct=True)
    return np.asarray(gray[:, :, 0] if gray.ndim == 3 else gray, np.uint8)


def _thumb(picture: Picture) -> NDArray[np.uint8]:
    import cv2

    gray = cv2.cvtColor(picture.bgr(), cv2.COLOR_BGR2GRAY)
    return np.asarray(cv2.resize(gray, (64, 36), interpolation=cv2.INTER_AREA), np.uint8)


def _scene_distance(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> float:
    if a.shape != b.shape:
        return math.inf
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))


def _crop_jpeg(picture: Picture, read: PlateRead) -> bytes | None:
    """The plate with a margin, as a small JPEG (the feed's thumbnail)."""
    import cv2

    if read.box is None:
        return None
    img = picture.bgr()
    h, w = img.shape[:2]
    b = read.box
    mx, my = (b.xmax - b.xmin) // 4 + 4, (b.ymax - b.ymin) // 2 + 4
    x0, y0 = max(0, b.xmin - mx), max(0, b.ymin - my)
    x1, y1 = min(w, b.xmax + mx), min(h, b.ymax + my)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    ok, buf = cv2.imencode(".jpg", img[y0:y1, x0:x1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    return buf.tobytes() if ok else None


def _member_info(match: MemberMatch | None) -> MemberInfo | None:
    if match is None:
        return None
    m = match.member
    return MemberInfo(id=m.id, name=m.name, plan=m.plan, status=m.status, match=match.match,
                      plate=m.plate)  # fmt: skip


def _box(box: Box | None) -> PlateBox | None:
    return None if box is None else PlateBox(**box.as_dict())


def _vehicle_info(read: PlateRead) -> VehicleInfo | None:
    v = read.vehicle
    if v is None:
        return None
    return VehicleInfo(type=v.type, score=round(v.score, 4), box=_box(v.box))
