"""``dev`` and ``connect``: agent scripts run as real processes against the real server,
seen by real participants."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

GREETER = "tests/worker/agents/greeter_agent.py"
BUSY = "tests/worker/agents/busy_agent.py"


async def test_dev_is_not_gated_by_load_and_logs_readable_debug_text(
    livekit_server, clients, lk, agent_process, helpers
):
    # the script's load_fn says 0.99, far over the default threshold 0.7
    worker = agent_process(BUSY, livekit_server, defaults=False, command="dev")
    await worker.wait_output("registered worker")
    room = helpers.unique_room("dev")
    alice = await clients.join(room, "alice")
    greeting = await helpers.wait_until(lambda: [d for _, d in alice.data if d.startswith(b"hello from agent-")],
                                        timeout=30, what="the agent of a dev worker whose load is 0.99")
    assert greeting
    out = worker.output()
    assert "worker status: full" not in out
    lines = [line for line in out.splitlines() if line.strip()]
    assert not any(line.startswith("{") for line in lines), "dev logs are text, not JSON"
    # the framework's debug lines: the load it measured, and did not act on
    assert any("DEBUG" in line and "livekit.agents: worker load 0.99" in line for line in lines), out[-2000:]
    info_port = int(out.split("health endpoint on http://0.0.0.0:")[1].split("/")[0])
    assert info_port != 8081  # a free port: several dev workers can run side by side
    worker.signal(signal.SIGTERM)
    await alice.leave()
    assert await worker.wait_exit(timeout=40) == 0


async def test_start_is_gated_by_the_same_load(livekit_server, agent_process):
    worker = agent_process(BUSY, livekit_server, "--http-port=0", "--log-format=json", defaults=False)
    await worker.wait_output("registered worker")
    await worker.wait_output("worker status: full")
    full = [json.loads(line) for line in worker.output().splitlines() if "worker status: full" in line]
    assert "load 0.99 >= load_threshold 0.7" in full[0]["message"]


async def test_connect_runs_one_job_in_the_room_now(livekit_server, clients, lk, agent_process, helpers):
    room = helpers.unique_room("connect")
    alice = await clients.join(room, "alice")
    job = agent_process(GREETER, livekit_server, "--room", room, "--participant-identity", "alice",
                        defaults=False, command="connect")
    greeting = await helpers.wait_until(lambda: [d for _, d in alice.data if d.startswith(b"hello from agent-AJ_connect_")],
                                        timeout=30, what="the connected agent's data message")
    identity = greeting[0].decode().removeprefix("hello from ")
    await helpers.wait_until(lambda: identity in alice.joined, what="alice seeing the agent join")
    assert identity in await lk.agents_in(room)
    # no worker registered: the job was not dispatched
    assert "registered worker" not in job.output()
    # the greeter leaves when the room empties (ROOM_EMPTY); connect then exits 0
    await alice.leave()
    assert await job.wait_exit(timeout=30) == 0
    assert "ended: auto_disconnect" in job.output()
    assert await lk.agents_in(room) == []


async def test_connect_stops_cleanly_on_sigterm(livekit_server, clients, lk, agent_process, helpers):
    room = helpers.unique_room("connect-stop")
    alice = await clients.join(room, "alice")
    job = agent_process(GREETER, livekit_server, "--room", room, "--log-format=text", defaults=False,
                        command="connect")
    await helpers.wait_until(lambda: alice.data, timeout=30, what="the connected agent")
    identity = alice.data[0][1].decode().removeprefix("hello from ")
    await helpers.wait_until(lambda: identity in alice.joined, what="alice seeing the agent join")
    job.signal(signal.SIGTERM)
    assert await job.wait_exit(timeout=30) == 0
    assert "shutdown callback ran: shutdown" in job.output()
    await helpers.wait_until(lambda: identity in alice.left, what="alice seeing the agent leave")


async def test_dev_reload_restarts_the_worker_on_a_code_change(
    livekit_server, clients, lk, agent_process, helpers, tmp_path: Path
):
    script = tmp_path / "greeter_agent.py"
    shutil.copy(Path(__file__).parent / "agents" / "greeter_agent.py", script)
    worker = agent_process(script, livekit_server, "--reload", "--drain-timeout=1", defaults=False, command="dev")
    await worker.wait_output("registered worker")
    room = helpers.unique_room("reload")
    alice = await clients.join(room, "alice")
    await helpers.wait_until(lambda: alice.data, timeout=30, what="the first worker's agent")
    first_agent = alice.data[0][1].decode().removeprefix("hello from ")
    await helpers.wait_until(lambda: first_agent in alice.joined, what="alice seeing the agent join")

    script.write_text(script.read_text().replace("hello from", "hi from"))
    await worker.wait_output("restarting the worker", timeout=30)
    # the running job had the drain timeout, then was ended: its agent left the room
    await helpers.wait_until(lambda: first_agent in alice.left, timeout=30, what="the old agent leaving")
    await worker.wait_output("registered worker", count=2, timeout=60)
    # the new code serves new rooms
    bob = await clients.join(helpers.unique_room("reload-new"), "bob")
    await helpers.wait_until(lambda: [d for _, d in bob.data if d.startswith(b"hi from")], timeout=30,
                             what="the restarted worker running the changed code")
    await bob.leave()
    await worker.wait_output("ended: auto_disconnect", timeout=30)
    worker.signal(signal.SIGTERM)
    assert await worker.wait_exit(timeout=60) == 0
