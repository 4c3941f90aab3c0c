from __future__ import annotations

import asyncio
import time

import cv2
import numpy as np
import pytest

from edge.metrics import EdgeMetrics
from edge.snapshots.cache import SnapshotCache
from edge.snapshots.jpeg import encode_bgr

pytestmark = pytest.mark.unit


def _jpeg(width: int = 320, height: int = 180, shade: int = 128) -> bytes:
    image = np.full((height, width, 3), shade, np.uint8)
    cv2.circle(image, (width // 2, height // 2), height // 3, (0, 0, 255), -1)
    return encode_bgr(image, quality=80)


def _publish(cache: SnapshotCache, jpeg: bytes, *, age_s: float = 0.0) -> int:
    mono = time.monotonic() - age_s
    snap = cache.publish(jpeg, 320, 180, captured_at=time.time() - age_s, captured_mono=mono,
                         keyframe=True)  # fmt: skip
    return snap.seq


def _cache(history: int = 3, max_bytes: int = 10**9) -> tuple[SnapshotCache, EdgeMetrics]:
    metrics = EdgeMetrics()
    return SnapshotCache(history=history, max_bytes=max_bytes, quality=80, metrics=metrics), metrics


def test_keeps_the_last_n_and_the_newest_always() -> None:
    cache, metrics = _cache(history=3)
    seqs = [_publish(cache, _jpeg()) for _ in range(5)]
    assert [s.seq for s in cache.snapshots()] == seqs[:1:-1]
    assert cache.get(seqs[0]) is None
    assert cache.latest is not None
    assert cache.latest.seq == seqs[-1]
    assert metrics.cache_snapshots._value.get() == 3


def test_bytes_cap_evicts_oldest_but_never_the_newest() -> None:
    jpeg = _jpeg()
    cache, _ = _cache(history=100, max_bytes=len(jpeg) * 2 + 10)
    for _ in range(6):
        _publish(cache, jpeg)
    assert len(cache.snapshots()) == 2
    assert cache.stats()["bytes"] <= cache.max_bytes
    tiny, _ = _cache(history=100, max_bytes=1)
    _publish(tiny, jpeg)
    assert len(tiny.snapshots()) == 1


def test_etags_differ_between_cache_instances() -> None:
    a, _ = _cache()
    b, _ = _cache()
    _publish(a, _jpeg())
    _publish(b, _jpeg())
    assert a.latest is not None
    assert b.latest is not None
    assert a.latest.seq == b.latest.seq == 1
    assert a.latest.etag != b.latest.etag


@pytest.mark.asyncio
async def test_waiters_are_woken_from_another_thread() -> None:
    cache, _ = _cache()
    cache.attach_loop(asyncio.get_running_loop())
    first = _publish(cache, _jpeg())
    waiter = asyncio.ensure_future(cache.wait_newer(first, 5.0))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    second = await asyncio.to_thread(_publish, cache, _jpeg())
    snap = await asyncio.wait_for(waiter, 2.0)
    assert snap is not None
    assert snap.seq == second
    assert await cache.wait_newer(second, 0.05) is None
    # A seq from a previous run of the process is answered at once.
    assert await cache.wait_newer(second + 1000, 5.0) is cache.latest


@pytest.mark.asyncio
async def test_wait_fresh_skips_old_pictures() -> None:
    cache, _ = _cache()
    cache.attach_loop(asyncio.get_running_loop())
    _publish(cache, _jpeg(), age_s=2.0)
    assert await cache.wait_fresh(300, 0.05) is None
    asyncio.get_running_loop().call_later(0.05, _publish, cache, _jpeg())
    snap = await cache.wait_fresh(300, 2.0)
    assert snap is not None
    assert snap.age_ms() < 300


@pytest.mark.asyncio
async def test_scaled_variant_is_made_once_for_concurrent_requests() -> None:
    cache, metrics = _cache()
    cache.attach_loop(asyncio.get_running_loop())
    _publish(cache, _jpeg())
    snap = cache.latest
    assert snap is not None
    results = await asyncio.gather(*(cache.variant(snap, 160) for _ in range(10)))
    assert len({r[0] for r in results}) == 1
    assert metrics.variant_encodes._value.get() == 1
    jpeg, height = results[0]
    decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape[:2] == (height, 160) == (90, 160)
    assert await cache.variant(snap, 160) == results[0]
    assert metrics.variant_encodes._value.get() == 1
    assert await cache.variant(snap, 4000) == (snap.jpeg, 180)  # no upscaling


def test_trim_keeps_only_the_newest_without_variants() -> None:
    cache, metrics = _cache(history=5)
    for _ in range(4):
        _publish(cache, _jpeg())
    newest = cache.latest
    assert newest is not None
    newest.variants[160] = (b"x" * 1000, 90)
    before = cache.stats()["bytes"]
    freed = cache.trim()
    assert [s.seq for s in cache.snapshots()] == [newest.seq]
    assert newest.variants == {}
    assert cache.stats()["bytes"] == len(newest.jpeg) == before - freed
    assert metrics.registry.get_sample_value("carwash_edge_cache_snapshots") == 1
    assert cache.trim() == 0


def _held_bytes(cache: SnapshotCache) -> int:
    return sum(s.nbytes for s in cache.snapshots())


@pytest.mark.asyncio
async def test_scaled_variants_count_towards_the_byte_bound() -> None:
    jpeg = _jpeg(640, 360)
    cache, metrics = _cache(history=100, max_bytes=len(jpeg) * 3)
    cache.attach_loop(asyncio.get_running_loop())
    for _ in range(3):
        _publish(cache, jpeg)
    assert len(cache.snapshots()) == 3
    newest = cache.latest
    assert newest is not None
    for width in (160, 320, 480):  # a wall asking for a few widths of the newest picture
        await cache.variant(newest, width)
    held = cache.snapshots()
    assert newest in held
    assert len(held) < 3  # older pictures made room for the variants
    assert cache.stats()["bytes"] == _held_bytes(cache) <= cache.max_bytes
    assert metrics.registry.get_sample_value("carwash_edge_cache_bytes") == _held_bytes(cache)
    for _ in range(5):  # evicting a picture frees its variants too: the count stays exact
        _publish(cache, jpeg)
    assert cache.stats()["bytes"] == _held_bytes(cache) <= cache.max_bytes


@pytest.mark.asyncio
async def test_a_variant_of_an_evicted_picture_is_not_counted() -> None:
    jpeg = _jpeg(640, 360)
    cache, _ = _cache(history=1)
    cache.attach_loop(asyncio.get_running_loop())
    _publish(cache, jpeg)
    old = cache.latest
    assert old is not None
    making = asyncio.ensure_future(cache.variant(old, 160))
    await asyncio.sleep(0)  # the scaling started in its thread
    _publish(cache, jpeg)  # ...and the picture left the history meanwhile
    await making
    assert cache.stats()["bytes"] == _held_bytes(cache) == len(jpeg)


def test_a_lowered_byte_bound_applies_at_the_next_picture() -> None:
    jpeg = _jpeg()
    cache, _ = _cache(history=100)
    for _ in range(10):
        _publish(cache, jpeg)
    cache.max_bytes = len(jpeg) * 4  # the live config changed snapshots.max_bytes
    _publish(cache, jpeg)
    assert len(cache.snapshots()) == 4
    assert cache.stats()["bytes"] == _held_bytes(cache) <= cache.max_bytes
