import asyncio
import json
import logging
from typing import Optional, Set
from livekit import agents, rtc
from livekit.plugins.vad import VADPlugin, VADEventType
from livekit.plugins.openai import WhisperAPITranscriber


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)

    # Callback that gets called on every new Agent JobRequest. In this callback you can create your agent and accept (or decline) a job. Declining a job will tell the LiveKit server to give the job to another Worker.
    async def job_request_handler(job_request: agents.JobRequest):
        def on_track_subscribed(track: rtc.Track, publication: rtc.TrackPublication, participant: rtc.RemoteParticipant):
            # do work on the track
            pass

        def on_disconnected():
            # do your agent's cleanup
            pass
            
        async def my_agent(ctx: agents.JobContext):
            ctx.room.on("track_subscribed", on_track_subscribed)
            ctx.room.on("disconnected", on_disconnected)

        # Accept the job request with my_agent and configure a filter function that decides which tracks the agent processes. In this case, the agent only cares about audio tracks.
        await job_request.accept(
            my_agent,
            identity="agent",
            subscribe_cb=agents.AutoSubscribe.AUDIO_ONLY,
            auto_disconnect_cb=agents.AutoDisconnect.DEFAULT,
        )

    # When a new LiveKit room is created, the request_handler is called.
    worker = agents.Worker(request_handler=job_request_handler,
                           worker_type=agents.JobType.JT_ROOM)

    # Start the cli
    agents.run_app(worker)
