"""Several LiveKit server URLs for one worker: the nodes of a cluster, in order of preference.

A worker takes ``--url`` more than once, a comma-separated ``LIVEKIT_URL``, or a list for
``WorkerOptions.url``. Every connection (the first one and each reconnect) tries the URLs
in the order given, the first one first: the first URL is the preferred node. A URL that
cannot be reached is skipped at once for the next one; only when every URL failed in a
row does the worker wait (exponential backoff with jitter, ``--retry-base`` doubling up
to ``--retry-max-delay``), and after ``--max-retry`` such rounds it gives up. A worker
stays on the node it registered with until that connection ends; it does not switch back
to its preferred node by itself (the cluster routes jobs between nodes, so a worker on any
node serves the whole cluster), but its next reconnect tries the preferred node first.

The same list lets a running job rejoin its room through another node when the node its
room connection went through is lost (:mod:`livekit.agents.rejoin`).
"""

from __future__ import annotations

from collections.abc import Sequence

from .exceptions import WorkerError


def parse_urls(value: str | Sequence[str] | None) -> list[str]:
    """The URLs of ``value`` (a comma-separated string or a sequence of them), stripped,
    without empties or repeats, in order."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    urls: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise WorkerError(f"a LiveKit URL must be a string, got {item!r} (--url, LIVEKIT_URL)")
        for part in item.split(","):
            part = part.strip()
            if part and part not in urls:
                urls.append(part)
    return urls


class ServerList:
    """The URLs a worker connects to, in order of preference, and where a round stands."""

    def __init__(self, urls: Sequence[str]) -> None:
        if not urls:
            raise WorkerError("no LiveKit URL: pass --url (repeatable) or set LIVEKIT_URL")
        self.urls = list(urls)
        self._next = 0

    def start_round(self) -> None:
        """Start again from the preferred URL."""
        self._next = 0

    def next_url(self) -> str | None:
        """The next URL to try in this round, or ``None`` once every URL was tried."""
        if self._next >= len(self.urls):
            return None
        url = self.urls[self._next]
        self._next += 1
        return url

    def others(self, url: str) -> list[str]:
        """Every URL but ``url``, in order of preference (where a job may rejoin its room)."""
        return [u for u in self.urls if u != url]

    def __len__(self) -> int:
        return len(self.urls)


__all__ = ["ServerList", "parse_urls"]
