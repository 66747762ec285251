"""A test that fails while talking to the ``livekit_server`` fixture's server reports the
server's log lines written while it ran (what the server saw of it), and only those."""

from __future__ import annotations

from livekit.agents.testing.server import ensure_server_binary

pytest_plugins = ["pytester"]

TESTS = '''
from livekit import api


async def _create(server, name):
    lkapi = server.api()
    try:
        await lkapi.room.create_room(api.CreateRoomRequest(name=name))
    finally:
        await lkapi.aclose()


async def test_passes_first(livekit_server):
    await _create(livekit_server, "room-of-the-passing-test")


async def test_fails(livekit_server):
    await _create(livekit_server, "room-of-the-failing-test")
    assert False, "on purpose"
'''


def test_a_failed_test_reports_the_servers_log_of_its_own_run(pytester, monkeypatch):
    # pytester gives the run a HOME of its own: point it at the binary already built
    monkeypatch.setenv("LIVEKIT_SERVER_BIN", str(ensure_server_binary()))
    pytester.makepyfile(test_server=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", "asyncio_mode=auto", "-rN")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    section = out.split("livekit-server log during the test", 1)
    assert len(section) == 2, out
    assert "room-of-the-failing-test" in section[1]
    assert "room-of-the-passing-test" not in section[1]  # the earlier test's lines are not its own
