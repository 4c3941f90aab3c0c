"""Run the edge's SyncService against a store file until killed (the kill -9 test).

``python -m tests.support.sync_pusher DB_PATH DATA_DIR BATCH``: DATA_DIR holds ``cloud.json``.
Prints ``ready`` once started.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from edge.store import Store
from edge.sync.client import Timeouts
from edge.sync.credentials import CloudCredentials
from edge.sync.service import DeviceStatus, SyncService, SyncSettings


async def main(db: str, data_dir: str, batch: int) -> None:
    store = Store.open(Path(db))
    settings = SyncSettings(
        heartbeat_interval_s=3600, batch_size=batch, outbox_poll_s=0.1, backoff_base_s=0.05,
        backoff_cap_s=0.2, timeouts=Timeouts(connect_s=1, read_s=1, write_s=1, pool_s=1),
    )  # fmt: skip
    sync = SyncService(
        CloudCredentials.load(Path(data_dir)), store, status=DeviceStatus, settings=settings
    )
    await sync.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
