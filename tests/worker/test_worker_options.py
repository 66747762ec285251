"""Worker options are checked where they are built (Python and CLI alike); connection
mistakes that retrying cannot fix end the worker at once; the executor interface."""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from livekit import agents

from livekit.agents.cli.app import build_cli
from livekit.agents.exceptions import InvalidOptionError, WorkerError
from livekit.agents.executor import EXECUTORS, resolve_executor
from livekit.agents.executor.inline import InlineExecutor


async def _handler(req: agents.JobRequest) -> None:
    await req.reject()


@pytest.mark.parametrize(
    ("option", "value", "flag"),
    [
        ("max_jobs", 0, "--max-jobs"),
        ("max_jobs", -1, "--max-jobs"),
        ("load_threshold", math.nan, "--load-threshold"),
        ("load_threshold", 0, "--load-threshold"),
        ("load_threshold", 1.5, "--load-threshold"),
        ("load_threshold", -0.2, "--load-threshold"),
        ("drain_timeout", -5, "--drain-timeout"),
        ("drain_timeout", math.nan, "--drain-timeout"),
        ("request_timeout", 0, "--request-timeout"),
        ("update_interval", -1, "--update-interval"),
        ("http_port", 70000, "--http-port"),
        ("job_executor", "threads", "--job-executor"),
    ],
)
def test_impossible_options_are_refused_by_name(option: str, value: object, flag: str) -> None:
    with pytest.raises(InvalidOptionError) as info:
        agents.Worker(_handler, **{option: value})
    assert option in str(info.value) and flag in str(info.value) and repr(value) in str(info.value)


def test_possible_edge_values_are_accepted() -> None:
    worker = agents.Worker(_handler, max_jobs=1, load_threshold=math.inf, drain_timeout=0, http_port=0)
    assert worker.options.load_threshold == math.inf and worker.options.max_jobs == 1
    assert agents.Worker(_handler, load_threshold=1.0, max_jobs=None).options.load_threshold == 1.0
    with pytest.raises(AttributeError):
        worker.options.max_jobs = 0  # type: ignore[misc]  # options are built once, checked


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--max-jobs", "0"], "max_jobs (--max-jobs) must be a positive number of jobs"),
        (["--max-jobs", "-1"], "got -1"),
        (["--load-threshold", "nan"], "load_threshold (--load-threshold) must be a load above 0"),
        (["--load-threshold", "2"], "got 2.0"),
        (["--drain-timeout", "-5"], "drain_timeout (--drain-timeout) must be 0 or more seconds; got -5.0"),
    ],
)
@pytest.mark.parametrize("command", ["start", "dev"])
def test_cli_refuses_impossible_values_with_usage_errors(command: str, args: list[str], needle: str) -> None:
    worker = agents.Worker(_handler)
    result = CliRunner().invoke(build_cli(worker), [command, "--url", "ws://127.0.0.1:1", "--api-key", "k",
                                                    "--api-secret", "s" * 32, *args])
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert worker.options.max_jobs is None  # the worker's options were not touched


def test_an_unavailable_executor_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EXECUTORS, "process", "livekit.agents.executor.not_installed:ProcessExecutor")
    with pytest.raises(WorkerError) as info:
        resolve_executor("process")
    assert "'process' job executor is not available" in str(info.value)
    assert "--job-executor inline" in str(info.value)
    assert isinstance(resolve_executor("inline"), InlineExecutor)


async def test_wss_against_a_plain_text_server_fails_at_once(livekit_server, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="livekit.agents")
    url = livekit_server.url.replace("ws://", "wss://")
    worker = agents.Worker(_handler, url=url, api_key=livekit_server.api_key,
                           api_secret=livekit_server.api_secret, http_port=None)
    with pytest.raises(WorkerError) as info:
        await asyncio.wait_for(worker.run(), timeout=20)
    assert "does not speak TLS" in str(info.value) and livekit_server.url in str(info.value)
    assert not any("retrying" in r.getMessage() for r in caplog.records)


@pytest.fixture
async def tls_server(tmp_path: Path):
    """A TLS-only HTTP server on loopback (a self-signed certificate)."""
    from aiohttp import web

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    app = web.Application()
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield port
    await runner.cleanup()


async def test_ws_against_a_tls_server_fails_at_once(tls_server: int, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="livekit.agents")
    worker = agents.Worker(_handler, url=f"ws://127.0.0.1:{tls_server}", api_key="k", api_secret="s" * 32,
                           http_port=None)
    with pytest.raises(WorkerError) as info:
        await asyncio.wait_for(worker.run(), timeout=20)
    assert "speaks TLS" in str(info.value) and f"wss://127.0.0.1:{tls_server}" in str(info.value)
    assert not any("retrying" in r.getMessage() for r in caplog.records)


class RecordingExecutor(InlineExecutor):
    """The inline executor, recording what the worker asks of it through the interface."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def request(self, job):  # type: ignore[no-untyped-def]
        self.calls.append("request")
        return await super().request(job)

    async def launch(self, job_id, assignment):  # type: ignore[no-untyped-def]
        self.calls.append("launch")
        assert assignment.token and assignment.url.startswith("ws")
        return await super().launch(job_id, assignment)

    async def abandon(self, job_id, why):  # type: ignore[no-untyped-def]
        self.calls.append("abandon")
        return await super().abandon(job_id, why)

    def end_job(self, job_id, end):  # type: ignore[no-untyped-def]
        self.calls.append(f"end_job:{end.kind.value}")
        return super().end_job(job_id, end)


async def test_the_worker_runs_jobs_through_the_executor_interface(livekit_server, lk, worker_opts, helpers):
    executor = RecordingExecutor()
    ended: list[tuple[str, str]] = []
    contexts: list[agents.JobContext] = []

    async def handler(req: agents.JobRequest) -> None:
        await req.accept(contexts.append, auto_disconnect=agents.AutoDisconnect.NEVER)

    async with agents.Worker(handler, **worker_opts(job_executor=executor)) as worker:
        assert worker.executor is executor and worker.info()["job_executor"] == "inline"
        room = helpers.unique_room("iface")
        await lk.create_room(room)
        await helpers.wait_until(lambda: contexts and contexts[0].status == "running", what="the job running")
        ctx = contexts[0]
        ctx.add_shutdown_callback(lambda: ended.append((ctx.id, ctx.shutdown_reason or "")))
        info = worker.info()
        assert info["jobs"][0]["identity"] == f"agent-{ctx.id}" and info["memory_rss_bytes"] > 10 << 20
        assert await worker.aclose() == 1
    assert executor.calls == ["request", "launch", "end_job:shutdown"]
    assert ended == [(ctx.id, "shutdown")]
    assert ctx.end is not None and ctx.end.kind is agents.JobEndKind.SHUTDOWN and ctx.status == "failed"
