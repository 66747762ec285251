"""An agent that needs no cloud account: it listens to every audio track in the room and
reports each utterance's start, end and duration as data messages (topic "agent-events").

Silero VAD (livekit-plugins-silero) finds the speech; NLTK (livekit-plugins-nltk) splits
the greeting into sentences, sent one message each.

    python examples/utterance_agent.py start --url ws://localhost:7880 --api-key ... --api-secret ...
"""

from __future__ import annotations

import json
import logging

from livekit import agents, rtc

from livekit.plugins import nltk, silero

logger = logging.getLogger("utterance-agent")

GREETING = "Hello, I am the utterance agent. Speak and I will tell you when you start and stop. Dr. Smith says hi."
TOPIC = "agent-events"

_vad = None  # one detector per worker process; every stream shares its model session


def get_vad() -> silero.VAD:
    global _vad
    if _vad is None:
        _vad = silero.VAD()
    return _vad


async def utterance_agent(ctx: agents.JobContext) -> None:
    async def send(payload: dict) -> None:
        await ctx.room.local_participant.publish_data(json.dumps(payload), reliable=True, topic=TOPIC)

    for sentence in nltk.SentenceTokenizer().tokenize(GREETING):
        await send({"type": "greeting", "text": sentence})

    async def listen(track: rtc.Track, participant: rtc.RemoteParticipant) -> None:
        # the track's audio as the VAD works on it (16 kHz mono, one 32 ms model window per
        # frame); the stream ends when the track does
        vad_stream = get_vad().stream_track(track)
        async for ev in vad_stream:
            if ev.type == agents.vad.VADEventType.START_OF_SPEECH:
                began = ev.timestamp - ev.speech_duration
                await send({"type": "start_of_speech", "participant": participant.identity, "at": round(began, 2)})
            elif ev.type == agents.vad.VADEventType.END_OF_SPEECH:
                await send(
                    {
                        "type": "end_of_speech",
                        "participant": participant.identity,
                        "at": round(ev.timestamp - ev.silence_duration, 2),
                        "duration": round(ev.speech_duration, 2),
                    }
                )

    def on_track_subscribed(track: rtc.Track, publication: rtc.TrackPublication, participant: rtc.RemoteParticipant) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            ctx.create_task(listen(track, participant))

    ctx.room.on("track_subscribed", on_track_subscribed)
    for participant in ctx.room.remote_participants.values():
        for publication in participant.track_publications.values():
            if publication.track is not None:
                on_track_subscribed(publication.track, publication, participant)


async def request_handler(job_request: agents.JobRequest) -> None:
    await job_request.accept(
        utterance_agent,
        identity=f"utterance-agent-{job_request.id}",
        name="Utterance agent",
        subscribe_cb=agents.AutoSubscribe.AUDIO_ONLY,
        auto_disconnect_cb=agents.AutoDisconnect.DEFAULT,
    )


if __name__ == "__main__":
    agents.run_app(agents.Worker(request_handler=request_handler, worker_type=agents.JobType.JT_ROOM))
