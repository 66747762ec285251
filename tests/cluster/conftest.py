"""Fixtures of the cluster tests: a fresh two-node LiveKit cluster with one Redis per test
(``livekit_cluster``, from ``livekit.agents.testing``), rtc participants that join through a
chosen node, and the server API of each node."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from livekit import api, rtc


def audio_peak(frame: rtc.AudioFrame) -> int:
    """The largest absolute sample of a frame (0 for silence)."""
    data = memoryview(frame.data).cast("h") if not isinstance(frame.data, memoryview) else frame.data
    return max((abs(v) for v in data), default=0)


@pytest.fixture
async def node_clients(livekit_cluster: Any, helpers: Any):
    """``await node_clients.join(node, room, identity)`` -> a :class:`Client` connected through
    ``node``; all leave at the end."""
    made: list[Any] = []
    Client = helpers.Client

    class Factory:
        async def join(self, node: Any, room_name: str, identity: str | None = None) -> Any:
            identity = identity or f"user-{uuid.uuid4().hex[:6]}"
            room = rtc.Room()
            client = Client(room=room, identity=identity)
            room.on("data_received", lambda pkt: client.data.append(
                (pkt.participant.identity if pkt.participant else "", pkt.data)))
            room.on("participant_connected", lambda p: client.joined.append(p.identity))
            room.on("participant_disconnected", lambda p: client.left.append(p.identity))
            await room.connect(node.url, node.token(identity, room_name))
            made.append(client)
            return client

    yield Factory()
    await asyncio.gather(*(c.leave() for c in made), return_exceptions=True)


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
