"""The edge's cloud credentials: ``DATA_DIR/cloud.json`` (cloud URL, device id, device key).

Written once by ``carwash-edge enroll`` (:mod:`edge.sync.enroll`), atomically and ``0600``: the
device key is a secret. Read by the composition root to build the sync client.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

from edge.datadir import ensure_private_dir
from edge.sync.errors import NotEnrolled
from fleet_common.files import atomic_write_text

FILENAME: Final = "cloud.json"


@dataclass(frozen=True, slots=True)
class CloudCredentials:
    cloud_url: str  # e.g. https://cloud.example.com (no trailing slash)
    device_id: str
    device_key: str = field(repr=False)  # never in a log line or a repr
    site_id: str = ""
    heartbeat_interval_s: int = 30
    enrolled_at: float = 0.0

    @classmethod
    def path_in(cls, data_dir: Path) -> Path:
        return data_dir / FILENAME

    @classmethod
    def load(cls, data_dir: Path) -> CloudCredentials:
        """Read ``DATA_DIR/cloud.json``; :class:`NotEnrolled` if missing or unusable. Blocking."""
        path = cls.path_in(data_dir)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotEnrolled(f"not enrolled: no {path} (run carwash-edge enroll)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise NotEnrolled(f"{path} is unreadable ({err}): enrol again") from err
        try:
            return cls(
                cloud_url=str(doc["cloud_url"]),
                device_id=str(doc["device_id"]),
                device_key=str(doc["device_key"]),
                site_id=str(doc.get("site_id", "")),
                heartbeat_interval_s=int(doc.get("heartbeat_interval_s", 30)),
                enrolled_at=float(doc.get("enrolled_at", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise NotEnrolled(f"{path} lacks {err}: enrol again") from err

    def save(self, data_dir: Path) -> Path:
        """Write ``DATA_DIR/cloud.json`` atomically, ``0600``, the folder ``0700`` if made here.
        Raises OSError. Blocking."""
        ensure_private_dir(data_dir)
        path = self.path_in(data_dir)
        atomic_write_text(path, json.dumps(asdict(self), indent=2) + "\n", mode=0o600)
        return path

    @staticmethod
    def now() -> float:
        return time.time()
