"""The worker's websocket drops (the server stays up): the worker reconnects with backoff,
running jobs keep running in their rooms and are re-attached with ``migrate_job``."""

from __future__ import annotations

import asyncio
import logging

from livekit import agents


class AgentSocketProxy:
    """A TCP proxy to the LiveKit server that can cut the worker's ``/agent`` connections
    while leaving the rooms' signalling connections alone."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.agent_conns: list[asyncio.StreamWriter] = []
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await reader.read(65536)
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        if first.startswith(b"GET /agent"):
            self.agent_conns.extend([writer, up_writer])
        up_writer.write(first)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut_agent_connections(self) -> int:
        conns, self.agent_conns = self.agent_conns, []
        for w in conns:
            w.transport.abort()
        return len(conns) // 2

    async def aclose(self) -> None:
        if self.server:
            self.server.close()
        for w in self.agent_conns:
            w.transport.abort()


async def test_running_job_survives_a_lost_worker_connection(livekit_server, clients, lk, worker_opts,
                                                             helpers, caplog):
    caplog.set_level(logging.INFO, logger="livekit.agents")
    proxy = AgentSocketProxy(livekit_server.port)
    await proxy.start()
    contexts: list[agents.JobContext] = []

    async def handler(req: agents.JobRequest) -> None:
        await req.accept(contexts.append)

    opts = worker_opts(url=f"ws://127.0.0.1:{proxy.port}", retry_base=0.2)
    try:
        async with agents.Worker(handler, **opts) as worker:
            room = helpers.unique_room("survive")
            alice = await clients.join(room, "alice")
            await helpers.wait_until(lambda: contexts and contexts[0].status == "running", what="the job running")
            ctx = contexts[0]
            first_id = worker.id

            assert proxy.cut_agent_connections() == 1
            await helpers.wait_until(lambda: worker.registered and worker.id != first_id, timeout=20,
                                     what="the worker registering again")
            messages = [r.getMessage() for r in caplog.records]
            assert any("lost the connection to the LiveKit server" in m for m in messages)
            assert any("re-attaching 1 running job(s)" in m for m in messages)
            # the job never stopped: same context, still in the room, still serving alice
            assert ctx.status == "running" and ctx.shutdown_reason is None
            assert worker.jobs == {ctx.id: ctx}
            assert f"agent-{ctx.id}" in await lk.agents_in(room)
            assert "alice" in ctx.room.remote_participants

            # and the new registration takes new rooms
            other = helpers.unique_room("after-cut")
            await lk.create_room(other)
            await helpers.wait_until(lambda: any(c.job.room.name == other for c in contexts),
                                     what="a job on the new registration")
            await alice.leave()
            await helpers.wait_until(lambda: ctx.shutdown_reason == "auto_disconnect", what="the job ending")
            await lk.delete_room(other)
    finally:
        await proxy.aclose()
