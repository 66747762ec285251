"""Jobs of an in-process Worker against the real LiveKit server, with real rtc clients."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from typing import Any

import pytest
from livekit import agents, rtc

from livekit.agents.exceptions import AuthenticationError, WorkerError


async def test_room_job_joins_subscribes_audio_only_and_sends_data(
    livekit_server, clients, lk, speech, worker_opts, helpers
):
    seen: dict[str, Any] = {"kinds": [], "frames": 0, "contexts": []}

    async def agent_fn(ctx: agents.JobContext) -> None:
        seen["contexts"].append(ctx)

        async def read_audio(track: rtc.Track) -> None:
            async for event in rtc.AudioStream(track):
                assert event.frame.samples_per_channel > 0
                seen["frames"] += 1
                if seen["frames"] == 20:
                    await ctx.agent.publish_data(f"heard you, job {ctx.id}".encode(), topic="agent")

        def on_subscribed(track: rtc.Track, pub: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant):
            seen["kinds"].append(track.kind)
            if track.kind == rtc.TrackKind.KIND_AUDIO:
                ctx.create_task(read_audio(track))

        ctx.room.on("track_subscribed", on_subscribed)

    async def handler(req: agents.JobRequest) -> None:
        seen["request"] = (req.id, req.room.name, req.publisher)
        await req.accept(agent_fn, subscribe_cb=agents.AutoSubscribe.AUDIO_ONLY)

    room = helpers.unique_room()
    async with agents.Worker(request_handler=handler, worker_type=agents.JobType.JT_ROOM, **worker_opts()) as worker:
        user = await clients.join(room, "alice")
        await user.publish_audio(speech(["hello agent, can you hear me?"], sample_rate=48000))
        await user.publish_video()

        job_id = (await helpers.wait_until(lambda: seen.get("request"), what="a job request"))[0]
        assert seen["request"][1] == room and seen["request"][2] is None
        expected_identity = f"agent-{job_id}"
        await helpers.wait_until(lambda: expected_identity in user.joined, what="the agent joining the room")
        assert await lk.agents_in(room) == [expected_identity]

        # (this server version does not tell the client who sent a data packet: the job id
        # in the payload identifies the agent)
        await helpers.wait_until(lambda: f"heard you, job {job_id}".encode() in [d for _, d in user.data],
                                 timeout=20, what="the agent's data message")
        assert seen["frames"] >= 20
        # both tracks were published long before the agent read 20 frames: only audio subscribed
        assert seen["kinds"] == [rtc.TrackKind.KIND_AUDIO]
        ctx = seen["contexts"][0]
        subscribed = [pub.kind for p in ctx.room.remote_participants.values()
                      for pub in p.track_publications.values() if pub.subscribed]
        assert subscribed == [rtc.TrackKind.KIND_AUDIO]
        assert ctx.id == job_id and ctx.room.name == room and ctx.agent.identity == expected_identity
        assert worker.info()["job_count"] == 1


async def test_publisher_jobs_one_per_publisher(livekit_server, clients, lk, speech, worker_opts, helpers):
    contexts: list[agents.JobContext] = []
    requests: list[agents.JobRequest] = []

    async def handler(req: agents.JobRequest) -> None:
        requests.append(req)
        await req.accept(contexts.append, subscribe_cb=agents.AutoSubscribe.SUBSCRIBE_NONE)

    room = helpers.unique_room("pub")
    sample = speech(["one two three."], sample_rate=48000)
    async with agents.Worker(request_handler=handler, worker_type=agents.JobType.JT_PUBLISHER, **worker_opts()):
        listener = await clients.join(room, "listener")  # never publishes: no job for it
        alice = await clients.join(room, "alice")
        bob = await clients.join(room, "bob")
        await alice.publish_audio(sample)
        await bob.publish_audio(sample)
        await helpers.wait_until(lambda: len(contexts) == 2, what="two publisher jobs")
        await helpers.wait_until(lambda: len(listener.joined) >= 4, what="both agents in the room")

        assert sorted(r.publisher.identity for r in requests) == ["alice", "bob"]
        assert sorted(c.participant.identity for c in contexts) == ["alice", "bob"]
        agent_ids = sorted(await lk.agents_in(room))
        assert agent_ids == sorted(f"agent-{c.id}" for c in contexts)
        assert len(set(agent_ids)) == 2

        # PUBLISHER_LEFT: bob's agent leaves with bob, alice's stays
        bob_ctx = next(c for c in contexts if c.participant.identity == "bob")
        alice_ctx = next(c for c in contexts if c.participant.identity == "alice")
        await bob.leave()
        await helpers.wait_until(lambda: bob_ctx.shutdown_reason == "auto_disconnect", what="bob's agent leaving")
        await helpers.wait_until(lambda: f"agent-{bob_ctx.id}" not in listener.joined or
                                 f"agent-{bob_ctx.id}" in listener.left, what="bob's agent gone")
        assert alice_ctx.shutdown_reason is None
        assert f"agent-{alice_ctx.id}" in await lk.agents_in(room)


async def test_rejected_job_goes_to_another_worker(livekit_server, clients, lk, worker_opts, helpers):
    rejected: list[str] = []
    taken: list[str] = []

    async def refuse(req: agents.JobRequest) -> None:
        rejected.append(req.room.name)
        await req.reject()

    started: list[agents.JobContext] = []

    async def take(req: agents.JobRequest) -> None:
        taken.append(req.room.name)
        await req.accept(started.append, identity=f"taker-{req.id}")

    async with agents.Worker(refuse, **worker_opts()), agents.Worker(take, **worker_opts()):
        rooms: list[str] = []
        # the server picks a worker at random: create rooms until the refusing one was asked
        for _ in range(12):
            room = helpers.unique_room("rej")
            rooms.append(room)
            await lk.create_room(room)
            await helpers.wait_until(lambda room=room: room in taken, what=f"a worker taking {room}")
            if rejected:
                break
        assert rejected, "the server never offered a job to the refusing worker"
        assert rejected[0] in taken
        agents_there = await helpers.wait_until(lambda: lk.agents_in(rejected[0]), what="the agent in the room")
        assert agents_there[0].startswith("taker-")
        # leave the rooms once every job joined (a room deleted under a joining agent
        # makes its connect retry for seconds)
        await helpers.wait_until(lambda: len(started) == len(rooms), what="every job running")
        for room in rooms:
            await lk.delete_room(room)


async def test_two_workers_share_rooms(livekit_server, lk, worker_opts, helpers):
    jobs: dict[str, list[str]] = {"a": [], "b": []}

    def accept_as(name: str):
        async def handler(req: agents.JobRequest) -> None:
            await req.accept(lambda ctx: jobs[name].append(ctx.room.name))
        return handler

    rooms: list[str] = []
    async with agents.Worker(accept_as("a"), **worker_opts()), agents.Worker(accept_as("b"), **worker_opts()):
        for _ in range(16):
            room = helpers.unique_room("share")
            rooms.append(room)
            await lk.create_room(room)
            await helpers.wait_until(lambda room=room: room in jobs["a"] + jobs["b"], what=f"a job for {room}")
            if jobs["a"] and jobs["b"]:
                break
        assert jobs["a"] and jobs["b"], f"one worker got every room: {jobs}"
        assert not set(jobs["a"]) & set(jobs["b"]), "a room was served twice"
        await helpers.wait_until(lambda: len(jobs["a"]) + len(jobs["b"]) == len(rooms), what="every job running")
        for room in rooms:
            await lk.delete_room(room)


async def test_auto_disconnect_when_last_participant_leaves(livekit_server, clients, lk, worker_opts, helpers):
    contexts: list[agents.JobContext] = []
    ended: list[str] = []

    async def agent_fn(ctx: agents.JobContext) -> None:
        contexts.append(ctx)
        ctx.add_shutdown_callback(lambda: ended.append(ctx.shutdown_reason))

    async def handler(req: agents.JobRequest) -> None:
        await req.accept(agent_fn, auto_disconnect=agents.AutoDisconnect.ROOM_EMPTY)

    room = helpers.unique_room("empty")
    async with agents.Worker(handler, **worker_opts()) as worker:
        alice = await clients.join(room, "alice")
        bob = await clients.join(room, "bob")
        await helpers.wait_until(lambda: contexts and contexts[0].status == "running", what="the job running")
        await alice.leave()
        await helpers.wait_until(lambda: "alice" in bob.left, what="alice gone")
        assert contexts[0].shutdown_reason is None  # bob is still there
        await bob.leave()
        await helpers.wait_until(lambda: ended == ["auto_disconnect"], what="the job ending on auto disconnect")
        await helpers.wait_until(lambda: not worker.jobs, what="the job removed from the worker")
        assert contexts[0].status == "success"
        assert await lk.agents_in(room) == []


async def test_failures_are_contained(livekit_server, clients, lk, worker_opts, helpers, caplog):
    """A handler that raises or stalls rejects its job; an agent that raises fails its job
    only; the worker keeps serving."""
    running: list[agents.JobContext] = []

    async def good_agent(ctx: agents.JobContext) -> None:
        running.append(ctx)

    async def bad_agent(ctx: agents.JobContext) -> None:
        raise RuntimeError("agent exploded")

    offers: list[str] = []

    async def handler(req: agents.JobRequest) -> None:
        offers.append(req.room.name)
        if req.room.name.startswith("raise"):
            raise ValueError("handler bug")
        if req.room.name.startswith("stall"):
            await asyncio.sleep(3600)
        if req.room.name.startswith("silent"):
            return
        await req.accept(bad_agent if req.room.name.startswith("bad") else good_agent)

    caplog.set_level(logging.INFO, logger="livekit.agents")
    names = {k: helpers.unique_room(k) for k in ("good", "raise", "stall", "silent", "bad")}
    async with agents.Worker(handler, **worker_opts(request_timeout=1.0)) as worker:
        await lk.create_room(names["good"])
        await helpers.wait_until(lambda: running, what="the good job running")
        good = running[0]
        for key in ("raise", "stall", "silent"):
            await lk.create_room(names[key])
        await helpers.wait_until(lambda: sum("rejected job" in r.getMessage() for r in caplog.records) >= 3,
                                 what="three rejections logged")
        text = "\n".join(r.getMessage() for r in caplog.records)
        assert "the request handler raised ValueError: handler bug" in text
        assert "within request_timeout (1s)" in text
        assert "returned without accepting or rejecting" in text
        for key in ("raise", "stall", "silent"):
            assert await lk.agents_in(names[key]) == []

        await lk.create_room(names["bad"])
        await helpers.wait_until(lambda: "agent exploded" in text_of(caplog) and not any(
            c.job.room.name == names["bad"] for c in worker.jobs.values()), what="the bad job failing")
        assert "ended: failed: RuntimeError: agent exploded" in text_of(caplog)
        assert await helpers.wait_until(lambda: _no_agents(lk, names["bad"]), what="bad agent left the room")
        # the good job and the worker are untouched
        assert good.status == "running" and good.shutdown_reason is None
        assert good.id in worker.jobs
        assert f"agent-{good.id}" in await lk.agents_in(names["good"])
        for room in names.values():
            await lk.delete_room(room)


async def _no_agents(lk: Any, room: str) -> bool:
    return await lk.agents_in(room) == []


def text_of(caplog: Any) -> str:
    return "\n".join(r.getMessage() for r in caplog.records)


async def test_max_jobs_holds_under_simultaneous_offers(livekit_server, lk, worker_opts, helpers):
    contexts: list[agents.JobContext] = []
    peak = 0

    async def handler(req: agents.JobRequest) -> None:
        nonlocal peak
        await asyncio.sleep(0.3)  # slow handler: offers overlap
        await req.accept(contexts.append, auto_disconnect=agents.AutoDisconnect.NEVER)
        peak = max(peak, len(worker.jobs))

    worker = agents.Worker(handler, **worker_opts(max_jobs=2, update_interval=0.5))
    rooms = [helpers.unique_room("max") for _ in range(5)]
    async with worker:
        await asyncio.gather(*(lk.create_room(r) for r in rooms))
        await helpers.wait_until(lambda: len(contexts) == 2, what="two jobs")
        await helpers.wait_until(lambda: worker.info()["status"] == "full", what="status full")
        # every offer has been answered (server timeout is 10 s); none got through
        await helpers.wait_until(lambda: not worker._reserved, what="offers answered")
        assert len(worker.jobs) == 2 and peak <= 2
        # a job ends: the worker is available again and takes a new room
        contexts[0].shutdown()
        await helpers.wait_until(lambda: worker.info()["status"] == "available", what="status available")
        late = helpers.unique_room("max-late")
        await lk.create_room(late)
        await helpers.wait_until(lambda: any(c.room.name == late for c in contexts), what="a job for the new room")
        assert len(worker.jobs) == 2
        for room in [*rooms, late]:
            await lk.delete_room(room)


async def test_load_threshold_reports_full(livekit_server, lk, worker_opts, helpers):
    load = {"value": 0.95}
    offers: list[str] = []

    async def handler(req: agents.JobRequest) -> None:
        offers.append(req.room.name)
        await req.accept(lambda ctx: None)

    worker = agents.Worker(handler, **worker_opts(load_fn=lambda: load["value"], load_threshold=0.8,
                                                   update_interval=0.2))
    async with worker:
        await helpers.wait_until(lambda: worker.info()["status"] == "full", what="full at load 0.95")
        assert worker.info()["load"] == pytest.approx(0.95)
        load["value"] = 0.1
        await helpers.wait_until(lambda: worker.info()["status"] == "available", what="available at load 0.1")
        room = helpers.unique_room("load")
        await lk.create_room(room)
        await helpers.wait_until(lambda: room in offers, what="an offer once available")
        await helpers.wait_until(lambda: [c for c in worker.jobs.values() if c.status == "running"],
                                 what="the job running")
        await lk.delete_room(room)


async def test_health_endpoint(livekit_server, lk, worker_opts, helpers):
    async def handler(req: agents.JobRequest) -> None:
        await req.accept(lambda ctx: None, auto_disconnect=agents.AutoDisconnect.NEVER)

    worker = agents.Worker(handler, **worker_opts())
    async with worker:
        base = f"http://127.0.0.1:{worker.health_port}"

        def get(path: str) -> tuple[int, bytes]:
            with urllib.request.urlopen(base + path, timeout=5) as r:
                return r.status, r.read()

        assert await asyncio.to_thread(get, "/") == (200, b"OK")
        room = helpers.unique_room("health")
        await lk.create_room(room)
        await helpers.wait_until(lambda: worker.jobs, what="a job")
        await helpers.wait_until(lambda: next(iter(worker.jobs.values())).status == "running", what="running")
        status, body = await asyncio.to_thread(get, "/worker")
        info = json.loads(body)
        assert status == 200
        assert info["worker_id"] == worker.id and info["worker_id"].startswith("AW_")
        assert info["draining"] is False and info["status"] == "available"
        assert info["job_count"] == 1 and info["jobs"][0]["room"] == room
        assert info["jobs"][0]["status"] == "running"
        await lk.delete_room(room)
        await helpers.wait_until(lambda: not worker.jobs, what="the job ending with its room")


async def test_plugin_hooks_see_each_stage(livekit_server, lk, worker_opts, helpers, plugin_host):
    from livekit.agents.hook_views import JobView, WorkerView

    calls: list[tuple[str, Any]] = []
    views: list[Any] = []

    class Recorder:
        PLUGIN_API = (1, 0)

        @agents.hookimpl
        def worker_registered(self, worker_id):
            calls.append(("worker_registered", worker_id))

        @agents.hookimpl
        def job_offered(self, job_request):
            calls.append(("job_offered", job_request.room.name))
            return False if job_request.room.name.startswith("veto") else None

        @agents.hookimpl
        def job_started(self, job_context):  # a snapshot (JobView), not the live context
            calls.append(("job_started", job_context.room))
            views.append(job_context)

        @agents.hookimpl
        def job_ended(self, job_context, reason):
            calls.append(("job_ended", (job_context.room, reason)))

        @agents.hookimpl
        def worker_load(self, worker):  # a snapshot (WorkerView), not the Worker
            calls.append(("worker_load", None))
            views.append(worker)
            return 0.25

        @agents.hookimpl
        def worker_draining(self, worker):
            calls.append(("worker_draining", worker.job_count))
            views.append(worker)

    plugin_host.register_plugin("recorder", Recorder())
    handled: list[str] = []

    async def handler(req: agents.JobRequest) -> None:
        handled.append(req.room.name)
        await req.accept(lambda ctx: None, auto_disconnect=agents.AutoDisconnect.NEVER)

    # the worker's own load is 0 here: what the test sees is the plugin's figure alone
    worker = agents.Worker(handler, **worker_opts(update_interval=0.2, load_fn=lambda: 0.0))
    veto, ok = helpers.unique_room("veto"), helpers.unique_room("ok")
    async with worker:
        assert ("worker_registered", worker.id) in calls
        await helpers.wait_until(lambda: ("worker_load", None) in calls, what="worker_load")
        await helpers.wait_until(lambda: worker.info()["load"] == pytest.approx(0.25), what="plugin load used")
        await lk.create_room(veto)
        await helpers.wait_until(lambda: ("job_offered", veto) in calls, what="the veto offer")
        await lk.create_room(ok)
        await helpers.wait_until(lambda: ("job_started", ok) in calls, what="job_started")
        assert handled == [ok]  # the plugin declined before the handler was asked
        await lk.delete_room(ok)
        ended = await helpers.wait_until(lambda: [c for c in calls if c[0] == "job_ended"], what="job_ended")
        assert ended[0][1][0] == ok and ended[0][1][1] in ("room_disconnected", "terminated")
        assert await worker.drain(timeout=5) == 0
    names = [c[0] for c in calls]
    assert names.index("job_offered") < names.index("job_started") < names.index("job_ended")
    assert ("worker_draining", 0) in calls
    assert all(isinstance(v, (JobView, WorkerView)) for v in views) and views
    started = next(v for v in views if isinstance(v, JobView))
    assert (started.room, started.status, started.type) == (ok, "running", "JT_ROOM")
    drained = [v for v in views if isinstance(v, WorkerView) and v.draining]
    assert drained and drained[0].id == worker.id
    await lk.delete_room(veto)


async def test_bad_credentials_fail_fast(livekit_server, caplog):
    worker = agents.Worker(lambda req: req.accept(lambda ctx: None), url=livekit_server.url,
                           api_key=livekit_server.api_key, api_secret="wrong-secret-0123456789-0123456789",
                           http_port=None)
    with pytest.raises(AuthenticationError) as info:
        await asyncio.wait_for(worker.run(), timeout=10)
    assert "refused the API key" in str(info.value) and "LIVEKIT_API_SECRET" in str(info.value)
    assert "wrong-secret" not in str(info.value)


async def test_unreachable_server_gives_up_after_retry_budget(caplog):
    from livekit.agents.testing.server import free_port

    caplog.set_level(logging.WARNING, logger="livekit.agents")
    worker = agents.Worker(lambda req: req.reject(), url=f"ws://127.0.0.1:{free_port()}", api_key="k",
                           api_secret="s" * 32, http_port=None, max_retry=3, retry_base=0.05)
    with pytest.raises(WorkerError) as info:
        await asyncio.wait_for(worker.run(), timeout=10)
    assert "gave up after 4 attempts" in str(info.value) and "connection refused" in str(info.value)
    assert sum("retrying in" in r.getMessage() for r in caplog.records) == 3
    assert worker.connection_failed


def test_missing_credentials_name_flag_and_env(monkeypatch):
    for var in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        monkeypatch.delenv(var, raising=False)
    worker = agents.Worker(lambda req: req.reject(), url="ws://x")
    with pytest.raises(WorkerError) as info:
        worker._resolve_credentials()
    msg = str(info.value)
    assert "--api-key" in msg and "LIVEKIT_API_KEY" in msg and "--api-secret" in msg and "LIVEKIT_API_SECRET" in msg
    assert "--url" not in msg
