"""The cloud's member list written where the plate pipeline reads it (edge/plates/members.py).

The file is the cloud's answer as it is (``{"version": N, "members": [...]}``: the members file
format, ``version`` ignored by the reader), checked with the reader's own parser first, then
written atomically: the plate pipeline's :class:`~edge.plates.members.MembersFile` sees a whole
new file (new inode) or the old one, never half of one, and a list it could not read never
replaces a good one.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from edge.plates.members import MemberList, MembersError
from fleet_common.files import atomic_write_text
from fleet_common.wire.cloud import MemberFile


class MembersFileWriter:
    """``on_members`` for :class:`~edge.sync.service.SyncService`; :meth:`version` for its
    ``members_version`` (so a restart does not download an unchanged list again)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def version(self) -> int | None:
        """The cloud version of the list in the file, if it came from the cloud. Blocking."""
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return None
        version = doc.get("version") if isinstance(doc, dict) else None
        return version if isinstance(version, int) and not isinstance(version, bool) else None

    async def __call__(self, doc: MemberFile) -> None:
        """Check and write the list; ValueError if the plate pipeline could not read it,
        OSError if it cannot be written (the file keeps the previous list either way)."""
        await asyncio.to_thread(self._write, doc)

    def _write(self, doc: MemberFile) -> None:
        text = json.dumps({"version": doc.version, "members": doc.members}, separators=(",", ":"))
        try:
            MemberList.from_json(text, source=f"cloud members version {doc.version}")
        except MembersError as err:
            raise ValueError(str(err)) from err
        atomic_write_text(self.path, text + "\n", mode=0o600)
