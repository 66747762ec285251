"""``VAD.stream_track()``: a VAD stream fed from a real subscribed track (real server, a real
participant publishing espeak speech, the real silero model), with the audio in the
detector's format: 16 kHz mono, one 32 ms model window per frame."""

from __future__ import annotations

import asyncio

from livekit import rtc

from livekit.agents.vad import VADEventType


async def test_stream_track_feeds_the_detector_one_window_per_frame(clients, helpers, speech):
    from livekit.plugins.silero import VAD

    detector = VAD()
    caps = detector.capabilities
    assert (caps.sample_rate, caps.frame_size_ms) == (16000, 32)

    room = helpers.unique_room("vadtrack")
    listener = await clients.join(room, "listener")
    subscribed: asyncio.Future[rtc.Track] = asyncio.get_running_loop().create_future()
    listener.room.on("track_subscribed", lambda track, *_: subscribed.done() or subscribed.set_result(track))
    speaker = await clients.join(room, "speaker")
    await speaker.publish_audio(speech("one two three four five six"))
    track = await asyncio.wait_for(subscribed, 30)

    # the frames the rtc runtime cuts for this detector
    audio = detector.audio_stream(track)
    first = await asyncio.wait_for(audio.__anext__(), 30)
    await audio.aclose()
    assert (first.frame.sample_rate, first.frame.num_channels, first.frame.samples_per_channel) == (16000, 1, 512)

    events = []
    async with detector.stream_track(track) as stream:
        async for event in stream:
            events.append(event)
            if event.type == VADEventType.END_OF_SPEECH:
                break
    kinds = [e.type for e in events if e.type != VADEventType.INFERENCE_DONE]
    assert kinds[:2] == [VADEventType.START_OF_SPEECH, VADEventType.END_OF_SPEECH], kinds
    # one INFERENCE_DONE per 32 ms window, at the windows' ends (input samples at 16 kHz)
    done = [e.samples_index for e in events if e.type == VADEventType.INFERENCE_DONE]
    assert len(done) > 20 and all(b - a == 512 for a, b in zip(done, done[1:], strict=False))
    speech_end = next(e for e in events if e.type == VADEventType.END_OF_SPEECH)
    assert sum(f.samples_per_channel for f in speech_end.frames) / 16000 > 0.5  # the speech's audio


async def test_closing_a_track_stream_stops_its_feeding(clients, helpers, speech):
    from livekit.plugins.silero import VAD

    room = helpers.unique_room("vadtrack")
    listener = await clients.join(room, "listener")
    subscribed: asyncio.Future[rtc.Track] = asyncio.get_running_loop().create_future()
    listener.room.on("track_subscribed", lambda track, *_: subscribed.done() or subscribed.set_result(track))
    speaker = await clients.join(room, "speaker")
    await speaker.publish_audio(speech("one two three"))
    track = await asyncio.wait_for(subscribed, 30)

    stream = VAD().stream_track(track)
    feeder = stream._feeder
    assert feeder is not None
    await asyncio.wait_for(stream.__anext__(), 30)  # audio flows
    await stream.aclose()
    assert feeder.done()
