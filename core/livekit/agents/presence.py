"""Make a newly joined agent visible to the room at once.

livekit-server v1.13.5 tells the other participants about a newcomer that publishes no
track only in a batch sent every 3 seconds (``subscriberUpdateInterval`` in its
``pkg/rtc/room.go``, not configurable); an update of the newcomer's own metadata or
attributes is sent at once (``Room.onParticipantUpdate``, immediate). A plain
``livekit.rtc`` client is therefore seen 0–3 s after it joined (2.8–3.0 s in a fresh room,
whose 3 s ticker starts when the room does). An agent announces itself right after it
joined by setting its attribute :data:`JOB_ATTRIBUTE` to its job id, and is seen within a
round trip. This needs the agent's ``can_update_metadata`` permission (the default of
:class:`~livekit.agents.WorkerPermissions`); without it the agent is seen on the batch.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("livekit.agents")

JOB_ATTRIBUTE = "agents.job_id"
"""The participant attribute an agent sets to its job id when it joined."""


async def announce(room: Any, job_id: str) -> bool:
    """Set :data:`JOB_ATTRIBUTE` on the room's local participant; ``False`` if refused."""
    try:
        await room.local_participant.set_attributes({JOB_ATTRIBUTE: job_id})
    except Exception as exc:  # no permission: seen on the server's next batch instead
        logger.debug("job %s: could not announce the agent (%s); others see it within 3 s", job_id, exc,
                     extra={"job_id": job_id})
        return False
    return True


__all__ = ["JOB_ATTRIBUTE", "announce"]
