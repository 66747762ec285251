"""A room deleted while orphan recovery is about to dispatch to it stays deleted:
``CreateDispatch`` on a missing room creates it anew (livekit-server v1.13.5), which would
bring an agent into a room nobody wants. (This happened between tests sharing a server: a
room deleted at the end of one test came back and took a slot of the next test's worker.)"""

from __future__ import annotations

from typing import Any

from livekit import agents, api
from livekit.protocol import agent as agent_pb
from livekit.protocol import models

from livekit.agents.orphans import MARKER, OrphanRecovery, admit


async def _exists(lk: Any, room: str) -> bool:
    return bool((await lk._api.room.list_rooms(api.ListRoomsRequest(names=[room]))).rooms)


async def test_a_room_deleted_before_the_dispatch_gets_none(livekit_server, lk, worker_opts, helpers) -> None:
    worker = agents.Worker(lambda req: None, **worker_opts())  # only its options are used
    scanner = OrphanRecovery(worker, livekit_server.api_key, livekit_server.api_secret, grace=0.0, jitter=0.0)
    room = helpers.unique_room("deleted")
    info = await lk.create_room(room)

    async def delete_it(name: str) -> None:  # the user deletes the room right then
        await lk.delete_room(name)

    scanner.before_dispatch = delete_it
    assert await scanner._claim(lk._api, info) is False
    assert not await _exists(lk, room), "the dispatch created the deleted room anew"
    assert scanner.dispatched == []


async def test_a_recovery_job_for_a_room_its_dispatch_created_is_declined_and_the_room_removed(lk, helpers) -> None:
    room = helpers.unique_room("phantom")
    await lk.create_room(room)
    await lk.delete_room(room)
    # what a scanner that lost the race did: the dispatch makes the room anew
    made = await lk._api.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(
        room=room, agent_name="", metadata=MARKER))
    assert await _exists(lk, room)
    job = agent_pb.Job(id="AJ_test", dispatch_id=made.id, agent_name="", metadata=MARKER,
                       type=agent_pb.JobType.JT_ROOM, room=models.Room(name=room))

    why = await admit(lk._api, job)

    assert why == "the room was deleted before its recovery dispatch reached it"
    assert not await _exists(lk, room)
