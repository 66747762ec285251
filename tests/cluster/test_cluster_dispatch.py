"""Normal operation on a two-node cluster (one Redis): jobs cross nodes, and spread over
workers on both nodes. Real livekit-server nodes, real rtc participants, real espeak audio."""

from __future__ import annotations

import asyncio
from typing import Any

from livekit import agents, api, rtc

from .conftest import AgentWatch, audio_peak, cluster_worker_kwargs


async def publish_loop(participant: rtc.LocalParticipant, sample: Any, name: str) -> asyncio.Task[None]:
    source = rtc.AudioSource(sample.sample_rate, 1)
    track = rtc.LocalAudioTrack.create_audio_track(name, source)
    await participant.publish_track(track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))
    frames = list(sample.frames(10))

    async def pump() -> None:
        while True:
            for frame in frames:
                await source.capture_frame(frame)

    return asyncio.create_task(pump())


async def test_job_for_room_on_node_b_reaches_worker_on_node_a_and_audio_flows_both_ways(
    livekit_cluster, node_clients, node_api, speech, helpers
):
    a, b = livekit_cluster.nodes
    agent_voice = speech(["hello from the agent"], sample_rate=48000)
    user_voice = speech(["hello from the user"], sample_rate=48000)
    heard = {"agent": 0, "user": 0}
    agent_tasks: list[asyncio.Task[Any]] = []

    async def count(track: rtc.Track, who: str) -> None:
        async for event in rtc.AudioStream(track):
            if audio_peak(event.frame) > 500:  # speech, not silence
                heard[who] += 1

    async def agent_fn(ctx: agents.JobContext) -> None:
        ctx.room.on("track_subscribed", lambda track, pub, p: ctx.create_task(count(track, "agent")))
        agent_tasks.append(await publish_loop(ctx.agent, agent_voice, "agent-voice"))
        ctx.add_shutdown_callback(lambda: [t.cancel() for t in agent_tasks])

    async def handler(req: agents.JobRequest) -> None:
        await req.accept(agent_fn, auto_subscribe=agents.AutoSubscribe.AUDIO_ONLY,
                         auto_disconnect=agents.AutoDisconnect.NEVER)

    worker = agents.Worker(handler, **cluster_worker_kwargs(livekit_cluster, a.url))
    async with worker:
        room = helpers.unique_room("cross")
        await node_api(b).room.create_room(api.CreateRoomRequest(name=room, empty_timeout=30))
        assert livekit_cluster.host_of(room) is b
        user = await node_clients.join_via(b, room, "user")
        user.room.on("track_subscribed", lambda track, pub, p: user.tasks.append(
            asyncio.create_task(count(track, "user"))))
        await user.publish_audio(user_voice)
        await helpers.wait_until(lambda: worker.jobs, 20, "the worker on node A to get the job of B's room")
        await helpers.wait_until(lambda: heard["agent"] >= 20 and heard["user"] >= 20, 30,
                                 f"speech both ways (agent heard {heard['agent']}, user heard {heard['user']})")
        assert [ctx.job.room.name for ctx in worker.jobs.values()] == [room]
        await helpers.cleanup(user)
    for task in agent_tasks:
        task.cancel()


async def test_jobs_spread_over_workers_on_both_nodes(livekit_cluster, node_api, helpers):
    """What a user relies on, whatever the machine's load: every room gets exactly one agent
    and both workers serve some. Rooms the server's cross-node pick leaves unoffered (its
    200 ms wait for the other nodes' answers runs out on a busy machine) get theirs through
    orphan recovery, so the test does not depend on how fast the nodes answer."""
    a, b = livekit_cluster.nodes

    async def handler(req: agents.JobRequest) -> None:
        await req.accept(lambda ctx: None, auto_disconnect=agents.AutoDisconnect.NEVER)

    # max_jobs 8 each: 12 rooms cannot all go to one worker, whatever the server's weighted pick
    wa = agents.Worker(handler, **cluster_worker_kwargs(livekit_cluster, a.url, max_jobs=8))
    wb = agents.Worker(handler, **cluster_worker_kwargs(livekit_cluster, b.url, max_jobs=8))
    rooms = [helpers.unique_room(f"spread{i}") for i in range(12)]

    def served() -> list[str]:
        return sorted(ctx.job.room.name for w in (wa, wb) for ctx in w.jobs.values())

    async with wa, wb:
        with AgentWatch(node_api(a), rooms) as watch:
            for i, room in enumerate(rooms):
                node = (a, b)[i % 2]
                await node_api(node).room.create_room(api.CreateRoomRequest(name=room, empty_timeout=300))
            await helpers.wait_until(lambda: served() == sorted(rooms), 120,
                                     "a job for each of the 12 rooms (orphan recovery included)")
            await helpers.wait_until(lambda: all(watch.now[r] == 1 for r in rooms), 30, "an agent in each room")
        assert served() == sorted(rooms)  # every room once, none twice
        assert watch.most == dict.fromkeys(rooms, 1), watch.most  # never two agents in a room
        assert wa.jobs and wb.jobs
        recovered = wa._orphans.dispatched + wb._orphans.dispatched
        print(f"{len(wa.jobs)} jobs on A, {len(wb.jobs)} on B; {len(recovered)} room(s) through recovery")
        for room in rooms:
            await node_api(a).room.delete_room(api.DeleteRoomRequest(room=room))
