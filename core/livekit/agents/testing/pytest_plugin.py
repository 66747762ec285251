"""pytest plugin of livekit-agents (entry point ``pytest11: livekit_agents``).

Fixtures for agents' and plugins' own tests:

* ``livekit_server``: a real LiveKit server on loopback for the test session.
* ``livekit_cluster``: a fresh :class:`~livekit.agents.testing.cluster.LiveKitCluster` (one
  Redis, two nodes) for one test, which may kill and restart its nodes.
* ``speech``: the :func:`livekit.agents.testing.speech.speech` factory (espeak-ng speech).
* ``plugin_host``: a fresh :class:`~livekit.agents.plugin_host.PluginHost` with every
  installed plugin loaded, made the process's host for the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def livekit_server() -> Iterator[Any]:
    from .server import LiveKitServer, ServerUnavailable

    try:
        server = LiveKitServer()
    except ServerUnavailable as exc:
        pytest.fail(str(exc))
    with server:
        yield server


@pytest.fixture
def livekit_cluster() -> Iterator[Any]:
    from .cluster import LiveKitCluster, RedisUnavailable
    from .server import ServerUnavailable

    try:
        cluster = LiveKitCluster(nodes=2)
    except (ServerUnavailable, RedisUnavailable) as exc:
        pytest.fail(str(exc))
    with cluster:
        yield cluster


@pytest.fixture(scope="session")
def speech() -> Any:
    from . import speech as speech_mod

    try:
        speech_mod._require_tools()
    except speech_mod.SpeechToolsMissing as exc:
        pytest.fail(str(exc))
    return speech_mod.speech


@pytest.fixture
def plugin_host() -> Iterator[Any]:
    from ..plugin_host import PluginHost, set_plugin_host

    host = PluginHost()
    host.load_entry_points()
    set_plugin_host(host)
    try:
        yield host
    finally:
        set_plugin_host(None)
