"""The fake answers OUT_OF_RANGE where Google does: audio streamed much faster than real
time, and a stream left without audio (measured by the fake's own clock, with the
tolerances documented on FakeGoogleCloud)."""

from __future__ import annotations

import asyncio

import grpc
import grpc.aio
import pytest
from google.cloud import speech_v1 as speech

from livekit.plugins.google.testing import FakeGoogleCloud


async def stream(fake: FakeGoogleCloud, chunks, *, pause: float = 0.0):
    async with grpc.aio.insecure_channel(fake.address) as channel:
        call = channel.stream_stream(
            "/google.cloud.speech.v1.Speech/StreamingRecognize",
            request_serializer=speech.StreamingRecognizeRequest.serialize,
            response_deserializer=speech.StreamingRecognizeResponse.deserialize,
        )

        async def requests():
            config = speech.RecognitionConfig(encoding="LINEAR16", sample_rate_hertz=16000, language_code="en-US")
            yield speech.StreamingRecognizeRequest(streaming_config=speech.StreamingRecognitionConfig(config=config))
            for chunk in chunks:
                yield speech.StreamingRecognizeRequest(audio_content=chunk)
            await asyncio.sleep(pause)

        responses = call(requests(), metadata=(("authorization", f"Bearer {fake.token}"),))
        return [r async for r in responses]


CHUNK = bytes(3200)  # 100 ms of 16 kHz LINEAR16


async def test_audio_far_faster_than_real_time_is_out_of_range():
    async with FakeGoogleCloud(max_ahead_seconds=2.0) as fake:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stream(fake, [CHUNK] * 40)  # 4 s of audio at once
        # the fake's answer; the client sees it, or (grpc's race when the server ends a call
        # while the client is still writing into it) INTERNAL from its own failed write
        assert fake.calls[-1].status == "OUT_OF_RANGE"
        assert fake.calls[-1].audio_seconds < 4.0  # it stopped the stream before the end
        if info.value.code() != grpc.StatusCode.INTERNAL:
            assert info.value.code() == grpc.StatusCode.OUT_OF_RANGE
            assert "streamed too fast" in info.value.details()
        # a burst within the tolerance is fine
        await stream(fake, [CHUNK] * 15)


async def test_a_stream_without_audio_is_out_of_range():
    async with FakeGoogleCloud(idle_timeout=0.5) as fake:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stream(fake, [CHUNK], pause=3.0)
        assert info.value.code() == grpc.StatusCode.OUT_OF_RANGE
        assert "without audio" in info.value.details()
