"""``run_app(worker)``: the command line of an agent script.

::

    python my_agent.py start --url=ws://localhost:7880 --api-key=KEY --api-secret=SECRET
    python my_agent.py dev [--reload]                 # local development
    python my_agent.py connect --room NAME [--participant-identity ID]

``--url``, ``--api-key`` and ``--api-secret`` default to ``LIVEKIT_URL``,
``LIVEKIT_API_KEY`` and ``LIVEKIT_API_SECRET``.

* ``start`` (production): logs are JSON lines when stderr is not a terminal
  (``--log-format`` chooses). SIGTERM or SIGINT drains the worker: it stops taking jobs
  and exits 0 once its running jobs have ended; a second signal, or the drain timeout,
  ends the remaining jobs (they leave their rooms) and exits 1.
* ``dev``: the same worker, never gated by load (``load_threshold`` inf), readable text
  logs with the framework's debug lines, a short drain (10 s), a free health port; with
  ``--reload`` it restarts when a ``.py`` file under the script's directory changes.
* ``connect``: runs one job in the room ``--room`` now, without a dispatch: the request
  handler gets the job, its accept joins the room directly; exits when the job ends.

Exit status: 0 after a clean drain (or, for ``connect``, a job that did not fail); 1 when
jobs were cut or the worker could not run (bad credentials, wrong URL, server
unreachable); 2 for command-line errors (a bad option value is named with its flag).

Each command builds the worker's options once from the flags
(:meth:`Worker.configure <livekit.agents.Worker.configure>`), so the same checks apply as
for ``Worker(...)`` in Python.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from ..executor import EXECUTORS

if TYPE_CHECKING:
    from ..worker import Worker

logger = logging.getLogger("livekit.agents")

EXIT_OK = 0
EXIT_FAILED = 1

DEV_DRAIN_TIMEOUT = 10.0
"""Seconds ``dev`` waits for running jobs after SIGTERM (and on a reload)."""

RELOAD_CHILD_ENV = "LIVEKIT_AGENTS_RELOAD_CHILD"
"""Set in the worker process that ``dev --reload`` supervises."""


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


def _connection_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--url", envvar="LIVEKIT_URL", help="LiveKit server URL [env LIVEKIT_URL]"),
        click.option("--api-key", envvar="LIVEKIT_API_KEY", help="API key [env LIVEKIT_API_KEY]"),
        click.option("--api-secret", envvar="LIVEKIT_API_SECRET", help="API secret [env LIVEKIT_API_SECRET]"),
    ]):
        f = option(f)
    return f


def _log_options(default_level: str, format_help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option("--log-format", envvar="LIVEKIT_LOG_FORMAT", type=click.Choice(["json", "text"]),
                         default=None, help=format_help)(f)
        f = click.option("--log-level", envvar="LIVEKIT_LOG_LEVEL", default=default_level, show_default=True,
                         type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
                                           case_sensitive=False))(f)
        return f
    return wrap


def _worker_options(worker: Worker, *, drain: str, http_port: str, load: str) -> Callable[..., Any]:
    def wrap(f: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed([
            click.option("--drain-timeout", type=float, default=None,
                         help=f"seconds to wait for running jobs after SIGTERM [default {drain}]"),
            click.option("--http-host", default=None, help=f"health endpoint host [default {worker.options.http_host}]"),
            click.option("--http-port", type=int, default=None, envvar="LIVEKIT_AGENTS_HTTP_PORT",
                         help=f"health endpoint port, 0 for any free one [default {http_port}]"),
            click.option("--load-threshold", type=float, default=None,
                         help=f"report full at this load (above 0, at most 1; inf: never) [default {load}]"),
            click.option("--max-jobs", type=int, default=None, help="most jobs run at once [default: no limit]"),
            click.option("--job-executor", type=click.Choice(sorted(EXECUTORS)), default=None,
                         help="where jobs run: inline (asyncio tasks in this process) or process (child "
                              f"processes) [default {_executor_name(worker)}]"),
        ]):
            f = option(f)
        return f
    return wrap


def _configure(worker: Worker, **given: Any) -> None:
    """Apply the flags that were given to the worker's options, in one checked step."""
    from ..exceptions import WorkerError
    from ..logging_setup import add_secret

    add_secret(given.get("api_secret") or worker.options.api_secret)
    try:
        worker.configure(**{k: v for k, v in given.items() if v is not None})
        worker._resolve_credentials()
    except WorkerError as exc:
        raise click.UsageError(str(exc)) from None


def _run_worker(worker: Worker) -> None:
    from ..exceptions import WorkerError

    try:
        worker.prepare()
        code = asyncio.run(_serve(worker))
    except WorkerError as exc:
        logger.error("worker stopped: %s", exc)
        code = EXIT_FAILED
    except KeyboardInterrupt:
        code = EXIT_FAILED
    sys.exit(code)


