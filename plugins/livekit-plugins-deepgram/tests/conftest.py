from __future__ import annotations

import pytest

from livekit.plugins.deepgram.testing import FakeDeepgram


@pytest.fixture
async def fake():
    async with FakeDeepgram() as server:
        yield server
