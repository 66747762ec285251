"""The event-loop watchdog: a job that blocks its loop is named, with the blocking stack.

Inline mode (the worker's own loop, an in-process Worker against the real server, a real
participant publishing espeak speech), and the watchdog on its own loop: tasks created in
a job's scope belong to that job, code outside any job is said to be outside.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from livekit import agents, rtc

from livekit.agents.watchdog import LoopWatchdog, job_scope


def blocked_records(caplog: Any) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "blocked the event loop" in r.getMessage()]


def hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)


async def test_inline_watchdog_names_the_job_that_blocks(livekit_server, clients, worker_opts, helpers,
                                                         speech, caplog):
    """The blocking code is an rtc event callback (not a task of the agent): the job is still
    named, because the room's event task was created inside the job."""
    caplog.set_level(logging.INFO, logger="livekit.agents")
    frames: dict[str, int] = {}

    async def agent_fn(ctx: agents.JobContext) -> None:
        frames[ctx.job.room.name] = 0
        blocker = ctx.job.room.name.startswith("block")

        async def read(track: rtc.Track) -> None:
            async for _ in rtc.AudioStream(track):
                frames[ctx.job.room.name] += 1

        def on_track(track: rtc.Track, *_: Any) -> None:
            if blocker:
                hold_the_loop(1.5)
            else:
                ctx.create_task(read(track))

        ctx.room.on("track_subscribed", on_track)

    async def handler(req: agents.JobRequest) -> None:
        await req.accept(agent_fn, auto_subscribe=agents.AutoSubscribe.AUDIO_ONLY)

    sample = speech("watch the loop")
    async with agents.Worker(handler, **worker_opts(blocked_loop_threshold=0.5)) as worker:
        quiet_room = helpers.unique_room("quiet")
        quiet = await clients.join(quiet_room)
        await quiet.publish_audio(sample)
        await helpers.wait_until(lambda: frames.get(quiet_room, 0) > 20, timeout=30, what="the quiet job's audio")
        assert blocked_records(caplog) == []

        block_room = helpers.unique_room("block")
        user = await clients.join(block_room)
        await user.publish_audio(sample)
        await helpers.wait_until(lambda: blocked_records(caplog), timeout=30, what="the watchdog's warning")
        (job_id,) = [ctx.id for ctx in worker.jobs.values() if ctx.job.room.name == block_room]
        (record,) = blocked_records(caplog)
        assert record.levelno == logging.WARNING
        assert record.job_id == job_id  # type: ignore[attr-defined]
        message = record.getMessage()
        assert message.startswith(f"job {job_id} blocked the event loop for more than")
        assert "in on_track" in message and "hold_the_loop(1.5)" in message and "time.sleep(seconds)" in message
        await helpers.wait_until(lambda: any("runs again after being blocked" in r.getMessage()
                                             for r in caplog.records), what="the all-clear")


async def test_watchdog_maps_tasks_to_jobs_and_stays_quiet_below_threshold(caplog):
    caplog.set_level(logging.INFO, logger="livekit.agents")
    dog = LoopWatchdog(asyncio.get_running_loop(), threshold=0.3)
    dog.start()
    try:
        async def short_blocks() -> None:
            for _ in range(5):
                time.sleep(0.05)
                await asyncio.sleep(0.05)

        async def long_block() -> None:
            await asyncio.sleep(0)
            hold_the_loop(0.8)

        with job_scope("J-short"):
            await asyncio.create_task(short_blocks())
        await asyncio.sleep(0.4)
        assert blocked_records(caplog) == []

        with job_scope("J-long"):
            task = asyncio.create_task(long_block())
        await task
        await asyncio.sleep(0.4)
        hold_the_loop(0.8)  # the test's own code: not a job's
        await asyncio.sleep(0.4)
    finally:
        dog.stop()
    records = blocked_records(caplog)
    assert [getattr(r, "job_id", None) for r in records] == ["J-long", None]
    assert "code outside any job" in records[1].getMessage()
    assert "in long_block" in records[0].getMessage()


def test_watchdog_refuses_a_nonsense_threshold() -> None:
    loop = asyncio.new_event_loop()
    try:
        for bad in (0, -1, float("nan")):
            with pytest.raises(ValueError, match="blocked_loop_threshold must be a positive"):
                LoopWatchdog(loop, threshold=bad)
    finally:
        loop.close()
