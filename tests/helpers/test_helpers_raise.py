"""The suite's own helpers never turn an error into a passing answer."""

from __future__ import annotations

import asyncio

import pytest
from livekit import api as lkapi

from tests.conftest import Client, ServerHelpers, leave_all


async def test_agents_in_raises_when_the_server_api_fails(livekit_server):
    wrong = lkapi.LiveKitAPI(livekit_server.http_url, livekit_server.api_key, "a-wrong-secret-0123456789-0123456789")
    try:
        helpers = ServerHelpers(livekit_server, wrong)
        for call in (helpers.agents_in, helpers.identities, helpers.delete_room):
            with pytest.raises(lkapi.TwirpError):
                await call("some-room")
    finally:
        await wrong.aclose()


async def test_agents_in_is_empty_for_a_room_that_does_not_exist(lk, helpers):
    name = helpers.unique_room("absent")
    assert await lk.agents_in(name) == [] and await lk.identities(name) == []
    await lk.delete_room(name)  # already gone: fine


async def test_a_failed_publishing_task_fails_the_leave():
    class Room:
        def isconnected(self) -> bool:
            return False

    async def broken() -> None:
        raise RuntimeError("capture_frame failed")

    client = Client(room=Room(), identity="alice")
    client.tasks.append(asyncio.create_task(broken()))
    await asyncio.sleep(0)
    ok = Client(room=Room(), identity="bob")
    with pytest.raises(AssertionError, match="alice's publishing task failed.*capture_frame failed"):
        await leave_all([client, ok])
