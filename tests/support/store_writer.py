"""Write events to a store forever, printing each id once its commit has returned.

``python -m tests.support.store_writer DB_PATH``: the crash test kills it with SIGKILL at a random
moment; every id printed must then be in the file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from edge.store import Store


def main(path: str) -> None:
    store = Store.open(Path(path))
    print("ready", flush=True)
    n = 0
    while True:
        n += 1
        event_id = store.add_event("test.tick", {"n": n, "pad": "x" * 200}, outbox_topic="test")
        print(event_id, flush=True)  # only after add_event (the commit) returned


if __name__ == "__main__":
    main(sys.argv[1])
