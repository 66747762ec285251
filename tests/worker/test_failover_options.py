"""Several server URLs and the retry budget from the command line and the options."""

from __future__ import annotations

from typing import Any

from livekit import agents

import livekit.agents.cli.app as app
from livekit.agents.failover import parse_urls


async def _reject(req: agents.JobRequest) -> None:
    await req.reject()


def started_options(monkeypatch: Any, args: list[str], env: dict[str, str] | None = None) -> Any:
    for var in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        monkeypatch.delenv(var, raising=False)
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    seen: list[Any] = []
    monkeypatch.setattr(app, "_run_worker", lambda worker: seen.append(worker.options))
    worker = agents.Worker(_reject)
    app.build_cli(worker)(["start", "--api-key", "k", "--api-secret", "s" * 32, *args], standalone_mode=False)
    return seen[0]


def test_url_repeatable_and_comma_separated(monkeypatch):
    opts = started_options(monkeypatch, ["--url", "ws://a:1", "--url", "ws://b:2, ws://c:3", "--url", "ws://a:1"])
    assert parse_urls(opts.url) == ["ws://a:1", "ws://b:2", "ws://c:3"]
    opts = started_options(monkeypatch, [], env={"LIVEKIT_URL": "ws://a:1,ws://b:2"})
    assert parse_urls(opts.url) == ["ws://a:1", "ws://b:2"]
    assert parse_urls(agents.WorkerOptions(url=["ws://a:1", "ws://b:2"]).url) == ["ws://a:1", "ws://b:2"]


def test_retry_budget_backoff_and_opt_outs_from_the_cli(monkeypatch):
    opts = started_options(monkeypatch, ["--url", "ws://a:1", "--max-retry", "3", "--retry-base", "0.1",
                                         "--retry-max-delay", "2", "--no-recover-orphans", "--http-public-details"])
    assert (opts.max_retry, opts.retry_base, opts.retry_max_delay) == (3, 0.1, 2.0)
    assert opts.recover_orphans is False and opts.http_public_details is True
    opts = started_options(monkeypatch, ["--url", "ws://a:1"])
    assert opts.recover_orphans is True and opts.http_public_details is False and opts.max_retry == 16
