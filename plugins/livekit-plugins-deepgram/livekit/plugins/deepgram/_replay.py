"""The audio a live Deepgram stream must replay after a reconnect.

Deepgram's timestamps are relative to the connection (its session), so after a drop the
stream reconnects and replays every byte no final result has covered yet. ``ReplayBuffer``
is that bookkeeping, kept apart from the websocket code so it can be tested on its own:
offsets are global byte offsets into the stream's 16-bit mono audio since it started.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

MarkerKind = Literal["Finalize", "CloseStream"]


@dataclass(frozen=True)
class Marker:
    """A control message that goes out once the audio up to ``offset`` has been sent."""

    offset: int
    kind: MarkerKind
    id: int


class ReplayBuffer:
    """Audio not yet covered by a final result, from global byte offset :attr:`base` on,
    plus the control messages placed in it."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.base = 0
        self.markers: list[Marker] = []
        self._data = bytearray()
        self._ids = itertools.count()

    @property
    def end(self) -> int:
        """The global offset just past the last byte appended."""
        return self.base + len(self._data)

    @property
    def retained_bytes(self) -> int:
        return len(self._data)

    @property
    def retained_seconds(self) -> float:
        """How much audio a reconnect would replay."""
        return len(self._data) / 2 / self.sample_rate

    def append(self, data: bytes) -> None:
        """Add 16-bit mono samples at the end."""
        self._data.extend(data)

    def mark(self, kind: MarkerKind) -> Marker:
        """Place a control message at the current end of the audio."""
        marker = Marker(self.end, kind, next(self._ids))
        self.markers.append(marker)
        return marker

    def read(self, offset: int, limit: int) -> bytes:
        """Up to ``limit`` bytes from global ``offset`` (which must be retained)."""
        if offset < self.base:
            raise ValueError(f"offset {offset} is before the retained audio (base {self.base})")
        lo = offset - self.base
        return bytes(self._data[lo : lo + limit])

    def covered(self, end_seconds: float, session_base: int, sent: int) -> None:
        """A final result says the audio up to ``end_seconds`` of the session that began at
        global offset ``session_base`` is transcribed: drop it (never past ``sent``, the
        bytes that session was actually given), and the Finalize markers inside it."""
        end = session_base + int(round(end_seconds * self.sample_rate)) * 2
        end = min(end, sent)
        if end > self.base:
            del self._data[: end - self.base]
            self.base = end
            # a Finalize whose audio is covered needs no replay
            self.markers = [m for m in self.markers if m.kind == "CloseStream" or m.offset > end]
