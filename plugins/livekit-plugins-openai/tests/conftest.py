from __future__ import annotations

import pytest

from livekit.plugins.openai.testing import FakeOpenAI


@pytest.fixture
async def fake():
    async with FakeOpenAI() as server:
        yield server
