"""Agent scripts run as real worker processes (``python <script> start ...``): drain on
SIGTERM, the second SIGTERM, the drain timeout, a server restart, bad configuration.

Asserts on exit codes, on the worker's (JSON) output, and on what the LiveKit server and
the other participants see.
"""

from __future__ import annotations

import json
import signal
from typing import Any

from livekit.agents.testing.server import LiveKitServer, free_port

MY_AGENT = "examples/my_agent.py"
GREETER = "tests/worker/agents/greeter_agent.py"


def log_messages(output: str) -> list[dict[str, Any]]:
    """The worker's JSON log lines (warnings from Python itself are not JSON)."""
    entries = []
    for line in output.splitlines():
        if line.startswith("{"):
            entries.append(json.loads(line))
    return entries


def assert_no_secret(output: str, secret: str) -> None:
    assert secret not in output, "the API secret appeared in the worker's output"


async def test_my_agent_drains_on_sigterm_until_its_room_ends(
    livekit_server, clients, lk, agent_process, helpers
):
    srv = livekit_server
    # the seed README's example, unchanged; credentials as flags (--api-secret=X form)
    worker = agent_process(MY_AGENT, None, f"--url={srv.url}", f"--api-key={srv.api_key}",
                           f"--api-secret={srv.api_secret}")
    await worker.wait_output("registered worker")
    # the worker is dispatchable once the server answered its first ping; give it one
    # room to prove it, then the drain scenario
    room_a = helpers.unique_room("drain-a")
    alice = await clients.join(room_a, "alice")
    await helpers.wait_until(lambda: "agent" in alice.joined, timeout=20, what="the example agent joining")
    assert await lk.agents_in(room_a) == ["agent"]

    worker.signal(signal.SIGTERM)
    await worker.wait_output("draining")
    await worker.wait_output("worker status: full")

    # a room created while draining is not taken: the server finds no available worker
    refused_before = srv.log_tail(100000).count("failed to send job request")
    room_b = helpers.unique_room("drain-b")
    bob = await clients.join(room_b, "bob")
    await helpers.wait_until(lambda: srv.log_tail(100000).count("failed to send job request") > refused_before,
                             what="the server finding no worker for the new room")
    assert await lk.agents_in(room_b) == []
    assert "agent" not in bob.joined
    assert room_b not in worker.output()

    # the running job keeps going while its room lives
    assert worker.proc.poll() is None
    assert await lk.agents_in(room_a) == ["agent"]

    # the room ends (its last participant leaves): the agent leaves, the worker exits 0
    await alice.leave()
    assert await worker.wait_exit(timeout=30) == 0
    out = worker.output()
    assert "auto_disconnect" in out and "worker stopped" in out
    assert await lk.agents_in(room_a) == []
    assert_no_secret(out, srv.api_secret)
    # production logs are JSON lines
    messages = [m["message"] for m in log_messages(out)]
    assert any(m.startswith("registered worker") for m in messages)


async def test_second_sigterm_ends_running_jobs_and_exits_nonzero(
    livekit_server, clients, lk, agent_process, helpers
):
    srv = livekit_server
    worker = agent_process(GREETER, srv)  # credentials from LIVEKIT_* variables
    await worker.wait_output("registered worker")
    room = helpers.unique_room("cut")
    alice = await clients.join(room, "alice")
    greeting = await helpers.wait_until(
        lambda: [d for _, d in alice.data if d.startswith(b"hello from agent-")], timeout=20,
        what="the greeter's data message")
    identity = greeting[0].decode().removeprefix("hello from ")
    await helpers.wait_until(lambda: identity in alice.joined, what="alice seeing the agent join")

    worker.signal(signal.SIGTERM)
    await worker.wait_output("draining")
    assert worker.proc.poll() is None  # still serving alice
    worker.signal(signal.SIGTERM)
    code = await worker.wait_exit(timeout=30)
    assert code != 0
    out = worker.output()
    assert "ending 1 job(s) still running" in out
    assert "shutdown callback ran: shutdown" in out
    assert "1 job(s) were ended before they finished" in out
    # the agent left the room: alice saw it go and the server no longer lists it
    await helpers.wait_until(lambda: identity in alice.left, what="alice seeing the agent leave")
    assert await lk.agents_in(room) == []
    assert_no_secret(out, srv.api_secret)


async def test_drain_timeout_ends_remaining_jobs(livekit_server, clients, lk, agent_process, helpers):
    srv = livekit_server
    worker = agent_process(GREETER, srv, "--drain-timeout", "1")
    await worker.wait_output("registered worker")
    room = helpers.unique_room("timeout")
    alice = await clients.join(room, "alice")
    await helpers.wait_until(lambda: alice.data, timeout=20, what="the greeter joining")
    worker.signal(signal.SIGTERM)
    assert await worker.wait_exit(timeout=30) == 1
    out = worker.output()
    assert "drain timeout (1s) reached: ending 1 job(s) still running" in out
    assert "shutdown callback ran: drain_timeout" in out
    assert await lk.agents_in(room) == []


async def test_worker_reconnects_after_server_restart(clients, agent_process, helpers):
    from livekit import rtc

    with LiveKitServer() as srv:
        # a server of its own (this test kills it); --api-secret X form
        worker = agent_process(GREETER, None, "--url", srv.url, "--api-key", srv.api_key,
                               "--api-secret", srv.api_secret)
        await worker.wait_output("registered worker")

        async def greeted_in(room_name: str) -> None:
            room = rtc.Room()
            got: list[bytes] = []
            room.on("data_received", lambda pkt: got.append(pkt.data))
            await room.connect(srv.url, srv.token("carol", room_name))
            try:
                await helpers.wait_until(lambda: got, timeout=20, what=f"the greeter in {room_name}")
            finally:
                await room.disconnect()

        await greeted_in(helpers.unique_room("before"))
        srv.kill()
        await worker.wait_output("lost the connection to the LiveKit server")
        srv.start()
        await worker.wait_output("registered worker", count=2, timeout=30)
        assert worker.proc.poll() is None
        await greeted_in(helpers.unique_room("after"))
        out = worker.output()
        assert "retrying in" in out or out.count("registered worker") == 2
        assert_no_secret(out, srv.api_secret)


async def test_bad_credentials_exit_fast_without_leaking_the_secret(livekit_server, agent_process):
    bad_secret = "not-the-right-secret-but-long-enough-0123"
    worker = agent_process(MY_AGENT, None, f"--url={livekit_server.url}", "--api-key", livekit_server.api_key,
                           f"--api-secret={bad_secret}")
    assert await worker.wait_exit(timeout=15) == 1
    out = worker.output()
    assert "refused the API key" in out and "LIVEKIT_API_SECRET" in out
    assert "retrying" not in out
    assert_no_secret(out, bad_secret)


async def test_wrong_url_exits_with_a_clear_error(livekit_server, agent_process):
    worker = agent_process(MY_AGENT, livekit_server, "--url", f"{livekit_server.http_url}/not-livekit")
    assert await worker.wait_exit(timeout=15) == 1
    out = worker.output()
    assert "is not a LiveKit agent endpoint" in out and "--url" in out
    assert_no_secret(out, livekit_server.api_secret)


async def test_missing_credentials_name_flag_and_variable(agent_process):
    worker = agent_process(MY_AGENT, None, env={"LIVEKIT_URL": f"ws://127.0.0.1:{free_port()}"})
    assert await worker.wait_exit(timeout=15) == 2
    out = worker.output()
    assert "--api-key" in out and "LIVEKIT_API_KEY" in out
    assert "--api-secret" in out and "LIVEKIT_API_SECRET" in out
