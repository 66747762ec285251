"""JobRequest's answer state and answer_request, without a server: the rules a request
handler relies on (one answer, the default identity, what an expired or unanswered
request reads as, what is logged). The worker tests show the same through the real
server; these pin each rule down so a wrong branch cannot hide behind the slow path."""

from __future__ import annotations

import asyncio
import logging

import pytest
from livekit.protocol import agent as agent_pb
from livekit.protocol import models as models_pb

from livekit.agents.exceptions import JobError
from livekit.agents.job import AutoDisconnect, AutoSubscribe
from livekit.agents.job_request import (
    AcceptArguments,
    AcceptInfo,
    AnswerState,
    JobOffer,
    JobRequest,
    OfferAnswer,
    answer_request,
)


class Responder:
    def __init__(self, fail: BaseException | None = None) -> None:
        self.accepted: list[tuple[JobRequest, AcceptArguments]] = []
        self.rejected: list[JobRequest] = []
        self.fail = fail

    async def accept(self, request, args):
        self.accepted.append((request, args))
        if self.fail is not None:
            raise self.fail

    async def reject(self, request):
        self.rejected.append(request)


def job(id="AJ_1", room="r1", publisher: str | None = None, type=agent_pb.JobType.JT_ROOM):
    j = agent_pb.Job(id=id, type=type, room=models_pb.Room(name=room))
    if publisher is not None:
        j.participant.CopyFrom(models_pb.ParticipantInfo(identity=publisher))
    return j


def request(timeout=2.5, responder=None, **kw):
    responder = responder or Responder()
    return JobRequest(job(**kw), responder, request_timeout=timeout), responder


async def agent(ctx):
    pass


def test_the_offer_view_reads_the_job():
    offer = JobOffer(job(id="AJ_7", room="lobby", publisher="alice", type=agent_pb.JobType.JT_PUBLISHER))
    assert (offer.id, offer.room.name, offer.publisher.identity) == ("AJ_7", "lobby", "alice")
    assert JobOffer(job()).publisher is None


def test_a_new_request_is_pending_and_reads_as_not_accepted():
    req, _ = request(id="AJ_9", room="lobby")
    assert (req.id, req.room.name, req.job.id) == ("AJ_9", "lobby", "AJ_9")
    assert req.publisher is None
    assert req.state is AnswerState.PENDING and not req.answered
    assert req.accept_arguments is None
    assert req.answer() == OfferAnswer(None, "the request handler has not answered")
    assert not req.answer().accepted
    assert repr(req) == "JobRequest(id='AJ_9', room='lobby', type=JT_ROOM, state=pending)"


def test_a_publisher_job_names_its_publisher():
    req, _ = request(publisher="bob", type=agent_pb.JobType.JT_PUBLISHER)
    assert req.publisher.identity == "bob"
    assert "type=JT_PUBLISHER" in repr(req)


async def test_accept_defaults_to_a_unique_identity_and_the_default_callbacks():
    req, responder = request(id="AJ_42")
    await req.accept(agent)
    assert req.state is AnswerState.ACCEPTED and req.answered
    [(got, args)] = responder.accepted
    assert got is req and args is req.accept_arguments
    assert args == AcceptArguments(agent, "agent-AJ_42", "", "", {}, AutoSubscribe.SUBSCRIBE_ALL, AutoDisconnect.DEFAULT)
    answer = req.answer()
    assert answer.accepted and answer == OfferAnswer(AcceptInfo("agent-AJ_42", "", "", {}))
    assert "state=accepted" in repr(req)


async def test_accept_passes_identity_name_metadata_attributes_and_callbacks():
    req, responder = request()
    attrs = {"role": "agent"}

    def subscribe(pub, participant):
        return False

    def disconnect(ctx):
        return True

    await req.accept(agent, identity="bot", name="Bot", metadata="{}", attributes=attrs,
                     subscribe_cb=subscribe, auto_disconnect_cb=disconnect)
    args = responder.accepted[0][1]
    assert (args.identity, args.name, args.metadata, args.attributes) == ("bot", "Bot", "{}", attrs)
    assert args.subscribe_cb is subscribe and args.auto_disconnect_cb is disconnect
    attrs["role"] = "changed"  # the request keeps its own copy, and so does what is sent
    assert args.attributes == {"role": "agent"}
    info = req.answer().accept
    assert info == AcceptInfo("bot", "Bot", "{}", {"role": "agent"})
    info.attributes["x"] = "y"
    assert args.attributes == {"role": "agent"}