def _dev_logging(level: str, fmt: str | None) -> None:
    """Readable text at ``level`` (DEBUG by default), with the chattiest libraries held at
    INFO so that the agent's and the framework's lines stay readable."""
    from ..logging_setup import setup_logging

    setup_logging(level, fmt or "text")  # type: ignore[arg-type]
    for noisy in ("asyncio", "aiohttp", "websockets", "urllib3", "grpc", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLogger().level))


def build_cli(worker: Worker) -> click.Group:
    """The click group ``run_app`` runs (exposed for tests and embedding)."""

    @click.group(help="Run a LiveKit agent worker.")
    def cli() -> None:
        pass

    @cli.command(help="Connect to LiveKit and serve jobs until SIGTERM (production).")
    @_connection_options
    @_log_options("INFO", "default: json when stderr is not a terminal, else text")
    @_worker_options(worker, drain=f"{worker.options.drain_timeout:g}", http_port=str(worker.options.http_port),
                     load=f"{worker.options.load_threshold:g}")
    def start(url: str | None, api_key: str | None, api_secret: str | None, log_level: str, log_format: str | None,
              drain_timeout: float | None, http_host: str | None, http_port: int | None,
              load_threshold: float | None, max_jobs: int | None, job_executor: str | None) -> None:
        from ..logging_setup import setup_logging

        _configure(worker, url=url, api_key=api_key, api_secret=api_secret, drain_timeout=drain_timeout,
                   http_host=http_host, http_port=http_port, load_threshold=load_threshold, max_jobs=max_jobs,
                   job_executor=job_executor)
        setup_logging(log_level, log_format)  # type: ignore[arg-type]
        _run_worker(worker)

    @cli.command(help="Run the worker for local development: never gated by load, readable debug logs, "
                      "a short drain; --reload restarts it when a .py file changes.")
    @_connection_options
    @_log_options("DEBUG", "default: text")
    @_worker_options(worker, drain=f"{DEV_DRAIN_TIMEOUT:g}", http_port="0 (any free port)", load="inf")
    @click.option("--reload", "reload_", is_flag=True, default=False,
                  help="restart the worker when a .py file under the script's directory changes")
    def dev(url: str | None, api_key: str | None, api_secret: str | None, log_level: str, log_format: str | None,
            drain_timeout: float | None, http_host: str | None, http_port: int | None,
            load_threshold: float | None, max_jobs: int | None, job_executor: str | None, reload_: bool) -> None:
        _configure(worker, url=url, api_key=api_key, api_secret=api_secret,
                   drain_timeout=DEV_DRAIN_TIMEOUT if drain_timeout is None else drain_timeout,
                   http_host=http_host, http_port=0 if http_port is None else http_port,
                   load_threshold=math.inf if load_threshold is None else load_threshold, max_jobs=max_jobs,
                   job_executor=job_executor)
        _dev_logging(log_level, log_format)
        if reload_ and not os.environ.get(RELOAD_CHILD_ENV):
            from .reload import supervise

            sys.exit(supervise(_child_argv(), drain_timeout=worker.options.drain_timeout))
        _run_worker(worker)

    @cli.command(help="Run one job in a room now, without waiting for a dispatch; exit when it ends.")
    @_connection_options
    @_log_options("INFO", "default: json when stderr is not a terminal, else text")
    @click.option("--room", required=True, help="the room to join (created if it does not exist)")
    @click.option("--participant-identity", default=None,
                  help="the participant the job is for (a JT_PUBLISHER job's publisher)")
    def connect(url: str | None, api_key: str | None, api_secret: str | None, log_level: str,
                log_format: str | None, room: str, participant_identity: str | None) -> None:
        from ..exceptions import WorkerError
        from ..job import JobType
        from ..logging_setup import setup_logging
        from .connect import connect_job

        _configure(worker, url=url, api_key=api_key, api_secret=api_secret, job_executor="inline")
        if worker.options.worker_type == JobType.JT_PUBLISHER and not participant_identity:
            raise click.UsageError("this worker takes JT_PUBLISHER jobs, one per participant: "
                                   "pass --participant-identity IDENTITY")
        setup_logging(log_level, log_format)  # type: ignore[arg-type]
        try:
            code = asyncio.run(connect_job(worker.options, room, participant_identity))
        except WorkerError as exc:
            logger.error("connect failed: %s", exc)
            code = EXIT_FAILED
        except KeyboardInterrupt:
            code = EXIT_FAILED
        sys.exit(code)

    return cli


def _child_argv() -> list[str]:
    """This command line without ``--reload``: what the supervisor runs and restarts."""
    return [sys.executable, *[a for a in sys.argv if a != "--reload"]]


def run_app(worker: Worker) -> None:
    """Run ``worker`` from the command line (``start``, ``dev``, ``connect``; see
    ``--help``). Exits the process."""
    build_cli(worker)(prog_name=sys.argv[0] if sys.argv and sys.argv[0] else "agent")
