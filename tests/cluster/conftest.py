"""Fixtures of the cluster tests: a fresh two-node LiveKit cluster with one Redis per test
(``livekit_cluster``, from ``livekit.agents.testing``), rtc participants that join through a
chosen node, the server API of each node, and :class:`AgentWatch` (how many agents a room
has, sampled all along)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from livekit import agents, api, rtc
from livekit.protocol import models


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


class AgentWatch:
    """Samples, until stopped, how many agents a room has: from the room service and from a
    real participant's own view of the room. ``most`` is the largest count either saw."""

    def __init__(self, lk: api.LiveKitAPI, rooms: list[str], viewers: dict[str, Any] | None = None) -> None:
        self._lk = lk
        self._rooms = rooms
        self._viewers = viewers or {}
        self.most: dict[str, int] = dict.fromkeys(rooms, 0)
        self.now: dict[str, int] = dict.fromkeys(rooms, 0)
        self.samples = 0
        self._task: asyncio.Task[None] | None = None

    async def _count(self, room: str) -> int:
        res = await self._lk.room.list_participants(api.ListParticipantsRequest(room=room))
        return sum(1 for p in res.participants if p.kind == models.ParticipantInfo.AGENT)

    async def _run(self) -> None:
        agent_kind = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
        while True:
            for room in self._rooms:
                counts = [await self._count(room)]
                viewer = self._viewers.get(room)
                if viewer is not None:
                    counts.append(sum(1 for p in viewer.room.remote_participants.values() if p.kind == agent_kind))
                self.now[room] = counts[0]
                self.most[room] = max(self.most[room], *counts)
            self.samples += 1
            await asyncio.sleep(0.05)

    def __enter__(self) -> AgentWatch:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        if self._task.done():
            self._task.result()  # the watch itself failed: what it saw cannot be trusted
        self._task.cancel()


def declined(worker: agents.Worker, reason: str) -> float:
    """How many offers the worker declined for ``reason`` (its Prometheus counter)."""
    value = worker.metrics.registry.get_sample_value("livekit_agents_offers_declined_total", {"reason": reason})
    return value or 0.0
