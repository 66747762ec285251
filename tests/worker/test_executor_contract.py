"""The values that cross the executor interface, and the answer state a JobRequest owns.

These are what a process executor relies on: everything it sends between the worker and
a child pickles, and a request's answer moves only through its own methods."""

from __future__ import annotations

import asyncio
import pickle

import pytest

from livekit.agents.cli.connect import synthetic_job
from livekit.agents.exceptions import JobError
from livekit.agents.executor.base import Assignment, JobInfo
from livekit.agents.job_end import JobEnd, JobEndKind
from livekit.agents.job_request import AcceptInfo, AnswerState, JobRequest, OfferAnswer, answer_request


def test_interface_values_pickle() -> None:
    job = synthetic_job("room-a", 1, "alice")
    values = [
        JobInfo(job=job, agent_identity="agent-1", status="running", pid=42),
        Assignment(job=job, url="ws://127.0.0.1:7880", token="eyJ.secret.token",
                   fallback_urls=("ws://127.0.0.1:7890",)),
        JobEnd(JobEndKind.FAILED, "RuntimeError: boom"),
        OfferAnswer(AcceptInfo("agent-1", "Agent", "{}", {"k": "v"})),
        OfferAnswer(None, "rejected by the request handler"),
    ]
    for value in values:
        assert pickle.loads(pickle.dumps(value)) == value
    restored = pickle.loads(pickle.dumps(values[0]))
    assert restored.job.participant.identity == "alice" and restored.room_name == "room-a"
    assert "secret" not in repr(values[1])  # a token is never printed


def test_an_assignment_reaches_a_job_process_with_the_fallback_urls() -> None:
    """A job in a job process rejoins its room through the worker's other nodes: the
    assignment sent over the executor's socket keeps them."""
    from livekit.agents.executor._child import assignment_from_wire, assignment_to_wire

    sent = Assignment(job=synthetic_job("room-a", 1, None), url="ws://127.0.0.1:7880", token="t",
                      fallback_urls=("ws://127.0.0.1:7890", "ws://127.0.0.1:7900"))
    received = assignment_from_wire(pickle.loads(pickle.dumps(assignment_to_wire(sent))))
    assert received == sent and received.fallback_urls == sent.fallback_urls


@pytest.mark.parametrize(
    ("text", "kind", "failed", "reason"),
    [
        ("success", JobEndKind.SUCCESS, False, "success"),
        ("auto_disconnect", JobEndKind.AUTO_DISCONNECT, False, "auto_disconnect"),
        ("failed: ValueError: x", JobEndKind.FAILED, True, "failed: ValueError: x"),
        ("drain_timeout", JobEndKind.DRAIN_TIMEOUT, True, "drain_timeout"),
        ("shutdown", JobEndKind.SHUTDOWN, True, "shutdown"),
        ("connection_lost", JobEndKind.CONNECTION_LOST, True, "connection_lost"),
        ("the user said bye", JobEndKind.SUCCESS, False, "success"),
    ],
)
def test_job_end_kinds(text: str, kind: JobEndKind, failed: bool, reason: str) -> None:
    end = JobEnd.parse(text)
    assert (end.kind, end.failed, end.reason) == (kind, failed, reason)


class Responder:
    def __init__(self) -> None:
        self.accepted: list[str] = []
        self.started = asyncio.Event()

    async def accept(self, request: JobRequest, args) -> None:  # type: ignore[no-untyped-def]
        self.accepted.append(args.identity)
        await self.started.wait()

    async def reject(self, request: JobRequest) -> None:
        return None


async def test_a_request_is_answered_once() -> None:
    responder = Responder()
    request = JobRequest(synthetic_job("r", 0, None), responder, request_timeout=5)

    async def handler(req: JobRequest) -> None:
        await req.accept(lambda ctx: None, identity="me")

    answer, task = await answer_request(handler, request, 5)
    assert answer.accept == AcceptInfo("me") and request.state is AnswerState.ACCEPTED
    with pytest.raises(JobError, match="already accepted"):
        await request.reject()
    assert not request.expire() and not request.decline("late")
    responder.started.set()
    await task


async def test_an_expired_request_refuses_a_late_answer() -> None:
    late: list[BaseException] = []

    async def slow(req: JobRequest) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            try:
                await req.accept(lambda ctx: None)
            except JobError as exc:
                late.append(exc)
            raise

    request = JobRequest(synthetic_job("r", 0, None), Responder(), request_timeout=0.2)
    answer, task = await answer_request(slow, request, 0.2)
    assert not answer.accepted and "request_timeout (0.2s)" in answer.reason
    assert request.state is AnswerState.EXPIRED
    await asyncio.gather(task, return_exceptions=True)
    assert late and "can no longer be answered" in str(late[0])


async def test_a_handler_that_returns_or_raises_declines() -> None:
    async def silent(req: JobRequest) -> None:
        return None

    async def broken(req: JobRequest) -> None:
        raise ValueError("bug")

    for handler, why in ((silent, "returned without accepting"), (broken, "raised ValueError: bug")):
        request = JobRequest(synthetic_job("r", 0, None), Responder(), request_timeout=5)
        answer, _ = await answer_request(handler, request, 5)
        assert not answer.accepted and why in answer.reason and request.state is AnswerState.REJECTED
