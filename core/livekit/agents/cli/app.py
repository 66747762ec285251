"""``run_app(worker)``: the command line of an agent script.

::

    python my_agent.py start --url=ws://localhost:7880 --api-key=KEY --api-secret=SECRET

``--url``, ``--api-key`` and ``--api-secret`` default to ``LIVEKIT_URL``,
``LIVEKIT_API_KEY`` and ``LIVEKIT_API_SECRET``. Logs are JSON lines when stderr is not a
terminal (``--log-format`` chooses). SIGTERM or SIGINT drains the worker: it stops taking
jobs and exits 0 once its running jobs have ended; a second signal, or the drain timeout,
ends the remaining jobs (they leave their rooms) and exits 1.

Exit status: 0 after a clean drain; 1 when jobs were cut or the worker could not run
(bad credentials, wrong URL, server unreachable); 2 for command-line errors.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import TYPE_CHECKING, Any

import click

from ..executor import EXECUTORS

if TYPE_CHECKING:
    from ..worker import Worker

logger = logging.getLogger("livekit.agents")

EXIT_OK = 0
EXIT_FAILED = 1


async def _serve(worker: Worker) -> int:
    loop = asyncio.get_running_loop()
    signals_seen = 0
    background: set[asyncio.Task[Any]] = set()

    def on_signal(sig: signal.Signals) -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen == 1:
            logger.info("received %s: draining (send it again to end the running jobs now)", sig.name)
            task = loop.create_task(worker.drain())
        else:
            logger.warning("received %s again: ending the running jobs now", sig.name)
            task = loop.create_task(worker.aclose("shutdown"))
        background.add(task)
        task.add_done_callback(background.discard)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await worker.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if background:
            await asyncio.gather(*background, return_exceptions=True)
    if worker.jobs_cut:
        logger.warning("worker stopped; %d job(s) were ended before they finished", worker.jobs_cut,
                       extra={"jobs_cut": worker.jobs_cut})
        return EXIT_FAILED
    logger.info("worker stopped")
    return EXIT_OK


def _executor_name(worker: Worker) -> str:
    value = worker.options.job_executor
    return value if isinstance(value, str) else getattr(value, "name", "") or type(value).__name__


def build_cli(worker: Worker) -> click.Group:
    """The click group ``run_app`` runs (exposed for tests and embedding)."""

    @click.group(help="Run a LiveKit agent worker.")
    def cli() -> None:
        pass

    @cli.command(help="Connect to LiveKit and serve jobs until SIGTERM (production).")
    @click.option("--url", envvar="LIVEKIT_URL", help="LiveKit server URL [env LIVEKIT_URL]")
    @click.option("--api-key", envvar="LIVEKIT_API_KEY", help="API key [env LIVEKIT_API_KEY]")
    @click.option("--api-secret", envvar="LIVEKIT_API_SECRET", help="API secret [env LIVEKIT_API_SECRET]")
    @click.option("--log-level", envvar="LIVEKIT_LOG_LEVEL", default="INFO", show_default=True,
                  type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], case_sensitive=False))
    @click.option("--log-format", envvar="LIVEKIT_LOG_FORMAT", type=click.Choice(["json", "text"]),
                  default=None, help="default: json when stderr is not a terminal, else text")
    @click.option("--drain-timeout", type=float, default=None,
                  help=f"seconds to wait for running jobs after SIGTERM [default {worker.options.drain_timeout:g}]")
    @click.option("--http-host", default=None, help=f"health endpoint host [default {worker.options.http_host}]")
    @click.option("--http-port", type=int, default=None, envvar="LIVEKIT_AGENTS_HTTP_PORT",
                  help=f"health endpoint port, 0 for any free one [default {worker.options.http_port}]")
    @click.option("--load-threshold", type=float, default=None,
                  help=f"report full at this load (0..1, inf: never) [default {worker.options.load_threshold:g}]")
    @click.option("--max-jobs", type=int, default=None, help="most jobs run at once")
    @click.option("--job-executor", type=click.Choice(sorted(EXECUTORS)), default=None,
                  help="where jobs run: inline (asyncio tasks in this process) or process (child processes) "
                       f"[default {_executor_name(worker)}]")
    def start(
        url: str | None,
        api_key: str | None,
        api_secret: str | None,
        log_level: str,
        log_format: str | None,
        drain_timeout: float | None,
        http_host: str | None,
        http_port: int | None,
        load_threshold: float | None,
        max_jobs: int | None,
        job_executor: str | None,
    ) -> None:
        from ..exceptions import WorkerError
        from ..logging_setup import add_secret, setup_logging

        given = {"url": url, "api_key": api_key, "api_secret": api_secret, "drain_timeout": drain_timeout,
                 "http_host": http_host, "http_port": http_port, "load_threshold": load_threshold,
                 "max_jobs": max_jobs, "job_executor": job_executor}
        add_secret(api_secret or worker.options.api_secret)
        try:
            worker.configure(**{k: v for k, v in given.items() if v is not None})
            worker._resolve_credentials()
        except WorkerError as exc:
            raise click.UsageError(str(exc)) from None
        setup_logging(log_level, log_format)  # type: ignore[arg-type]
        try:
            worker.prepare()
            code = asyncio.run(_serve(worker))
        except WorkerError as exc:
            logger.error("worker stopped: %s", exc)
            code = EXIT_FAILED
        except KeyboardInterrupt:
            code = EXIT_FAILED
        sys.exit(code)

    return cli


def run_app(worker: Worker) -> None:
    """Run ``worker`` from the command line (``start``; see ``--help``). Exits the process."""
    build_cli(worker)(prog_name=sys.argv[0] if sys.argv and sys.argv[0] else "agent")
