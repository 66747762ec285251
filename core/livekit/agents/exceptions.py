"""Every exception type the framework raises, in one place.

Public errors say what was wrong and what to do about it. Provider plugins raise the
``API*`` errors so that agents can handle every provider's failures the same way.
"""

from __future__ import annotations


class AgentsError(Exception):
    """Base class of every error raised by livekit-agents."""


# --- plugin host -------------------------------------------------------------------------


class PluginError(AgentsError):
    """A plugin could not be loaded or misbehaved while registering."""

    def __init__(self, message: str, *, plugin: str | None = None, hook: str | None = None):
        super().__init__(message)
        self.plugin = plugin
        self.hook = hook


class PluginNotFoundError(AgentsError, LookupError):
    """No installed plugin has the name that was asked for."""


class ProviderNotFoundError(AgentsError, LookupError):
    """No installed plugin provides the capability under the name that was asked for."""


# --- worker and jobs ---------------------------------------------------------------------


class WorkerError(AgentsError):
    """The worker cannot run (bad configuration, credentials, or an unreachable server)."""


class AuthenticationError(WorkerError):
    """The LiveKit server refused the worker's API key or secret."""


class JobError(AgentsError):
    """A job request was used wrongly (accepted twice, accepted after it expired, ...)."""


# --- capabilities ------------------------------------------------------------------------


class StreamClosedError(AgentsError, RuntimeError):
    """Input was pushed to a stream after ``end_input()`` or ``aclose()``."""


class AudioFormatError(AgentsError, ValueError):
    """An audio frame cannot be used (empty, wrong sample rate, wrong layout)."""


# --- provider APIs -----------------------------------------------------------------------


class APIError(AgentsError):
    """A provider's API failed. ``retryable`` tells whether trying again may help."""

    retryable: bool = False

    def __init__(self, message: str, *, body: object | None = None, retryable: bool | None = None):
        super().__init__(message)
        self.message = message
        self.body = body
        if retryable is not None:
            self.retryable = retryable


class APIConnectionError(APIError):
    """The provider could not be reached, or the connection dropped."""

    retryable = True


class APITimeoutError(APIConnectionError):
    """The provider did not answer in time (a stalled socket or request)."""


class APIStatusError(APIError):
    """The provider answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int = -1,
        request_id: str | None = None,
        body: object | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ):
        if retryable is None:
            retryable = status_code == 429 or status_code >= 500 or status_code == -1
        super().__init__(message, body=body, retryable=retryable)
        self.status_code = status_code
        self.request_id = request_id
        self.retry_after = retry_after


class APIAuthenticationError(APIStatusError):
    """The provider refused the credentials (HTTP 401/403). Not retried."""

    def __init__(self, message: str, *, status_code: int = 401, **kwargs: object):
        super().__init__(message, status_code=status_code, retryable=False, **kwargs)  # type: ignore[arg-type]


class APIResponseError(APIError):
    """The provider's answer was malformed or truncated."""


class MissingCredentialsError(AgentsError, ValueError):
    """A provider needs an API key or credentials that were not given."""

    def __init__(self, provider: str, env_var: str | tuple[str, ...], *, argument: str = "api_key"):
        names = (env_var,) if isinstance(env_var, str) else env_var
        env = " or ".join(names)
        super().__init__(
            f"{provider}: no API key. Set the {env} environment variable "
            f"or pass {argument}=... when you create it."
        )
        self.provider = provider
        self.env_vars = names


# --- LLMs --------------------------------------------------------------------------------
# Each LLM error is also the matching ``API*`` error, so code that handles every
# provider's failures the same way keeps working.


class LLMError(APIError):
    """A chat completion failed. Raised on that ``chat()`` stream only."""


class LLMConnectionError(LLMError, APIConnectionError):
    """The LLM server could not be reached, or the connection dropped before an answer."""


class LLMTimeoutError(LLMError, APITimeoutError):
    """The LLM server stalled: no answer, or no chunk of the stream, within the timeout."""


class LLMStatusError(LLMError, APIStatusError):
    """The LLM server answered with an error status (a bad request: 400, 404, 422...)."""


class LLMAuthenticationError(LLMStatusError, APIAuthenticationError):
    """The LLM server refused the credentials (HTTP 401/403). Not retried."""


class LLMRateLimitError(LLMStatusError):
    """HTTP 429. ``retry_after`` is the server's Retry-After, in seconds, when it sent one."""


class LLMServerError(LLMStatusError):
    """HTTP 5xx: the LLM server failed; trying again may help."""


class LLMResponseError(LLMError, APIResponseError):
    """The stream is malformed: a ``data:`` line that is not the documented JSON chunk."""


class LLMTruncatedError(LLMResponseError):
    """The stream ended (or the connection closed) before the completion finished."""

    retryable = True


class ToolArgumentsError(AgentsError, ValueError):
    """The model called a function tool with arguments that do not fit its schema.

    The message says what is wrong in terms the model can act on; send it back as the tool
    result so the model can correct its call."""

    def __init__(self, message: str, *, tool: str, arguments: str | None = None) -> None:
        super().__init__(message)
        self.tool = tool
        self.arguments = arguments
