"""Fixtures of the cluster tests: a fresh two-node LiveKit cluster with one Redis per test
(``livekit_cluster``, from ``livekit.agents.testing``), rtc participants that join through a
chosen node, and the server API of each node."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from livekit import api, rtc


def audio_peak(frame: rtc.AudioFrame) -> int:
    """The largest absolute sample of a frame (0 for silence)."""
    data = memoryview(frame.data).cast("h") if not isinstance(frame.data, memoryview) else frame.data
    return max((abs(v) for v in data), default=0)


@pytest.fixture
async def node_clients(livekit_cluster: Any, helpers: Any):
    """``await node_clients.join_via(node, room, identity)`` -> a ``Client`` connected through
    ``node`` (the shared factory of tests/conftest.py); all leave at the end."""
    factory = helpers.ClientFactory()
    yield factory
    await factory.aclose()


@pytest.fixture
async def node_api(livekit_cluster: Any):
    """``node_api(node)`` -> a ``livekit.api.LiveKitAPI`` of that node (closed at the end)."""
    made: dict[int, api.LiveKitAPI] = {}

    def get(node: Any) -> api.LiveKitAPI:
        if node.index not in made:
            made[node.index] = node.api()
        return made[node.index]

    yield get
    await asyncio.gather(*(a.aclose() for a in made.values()), return_exceptions=True)


def cluster_worker_kwargs(cluster: Any, url: Any, **extra: Any) -> dict[str, Any]:
    """Options of an in-process worker of the cluster: ``url`` (one URL or a list), its keys,
    any free health port, a load that other processes on a busy machine cannot trip."""
    opts: dict[str, Any] = dict(url=url, api_key=cluster.api_key, api_secret=cluster.api_secret,
                                http_port=0, load_fn=lambda: 0.0, load_threshold=1.0)
    opts.update(extra)
    return opts