async def test_the_callback_aliases_are_honoured():
    req, responder = request()
    await req.accept(agent, auto_subscribe=AutoSubscribe.SUBSCRIBE_NONE, auto_disconnect=AutoDisconnect.NEVER)
    args = responder.accepted[0][1]
    assert args.subscribe_cb is AutoSubscribe.SUBSCRIBE_NONE
    assert args.auto_disconnect_cb is AutoDisconnect.NEVER


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"subscribe_cb": AutoSubscribe.SUBSCRIBE_ALL, "auto_subscribe": AutoSubscribe.SUBSCRIBE_NONE},
         "pass subscribe_cb or auto_subscribe, not both"),
        ({"auto_disconnect_cb": AutoDisconnect.DEFAULT, "auto_disconnect": AutoDisconnect.NEVER},
         "pass auto_disconnect_cb or auto_disconnect, not both"),
    ],
)
async def test_accept_refuses_both_a_callback_and_its_alias(kw, message):
    req, responder = request()
    with pytest.raises(TypeError) as err:
        await req.accept(agent, **kw)
    assert str(err.value) == message
    assert req.state is AnswerState.PENDING and responder.accepted == []


async def test_accept_refuses_an_agent_function_that_is_not_callable():
    req, responder = request()
    with pytest.raises(TypeError, match="agent_fn must be a function taking a JobContext, not str"):
        await req.accept("agent")  # type: ignore[arg-type]
    assert req.state is AnswerState.PENDING and responder.accepted == []


async def test_a_request_is_answered_once():
    req, responder = request(id="AJ_3")
    await req.accept(agent)
    with pytest.raises(JobError, match="job AJ_3 was already accepted"):
        await req.accept(agent)
    with pytest.raises(JobError, match="job AJ_3 was already accepted"):
        await req.reject()
    assert len(responder.accepted) == 1 and responder.rejected == []

    req, responder = request(id="AJ_4")
    await req.reject()
    with pytest.raises(JobError, match="job AJ_4 was already rejected"):
        await req.accept(agent)
    assert responder.rejected == [req] and responder.accepted == []


async def test_reject_tells_the_responder_and_says_why():
    req, responder = request()
    await req.reject()
    assert req.state is AnswerState.REJECTED and req.answered
    assert responder.rejected == [req]
    assert req.answer() == OfferAnswer(None, "rejected by the request handler")


async def test_an_expired_request_reads_as_declined_and_refuses_late_answers():
    req, responder = request(id="AJ_5", timeout=2.5)
    assert req.expire() is True
    assert req.state is AnswerState.EXPIRED and req.answered
    assert req.answer() == OfferAnswer(
        None, "the request handler neither accepted nor rejected it within request_timeout (2.5s)")
    late = ("job AJ_5 can no longer be answered: the request handler took longer than "
            r"request_timeout \(2.5s\) and the job was rejected")
    with pytest.raises(JobError, match=late):
        await req.accept(agent)
    with pytest.raises(JobError, match=late):
        await req.reject()
    assert responder.accepted == [] and responder.rejected == []
    assert req.expire() is False and req.state is AnswerState.EXPIRED


async def test_expire_and_decline_leave_an_answered_request_alone():
    req, _ = request()
    await req.accept(agent)
    assert req.expire() is False and req.decline("late") is False
    assert req.state is AnswerState.ACCEPTED and req.answer().accepted


def test_decline_records_the_reason_once():
    req, _ = request()
    assert req.decline("the handler returned") is True
    assert req.state is AnswerState.REJECTED
    assert req.answer() == OfferAnswer(None, "the handler returned")
    assert req.decline("again") is False
    assert req.answer().reason == "the handler returned"


async def test_wait_answered_returns_once_the_request_is_answered():
    req, _ = request()
    waiter = asyncio.ensure_future(req.wait_answered())
    await asyncio.sleep(0)
    assert not waiter.done()
    req.decline("no")
    await asyncio.wait_for(waiter, 5)


async def test_a_failing_responder_reaches_the_handler():
    req, _ = request(responder=Responder(fail=JobError("the server did not assign it")))
    with pytest.raises(JobError, match="the server did not assign it"):
        await req.accept(agent)


# --- answer_request --------------------------------------------------------------------------


def records(caplog, level):
    return [r for r in caplog.records if r.name == "livekit.agents" and r.levelno == level]


async def test_an_accepting_handler_keeps_running_after_its_answer(caplog):
    req, _ = request()
    go_on = asyncio.Event()

    async def handler(r):
        await r.accept(agent, identity="me")
        await go_on.wait()

    answer, task = await answer_request(handler, req, timeout=30)
    assert answer == OfferAnswer(AcceptInfo("me"))
    assert not task.done()
    go_on.set()
    await asyncio.wait_for(task, 5)
    assert records(caplog, logging.ERROR) == [] and records(caplog, logging.WARNING) == []


async def test_a_rejecting_handler_is_logged_at_info(caplog):
    caplog.set_level(logging.INFO, "livekit.agents")
    req, _ = request(id="AJ_R", room="lobby")

    async def handler(r):
        await r.reject()

    answer, task = await answer_request(handler, req, timeout=30)
    assert answer == OfferAnswer(None, "rejected by the request handler")
    [rec] = records(caplog, logging.INFO)
    assert rec.getMessage() == "job AJ_R in room lobby rejected by the request handler"
    assert (rec.job_id, rec.room) == ("AJ_R", "lobby")
    await task


