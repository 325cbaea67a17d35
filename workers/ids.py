"""New ids: random UUIDs (version 4), made without a system call per id (ids are made per record)."""

from __future__ import annotations

import random
import uuid

_random = random.SystemRandom().getrandbits(64)
_rng = random.Random(_random ^ uuid.uuid4().int)


def new_id() -> str:
    """A random version-4 UUID as text."""
    bits = _rng.getrandbits(128)
    bits = (bits & ~(0xF000 << 64)) | (0x4000 << 64)  # version 4
    bits = (bits & ~(0xC000 << 48)) | (0x8000 << 48)  # RFC 4122 variant
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
