"""TEMPORARY until the openai LLM plugin lands: an LLM that answers from a function."""
from __future__ import annotations

import asyncio

from livekit.agents import llm


class ScriptedLLM(llm.LLM):
    def __init__(self, answer):
        super().__init__()
        self.answer = answer
        self.requests: list[llm.ChatContext] = []

    def chat(self, chat_ctx, *, tools=(), tool_choice=None, **options):
        self.requests.append(chat_ctx.copy())
        return _Stream(self, chat_ctx, tools=tools)


class _Stream(llm.LLMStream):
    async def _run(self):
        out = self.llm.answer(self.chat_ctx)
        if isinstance(out, Exception):
            raise out
        if isinstance(out, list):
            self._emit(llm.ChatChunk(tool_calls=out))
            return
        for word in out.split(" "):
            self._emit(llm.ChatChunk(delta=word + " "))
            await asyncio.sleep(0)
