"""pytest plugin of livekit-agents (entry point ``pytest11: livekit_agents``).

Fixtures for agents' and plugins' own tests:

* ``livekit_server``: a real LiveKit server on loopback for the test session.
* ``livekit_cluster``: a fresh :class:`~livekit.agents.testing.cluster.LiveKitCluster` (one
  Redis, two nodes) for one test, which may kill and restart its nodes.
* ``speech``: the :func:`livekit.agents.testing.speech.speech` factory (espeak-ng speech).
* ``plugin_host``: a fresh :class:`~livekit.agents.plugin_host.PluginHost` with every
  installed plugin loaded, made the process's host for the test.

It also fails a test that calls an async conformance check (``conformance.check_tts(...)``
and the others) without awaiting it: such a check never ran. A failed test that used
``livekit_server`` gets the server's log lines written while it ran, as a report section.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import pytest

SERVER_LOG_LINES = 200
"""At most this many of the server's log lines (the last) in a failed test's report."""
_server_log_start = pytest.StashKey[int]()


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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    import gc
    import sys

    conformance = sys.modules.get("livekit.agents.testing.conformance")
    if conformance is not None:
        conformance.take_unawaited()
    result = yield
    conformance = sys.modules.get("livekit.agents.testing.conformance")
    if conformance is not None:
        gc.collect()
        missed = conformance.take_unawaited()
        if missed:
            pytest.fail(
                f"{', '.join(missed)} was called but never awaited, so the check did not run: "
                f"write `await {missed[0]}(...)` in an async test",
                pytrace=False,
            )
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    server = getattr(item, "funcargs", {}).get("livekit_server")
    if server is None:
        return report
    if report.when == "setup":
        item.stash[_server_log_start] = server.log_size()
    elif report.failed and _server_log_start in item.stash:
        text = server.log_tail(SERVER_LOG_LINES, since=item.stash[_server_log_start])
        report.sections.append(("livekit-server log during the test", text))
    return report
