"""A job whose first attempt at joining its room fails (the connection is refused, as when
a peer connection times out on a busy host) tries again and runs; one that never gets in
ends failed, saying why."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from livekit import rtc
from livekit.protocol import agent as agent_pb
from livekit.protocol import models

from livekit.agents.job import JOIN_ATTEMPTS, JobContext, run_job
from livekit.agents.job_end import JobEndKind
from livekit.agents.job_request import AcceptArguments


class Gate:
    """A TCP forwarder to the server that drops every connection until opened."""

    def __init__(self, port: int) -> None:
        self._port = port
        self.open = False
        self.refused = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"ws://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            self.refused += 1
            writer.close()
            return
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self._port)

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except ConnectionError:
                pass
            finally:
                w.close()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))

    async def aclose(self) -> None:
        assert self._server is not None
        self._server.close()


def _context(server: Any, url: str, agent_fn: Any) -> JobContext:
    room = f"join-{uuid.uuid4().hex[:6]}"
    job = agent_pb.Job(id=f"AJ_{uuid.uuid4().hex[:8]}", type=agent_pb.JobType.JT_ROOM, room=models.Room(name=room))
    return JobContext(job=job, room=rtc.Room(), url=url, token=server.token("agent-join", room),
                      accept_args=AcceptArguments(agent_fn=agent_fn, identity="agent-join"))


async def test_a_refused_first_join_is_tried_again_and_the_job_runs(livekit_server, caplog) -> None:
    gate = Gate(livekit_server.port)
    url = await gate.start()
    ran = asyncio.Event()

    async def agent(ctx: JobContext) -> None:
        ran.set()
        ctx.shutdown()

    class OpenOnRetry(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "retrying" in record.getMessage():
                gate.open = True  # the network is back for the next attempt

    handler = OpenOnRetry()
    logging.getLogger("livekit.agents").addHandler(handler)
    try:
        end = await asyncio.wait_for(run_job(_context(livekit_server, url, agent)), 120)
    finally:
        logging.getLogger("livekit.agents").removeHandler(handler)
        await gate.aclose()
    assert gate.refused >= 1
    assert ran.is_set(), f"the agent never ran: {end}"
    assert end.kind is JobEndKind.SUCCESS, end


async def test_a_job_that_never_gets_in_ends_failed_after_its_attempts(livekit_server, caplog) -> None:
    gate = Gate(livekit_server.port)
    url = await gate.start()
    caplog.set_level(logging.WARNING, logger="livekit.agents")
    try:
        end = await asyncio.wait_for(run_job(_context(livekit_server, url, lambda ctx: None)), 120)
    finally:
        await gate.aclose()
    assert end.kind is JobEndKind.FAILED and "could not join room" in end.reason, end
    retries = [r for r in caplog.records if r.name == "livekit.agents" and "retrying" in r.getMessage()]
    assert len(retries) == JOIN_ATTEMPTS - 1
