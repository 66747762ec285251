"""The plugin API of livekit-agents.

A plugin is a distribution (``livekit-plugins-<name>`` by convention) that declares an entry
point in the group ``livekit.agents.plugins``. The entry point's name is the plugin's short
name and its value is a small module holding the plugin's hook implementations and the
plugin API version it was built for::

    # pyproject.toml of livekit-plugins-acme
    [project.entry-points."livekit.agents.plugins"]
    acme = "livekit.plugins.acme.plugin"

    # livekit/plugins/acme/plugin.py
    from livekit.agents import hookimpl

    PLUGIN_API = (1, 0)

    @hookimpl
    def register_stt(register):
        def create(**options):
            from .stt import AcmeSTT        # the SDK is imported here, not at registration
            return AcmeSTT(**options)
        register("acme", create, description="Acme streaming speech-to-text")

Rules that keep the host fast and robust:

* The plugin module must import quickly: no provider SDK, no model, no onnxruntime.
  Heavy imports happen inside the factory passed to ``register``.
* Hook implementations are plain functions (not coroutines), and may accept any subset of
  a hook's arguments.
* ``PLUGIN_API`` is ``(major, minor)``. The host loads a plugin whose major equals its own
  and whose minor is not greater than its own (see :data:`PLUGIN_API`); any other plugin
  is reported as incompatible and not loaded.

There are two families of hooks: *capability* hooks, called once when the plugin is loaded,
through which a plugin registers named factories; and *worker* hooks, through which a
plugin observes and takes part in the worker's life. An exception raised by a hook marks
that plugin as failed (capability hooks) or is logged (worker hooks); it never stops the
host, the worker or the other plugins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol

import pluggy

if TYPE_CHECKING:
    from .job import JobContext, JobRequest
    from .worker import Worker

PROJECT_NAME = "livekit.agents"
ENTRY_POINT_GROUP = "livekit.agents.plugins"

PLUGIN_API: tuple[int, int] = (1, 1)
"""The plugin API version of this core, ``(major, minor)``. 1.1 added ``register_llm``;
plugins built for 1.0 load unchanged."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class Register(Protocol):
    """The callback passed to ``register_stt``, ``register_tts`` and ``register_vad``."""

    def __call__(self, name: str, factory: Callable[..., Any], *, description: str = "") -> None:
        """Register ``factory`` (called with the user's options) under ``name``."""


class RegisterTokenizer(Protocol):
    """The callback passed to ``register_tokenizers``."""

    def __call__(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        kind: Literal["sentence", "word"],
        description: str = "",
    ) -> None:
        """Register a sentence or word tokenizer factory under ``name``."""


# --- capability hooks: called once per plugin, when it is loaded ----------------------


@hookspec
def register_stt(register: Register) -> None:
    """Register speech-to-text providers.

    Each factory returns a :class:`livekit.agents.stt.STT`.
    """


@hookspec
def register_tts(register: Register) -> None:
    """Register text-to-speech providers.

    Each factory returns a :class:`livekit.agents.tts.TTS`.
    """


@hookspec
def register_vad(register: Register) -> None:
    """Register voice activity detectors.

    Each factory returns a :class:`livekit.agents.vad.VAD`.
    """


@hookspec
def register_llm(register: Register) -> None:
    """Register large language models (plugin API 1.1).

    Each factory returns a :class:`livekit.agents.llm.LLM`.
    """


@hookspec
def register_tokenizers(register: RegisterTokenizer) -> None:
    """Register text tokenizers.

    A ``kind="sentence"`` factory returns a
    :class:`livekit.agents.tokenize.SentenceTokenizer`; a ``kind="word"`` factory returns a
    :class:`livekit.agents.tokenize.WordTokenizer`.
    """


# --- worker hooks: called by the worker as things happen ------------------------------


@hookspec
def worker_registered(worker: Worker, worker_id: str, server_info: Any) -> None:
    """The worker registered with the LiveKit server (again, after a reconnect)."""


@hookspec
def job_offered(job_request: JobRequest) -> bool | None:
    """A job is offered to this worker, before the user's request handler sees it.

    Return ``False`` to decline it (the server then offers it to another worker); return
    ``None`` or ``True`` to let it through. One ``False`` is enough to decline.
    """


@hookspec
def job_started(job_context: JobContext) -> None:
    """An accepted job joined its room; the agent function is about to run."""


@hookspec
def job_ended(job_context: JobContext, reason: str) -> None:
    """A job ended. ``reason`` says why: ``"success"``, ``"failed: <error>"``,
    ``"room_disconnected"``, ``"auto_disconnect"``, ``"shutdown"`` or ``"drain_timeout"``."""


@hookspec
def worker_load(worker: Worker) -> float | None:
    """Report this plugin's view of the worker's load, from 0.0 (idle) to 1.0 (full).

    The worker reports the highest of these values and its own load function's.
    """


@hookspec
def worker_draining(worker: Worker) -> None:
    """The worker started draining (SIGTERM): it takes no new jobs and waits for the
    running ones to end."""


CAPABILITY_HOOKS = ("register_stt", "register_tts", "register_vad", "register_llm", "register_tokenizers")
WORKER_HOOKS = (
    "worker_registered",
    "job_offered",
    "job_started",
    "job_ended",
    "worker_load",
    "worker_draining",
)
