"""A draining worker declines offers itself.

The LiveKit server stops offering jobs to a worker that reports WS_FULL, so a test that
only watches the server cannot tell whether the worker would decline. These tests put
an offer in front of a draining worker anyway, black-box, through the worker's public API
and its wire protocol:

* a websocket proxy between the worker and the real server forwards everything and
  injects one more ``availability`` offer after the worker has said it is draining;
* an offer that the server made before the drain, whose request handler accepts it only
  once the worker is draining.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web
from livekit import agents

from livekit.agents.exceptions import JobError
from livekit.agents.testing.loopback import serve_app


class AgentProxy:
    """``ws://127.0.0.1:<port>/agent`` relaying to the real server's ``/agent``: it records
    what the worker sends and can inject server messages."""

    def __init__(self, upstream: str) -> None:
        self.room_url = upstream.replace("http://", "ws://").rstrip("/")
        self.upstream = self.room_url + "/agent"
        self.from_worker: list[Any] = []
        self.offers: list[Any] = []  # jobs the real server offered
        self.injected: set[str] = set()
        self._to_worker: web.WebSocketResponse | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def __aenter__(self) -> AgentProxy:
        app = web.Application()
        app.router.add_get("/agent", self._relay)
        self._runner, self.port = await serve_app(app)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def inject(self, message: Any) -> None:
        assert self._to_worker is not None, "no worker connected"
        await self._to_worker.send_bytes(message.SerializeToString())

    def answers(self, job_id: str) -> list[Any]:
        return [m.availability for m in self.from_worker if m.WhichOneof("message") == "availability" and m.availability.job_id == job_id]

    def draining_reported(self) -> bool:
        return any(m.WhichOneof("message") == "update_worker" and m.update_worker.draining for m in self.from_worker)

    async def _relay(self, request: web.Request) -> web.WebSocketResponse:
        from livekit.protocol import agent as agent_pb

        worker = web.WebSocketResponse(max_msg_size=0)
        await worker.prepare(request)
        self._to_worker = worker
        async with aiohttp.ClientSession() as http, http.ws_connect(
            self.upstream, headers={"Authorization": request.headers.get("Authorization", "")}, max_msg_size=0
        ) as server:

            async def down() -> None:
                async for msg in server:
                    if msg.type != aiohttp.WSMsgType.BINARY:
                        break
                    parsed = agent_pb.ServerMessage.FromString(msg.data)
                    data = msg.data
                    if parsed.WhichOneof("message") == "availability":
                        self.offers.append(parsed.availability.job)
                    elif parsed.WhichOneof("message") == "assignment" and not parsed.assignment.url:
                        # rooms are joined at the real server, not through this proxy
                        parsed.assignment.url = self.room_url
                        data = parsed.SerializeToString()
                    await worker.send_bytes(data)
                await worker.close()

            async def up() -> None:
                async for msg in worker:
                    if msg.type != aiohttp.WSMsgType.BINARY:
                        break
                    parsed = agent_pb.WorkerMessage.FromString(msg.data)
                    self.from_worker.append(parsed)
                    if parsed.WhichOneof("message") == "availability" and parsed.availability.job_id in self.injected:
                        continue  # the real server never made this offer
                    await server.send_bytes(msg.data)
                await server.close()

            tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return worker


async def test_a_draining_worker_declines_an_offer_before_its_handler_is_asked(livekit_server, lk, worker_opts, helpers):
    from livekit.protocol import agent as agent_pb

    handled: list[str] = []

    async def handler(req: agents.JobRequest) -> None:
        handled.append(req.room.name)
        await req.accept(lambda ctx: None, auto_disconnect=agents.AutoDisconnect.NEVER)

    busy = helpers.unique_room("busy")
    async with AgentProxy(livekit_server.url) as proxy:
        worker = agents.Worker(handler, **worker_opts(url=proxy.url))
        async with worker:
            await lk.create_room(busy, empty_timeout=60)
            # the job has joined its room (room.connect returned), and the server sees its agent
            await helpers.wait_until(lambda: any(j.status == "running" for j in worker.jobs.values()),
                                     timeout=30, what="the first job running in its room")
            await helpers.wait_until(lambda: lk.agents_in(busy), what="the first job's agent in its room")
            drained = asyncio.create_task(worker.drain(timeout=60))  # the running job keeps it draining
            await helpers.wait_until(proxy.draining_reported, what="the worker reporting that it drains")

            # an offer reaches the draining worker all the same
            late = agent_pb.Job()
            late.CopyFrom(proxy.offers[0])
            late.id = "AJ_injected_after_drain"
            late.room.name = helpers.unique_room("late")
            late.room.sid = "RM_injected"
            proxy.injected.add(late.id)
            await proxy.inject(agent_pb.ServerMessage(availability=agent_pb.AvailabilityRequest(job=late)))
            answers = await helpers.wait_until(lambda: proxy.answers(late.id), what="the worker's answer to the late offer")

            assert [a.available for a in answers] == [False]
            assert handled == [busy]  # the request handler never saw the late offer
            assert len(worker.jobs) == 1 and not drained.done()
            assert len(await lk.agents_in(busy)) == 1 and await lk.agents_in(late.room.name) == []
            await lk.delete_room(busy)  # the running job ends; the drain completes
            assert await asyncio.wait_for(drained, 30) == 0


async def test_an_offer_accepted_after_the_drain_began_is_not_started(livekit_server, lk, worker_opts, helpers):
    asked = asyncio.Event()
    go_on = asyncio.Event()
    outcome: dict[str, Any] = {}

    async def handler(req: agents.JobRequest) -> None:
        asked.set()
        await go_on.wait()  # the worker starts draining meanwhile
        try:
            await req.accept(lambda ctx: None, auto_disconnect=agents.AutoDisconnect.NEVER)
        except JobError as exc:
            outcome["error"] = str(exc)
        else:
            outcome["accepted"] = True

    room = helpers.unique_room("race")
    worker = agents.Worker(handler, **worker_opts(request_timeout=60))
    async with worker:
        await lk.create_room(room, empty_timeout=30)
        await asyncio.wait_for(asked.wait(), 30)
        drained = asyncio.create_task(worker.drain(timeout=30))
        await helpers.wait_until(lambda: worker.draining, what="the worker draining")
        go_on.set()
        await helpers.wait_until(lambda: outcome, what="the handler's accept() to return or raise")
        assert "draining" in outcome.get("error", ""), outcome
        assert len(worker.jobs) == 0
        await asyncio.wait_for(drained, 30)
    assert await lk.agents_in(room) == []
    await lk.delete_room(room)
