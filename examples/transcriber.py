"""A transcribing agent: every audio track in the room is transcribed, and each result is
sent as a data message (topic "transcripts") and as a LiveKit transcription event.

The speech-to-text provider is chosen by name from the installed plugins:

    AGENT_STT=deepgram DEEPGRAM_API_KEY=... python examples/transcriber.py start
    AGENT_STT=openai OPENAI_API_KEY=... python examples/transcriber.py start

A provider that only transcribes whole utterances (openai) is made streaming by the core's
StreamAdapter with Silero VAD (livekit-plugins-silero). AGENT_STT_OPTIONS takes JSON
options for the provider, e.g. '{"model": "nova-2", "language": "en"}'.
"""

from __future__ import annotations

import json
import logging
import os

from livekit import agents, rtc

logger = logging.getLogger("transcriber")
TOPIC = "transcripts"


def make_stt() -> agents.stt.STT:
    name = os.environ.get("AGENT_STT", "deepgram")
    options = json.loads(os.environ.get("AGENT_STT_OPTIONS", "{}"))
    stt = agents.create_stt(name, **options)
    if not stt.capabilities.streaming:
        stt = agents.stt.StreamAdapter(stt=stt, vad=agents.create_vad("silero"))
    return stt


async def transcriber(ctx: agents.JobContext) -> None:
    stt = make_stt()
    ctx.add_shutdown_callback(stt.aclose)

    async def transcribe(track: rtc.Track, participant: rtc.RemoteParticipant) -> None:
        audio = rtc.AudioStream(track, sample_rate=16000, num_channels=1)
        stream = stt.stream()

        async def forward() -> None:
            async for event in audio:
                stream.push_frame(event.frame)
            stream.end_input()

        ctx.create_task(forward())
        segment = 0
        async for ev in stream:
            if ev.type not in (agents.stt.SpeechEventType.INTERIM_TRANSCRIPT, agents.stt.SpeechEventType.FINAL_TRANSCRIPT):
                continue
            if not ev.text:
                continue
            final = ev.is_final
            await ctx.room.local_participant.publish_data(
                json.dumps({"participant": participant.identity, "text": ev.text, "final": final}),
                reliable=True,
                topic=TOPIC,
            )
            await ctx.room.local_participant.publish_transcription(
                rtc.Transcription(
                    participant_identity=participant.identity,
                    track_sid=track.sid,
                    segments=[rtc.TranscriptionSegment(f"{track.sid}-{segment}", ev.text, 0, 0, ev.alternatives[0].language, final)],
                )
            )
            if final:
                segment += 1

    def on_track_subscribed(track: rtc.Track, publication: rtc.TrackPublication, participant: rtc.RemoteParticipant) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            ctx.create_task(transcribe(track, participant))

    ctx.room.on("track_subscribed", on_track_subscribed)
    for participant in ctx.room.remote_participants.values():
        for publication in participant.track_publications.values():
            if publication.track is not None:
                on_track_subscribed(publication.track, publication, participant)


async def request_handler(job_request: agents.JobRequest) -> None:
    await job_request.accept(
        transcriber,
        identity=f"transcriber-{job_request.id}",
        name="Transcriber",
        subscribe_cb=agents.AutoSubscribe.AUDIO_ONLY,
    )


if __name__ == "__main__":
    agents.run_app(agents.Worker(request_handler=request_handler, worker_type=agents.JobType.JT_ROOM))
