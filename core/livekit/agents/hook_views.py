"""What worker hooks receive: snapshots of the worker and of a job, not the live objects
(whose whole surface would otherwise become plugin API)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WorkerView:
    """The worker when the hook was called."""

    id: str | None
    agent_name: str
    draining: bool
    load: float
    job_count: int
    job_ids: tuple[str, ...]

    @classmethod
    def of(cls, worker: Any) -> WorkerView:
        infos = worker._job_infos()
        return cls(
            id=worker.id,
            agent_name=worker.options.agent_name,
            draining=bool(worker.draining),
            load=float(worker.load),
            job_count=len(infos),
            job_ids=tuple(i.id for i in infos),
        )


@dataclass(frozen=True)
class JobView:
    """A job when the hook was called: ``room`` is the room's name, ``participant`` the
    publisher's identity (``JT_PUBLISHER`` jobs), ``status`` pending/running/success/failed."""

    id: str
    room: str
    type: str
    participant: str | None
    agent_identity: str
    status: str

    @classmethod
    def of(cls, info: Any) -> JobView:
        return cls(
            id=info.id,
            room=info.room_name,
            type=info.type.name,
            participant=info.participant,
            agent_identity=info.agent_identity,
            status=info.status,
        )
