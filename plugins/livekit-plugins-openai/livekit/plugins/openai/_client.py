"""The shared parts of the OpenAI STT and TTS: the SDK client, options and error mapping."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

import httpx2

import openai
from livekit.agents.exceptions import (
    APIAuthenticationError,
    APIConnectionError,
    APIError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    MissingCredentialsError,
)
from livekit.agents.utils.retry import DEFAULT_RETRY, RetryOptions, parse_retry_after, with_retries

ENV_KEY = "OPENAI_API_KEY"
ENV_BASE_URL = "OPENAI_BASE_URL"
DEFAULT_BASE_URL = "https://api.openai.com/v1"

T = TypeVar("T")
_KEY_LIKE = re.compile(r"sk-[A-Za-z0-9_\-*]{4,}")


class Client:
    """One ``AsyncOpenAI`` with the SDK's own retries off: :func:`call` retries with
    livekit-agents' policy, honouring Retry-After."""

    def __init__(
        self,
        provider: str,
        *,
        api_key: str | None,
        base_url: str | None,
        timeout: float | None,
        retry: RetryOptions | None,
    ) -> None:
        key = api_key or os.environ.get(ENV_KEY)
        if not key:
            raise MissingCredentialsError(provider, ENV_KEY)
        self._key = key
        self.retry = retry or DEFAULT_RETRY
        if timeout is not None:
            self.retry = replace(self.retry, timeout=timeout)
        self.base_url = base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
        self.sdk = openai.AsyncOpenAI(
            api_key=key,
            base_url=self.base_url,
            max_retries=0,
            timeout=httpx2.Timeout(self.retry.timeout),
        )

    def redact(self, text: str) -> str:
        """``text`` without the API key (providers echo parts of a wrong key back)."""
        if self._key:
            text = text.replace(self._key, "<redacted>")
        return _KEY_LIKE.sub("sk-<redacted>", text)

    def error(self, exc: BaseException, what: str) -> APIError:
        """The livekit-agents error for an SDK or transport exception."""
        if isinstance(exc, APIError):
            return exc
        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return APIAuthenticationError(
                f"{what}: OpenAI refused the API key (HTTP {exc.status_code}): "
                f"{self.redact(_message(exc))}. Check {ENV_KEY} or the api_key argument.",
                status_code=exc.status_code,
                request_id=exc.request_id,
            )
        if isinstance(exc, openai.APIStatusError):
            body = exc.body if isinstance(exc.body, dict) else None
            code = (body or {}).get("code") if body else None
            retryable = None
            if code == "insufficient_quota":
                retryable = False  # a 429 that waiting does not fix
            return APIStatusError(
                f"{what}: OpenAI answered HTTP {exc.status_code}: {self.redact(_message(exc))}",
                status_code=exc.status_code,
                request_id=exc.request_id,
                retry_after=_retry_after(exc.response.headers),
                retryable=retryable,
            )
        if isinstance(exc, (openai.APITimeoutError, httpx2.TimeoutException, asyncio.TimeoutError)):
            return APITimeoutError(
                f"{what}: OpenAI did not answer within {self.retry.timeout:.1f} s ({self.base_url})"
            )
        if isinstance(exc, (openai.APIResponseValidationError, ValueError)):
            return APIResponseError(f"{what}: OpenAI's answer is malformed: {self.redact(str(exc))}")
        if isinstance(exc, (openai.APIConnectionError, httpx2.TransportError)):
            cause = exc.__cause__ or exc
            return APIConnectionError(
                f"{what}: connection to OpenAI failed ({self.base_url}): "
                f"{self.redact(str(cause) or type(cause).__name__)}"
            )
        return APIError(f"{what}: {type(exc).__name__}: {self.redact(str(exc))}")

    async def call(self, fn: Callable[[], Awaitable[T]], what: str) -> T:
        """Run ``fn`` with a per-attempt timeout and retries; SDK errors are mapped."""

        async def attempt() -> T:
            try:
                return await asyncio.wait_for(fn(), self.retry.timeout)
            except (openai.OpenAIError, httpx2.HTTPError, asyncio.TimeoutError, ValueError) as exc:
                # ValueError: the SDK could not decode the body (JSON, or the response model)
                raise self.error(exc, what) from None

        return await with_retries(attempt, options=self.retry, what=what)

    async def aclose(self) -> None:
        await self.sdk.close()


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
    return exc.message


def _retry_after(headers: Any) -> float | None:
    """OpenAI's ``retry-after-ms`` (milliseconds), else the standard ``Retry-After``
    (seconds or an HTTP-date)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    return parse_retry_after(headers.get("retry-after"))