async def test_a_handler_that_returns_without_answering_declines_the_job(caplog):
    req, responder = request(id="AJ_N", room="lobby")

    async def handler(r):
        return None

    answer, _ = await answer_request(handler, req, timeout=30)
    why = "the request handler returned without accepting or rejecting it"
    assert answer == OfferAnswer(None, why)
    assert req.state is AnswerState.REJECTED and responder.rejected == []
    [rec] = records(caplog, logging.WARNING)
    assert rec.getMessage() == f"rejected job AJ_N in room lobby: {why}"
    assert (rec.job_id, rec.room) == ("AJ_N", "lobby")


async def test_a_handler_that_raises_declines_the_job_and_logs_the_error(caplog):
    req, _ = request(id="AJ_E", room="lobby")

    async def handler(r):
        raise ValueError("no capacity")

    answer, _ = await answer_request(handler, req, timeout=30)
    why = "the request handler raised ValueError: no capacity"
    assert answer == OfferAnswer(None, why)
    assert req.state is AnswerState.REJECTED
    [rec] = records(caplog, logging.ERROR)
    assert rec.getMessage() == f"rejected job AJ_E in room lobby: {why}"
    assert rec.exc_info is not None and isinstance(rec.exc_info[1], ValueError)
    assert (rec.job_id, rec.room) == ("AJ_E", "lobby")


async def test_a_slow_handler_expires_and_is_cancelled(caplog):
    req, _ = request(id="AJ_S", room="lobby", timeout=0.2)
    never = asyncio.Event()

    async def handler(r):
        await never.wait()

    answer, task = await answer_request(handler, req, timeout=0.2)
    assert req.state is AnswerState.EXPIRED
    assert answer.reason == "the request handler neither accepted nor rejected it within request_timeout (0.2s)"
    with pytest.raises(asyncio.CancelledError):
        await task
    [rec] = records(caplog, logging.WARNING)
    assert rec.getMessage() == f"rejected job AJ_S in room lobby: {answer.reason}"
    assert (rec.job_id, rec.room) == ("AJ_S", "lobby")


async def test_a_handler_that_raises_after_accepting_is_logged(caplog):
    req, _ = request(id="AJ_L")
    fail = asyncio.Event()

    async def handler(r):
        await r.accept(agent)
        await fail.wait()
        raise RuntimeError("after the accept")

    answer, task = await answer_request(handler, req, timeout=30)
    assert answer.accepted
    fail.set()
    with pytest.raises(RuntimeError):
        await task
    await asyncio.sleep(0)  # the done callback runs on the next loop iteration
    [rec] = records(caplog, logging.ERROR)
    assert rec.getMessage() == "request handler of job AJ_L raised after accepting: RuntimeError: after the accept"
    assert rec.exc_info is not None and rec.job_id == "AJ_L"


async def test_a_rejected_handler_that_raises_later_is_not_logged_as_after_accepting(caplog):
    req, _ = request()
    fail = asyncio.Event()

    async def handler(r):
        await r.reject()
        await fail.wait()
        raise RuntimeError("after the reject")

    _, task = await answer_request(handler, req, timeout=30)
    fail.set()
    with pytest.raises(RuntimeError):
        await task
    await asyncio.sleep(0)
    assert records(caplog, logging.ERROR) == []


async def test_closing_the_worker_while_a_handler_runs_cancels_the_handler():
    req, _ = request()
    started, never = asyncio.Event(), asyncio.Event()
    tasks: list[asyncio.Task] = []

    async def handler(r):
        tasks.append(asyncio.current_task())
        started.set()
        await never.wait()

    outer = asyncio.ensure_future(answer_request(handler, req, timeout=30))
    await asyncio.wait_for(started.wait(), 5)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    with pytest.raises(asyncio.CancelledError):
        await tasks[0]
    assert req.state is AnswerState.PENDING


async def test_an_accept_after_expiry_does_not_turn_the_answer_into_an_accept():
    req, responder = request(timeout=1)
    req.expire()
    with pytest.raises(JobError):
        await req.accept(agent, identity="late")
    answer = req.answer()
    assert not answer.accepted and answer.accept is None
    assert answer.reason.startswith("the request handler neither accepted nor rejected it")
    assert responder.accepted == []


async def test_the_handler_task_is_named_after_the_job():
    req, _ = request(id="AJ_T")

    async def handler(r):
        await r.reject()

    _, task = await answer_request(handler, req, timeout=30)
    assert task.get_name() == "request-handler-AJ_T"
    await task


async def test_a_handler_that_is_cancelled_declines_the_job_without_raising(caplog):
    req, _ = request(id="AJ_C", room="lobby")

    async def handler(r):
        raise asyncio.CancelledError

    answer, task = await answer_request(handler, req, timeout=30)
    assert task.cancelled()
    assert answer == OfferAnswer(None, "the request handler returned without accepting or rejecting it")
    assert req.state is AnswerState.REJECTED
