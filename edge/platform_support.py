"""Which machines the edge runs on, checked before anything platform-specific is imported.

The edge's compiled dependencies (numpy, opencv-python-headless, simplejpeg, onnxruntime,
httptools, PyAV) publish wheels for 64-bit Linux on x86_64 and arm64 (aarch64) only; 32-bit
Raspberry Pi OS (armv7l, armv6l) has none for several of them, so an install there either fails
or builds something untested. Saying so at start beats an ImportError traceback.
"""

from __future__ import annotations

import platform
import struct
import sys

SUPPORTED_MACHINES = frozenset({"x86_64", "amd64", "aarch64", "arm64"})


class UnsupportedPlatform(Exception):
    """This machine cannot run the edge; the message says why and what to do instead."""


def check_platform(
    system: str | None = None, machine: str | None = None, pointer_bits: int | None = None
) -> None:
    """Raise UnsupportedPlatform unless this is 64-bit Linux on x86_64 or arm64.

    The arguments default to this interpreter's own; tests pass others."""
    system = platform.system() if system is None else system
    machine = (platform.machine() if machine is None else machine).lower()
    bits = struct.calcsize("P") * 8 if pointer_bits is None else pointer_bits
    if system != "Linux":
        raise UnsupportedPlatform(
            f"the edge runs on Linux (x86_64 or 64-bit Raspberry Pi OS), not on {system}"
        )
    if machine not in SUPPORTED_MACHINES or bits != 64:
        hint = (
            " This looks like 32-bit Raspberry Pi OS: install the 64-bit (arm64) image."
            if machine.startswith("arm") or bits != 64
            else ""
        )
        raise UnsupportedPlatform(
            f"unsupported platform {machine} ({bits}-bit Python): the edge needs 64-bit Linux on "
            f"x86_64 or arm64, where every dependency it uses has a tested wheel.{hint}"
        )


def missing_dependency_message(err: ImportError) -> str:
    """What to tell a person when a compiled dependency fails to load."""
    name = err.name or str(err)
    return (
        f"a dependency failed to load ({name}: {err}). Install the edge from the project's lock "
        f"(see the README's install section) on 64-bit Linux; Python {sys.version.split()[0]}."
    )
