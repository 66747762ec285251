"""A plugin's veto (``job_offered`` returning False) reaches the server as a decline: the
job goes to another worker. (A mutant answering "available" after the veto passed every
other test: they only checked that the handler was not asked.)"""

from __future__ import annotations

import asyncio
import logging
import urllib.request

from livekit import agents


def _plugin_declines(worker: agents.Worker) -> float:
    """``offers_declined_total{reason="plugin"}`` on the worker's ``/metrics``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.health_port}/metrics", timeout=10) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith('livekit_agents_offers_declined_total{reason="plugin"} '):
                return float(line.split()[-1])
    return 0.0


async def test_a_plugin_veto_sends_the_job_to_another_worker(livekit_server, lk, worker_opts, helpers, plugin_host,
                                                             caplog):
    caplog.set_level(logging.INFO, "livekit.agents")
    offers: list[str] = []

    class VetoFirstOffer:
        PLUGIN_API = (1, 0)

        @agents.hookimpl
        def job_offered(self, job_request):
            offers.append(job_request.room.name)
            return False if offers.count(job_request.room.name) == 1 else None  # the first offer of each room

    plugin_host.register_plugin("veto-first", VetoFirstOffer())
    taken: list[str] = []

    async def take(req: agents.JobRequest) -> None:
        taken.append(req.room.name)
        await req.accept(lambda ctx: None, identity=f"taker-{req.id}")

    one, two = agents.Worker(take, **worker_opts()), agents.Worker(take, **worker_opts())
    async with one, two:
        room = helpers.unique_room("veto")
        await lk.create_room(room)
        await helpers.wait_until(lambda: room in taken, timeout=30, what="a worker taking the vetoed job")
        assert offers == [room, room]  # vetoed once, then offered again and taken
        agents_there = await helpers.wait_until(lambda: lk.agents_in(room), timeout=30, what="the agent in the room")
        assert agents_there[0].startswith("taker-")
        # the worker that vetoed counts it under the "plugin" reason
        assert sorted([await asyncio.to_thread(_plugin_declines, w) for w in (one, two)]) == [0.0, 1.0]
        [vetoed] = [r for r in caplog.records if r.name == "livekit.agents" and "a plugin declined it" in r.getMessage()]
        job_id = vetoed.job_id
        assert (vetoed.getMessage(), vetoed.room) == (f"declined job {job_id} in room {room}: a plugin declined it", room)
        assert job_id.startswith("AJ_")
        await lk.delete_room(room)
