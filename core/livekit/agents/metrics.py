"""The worker's Prometheus metrics (``GET /metrics`` on the health endpoint).

One :class:`WorkerMetrics` per worker, in a registry of its own (several workers in one
process do not mix). Counters are counted where things happen; gauges are read from the
worker when scraped. All names start with ``livekit_agents_``:

=============================================  =======  ======================================
``jobs_running``                               gauge    jobs running now
``jobs_started_total``                         counter  jobs that joined their room
``jobs_ended_total{reason}``                   counter  jobs ended, by :class:`JobEndKind` value
``jobs_failed_total{reason}``                  counter  the subset reported failed to the server
``offers_declined_total{reason}``              counter  offers declined: ``draining``,
                                                        ``max_jobs``, ``load``, ``plugin``,
                                                        ``handler`` (rejected, raised or
                                                        timed out), ``not_assigned``,
                                                        ``recovery_claim`` (a recovery
                                                        job whose room has an agent or
                                                        another recovery dispatch)
``load``                                       gauge    the load last reported (0..1)
``memory_rss_bytes``                           gauge    resident memory of the worker's
                                                        process tree
``registered``                                 gauge    1 while registered with a server
``draining``                                   gauge    1 while draining
``reconnects_total``                           counter  registrations after the first one
                                                        (same node or another)
=============================================  =======  ======================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PREFIX = "livekit_agents"


class WorkerMetrics:
    """Counters and gauges of one worker; :meth:`render` gives the Prometheus text format."""

    def __init__(self, *, running: Callable[[], float], load: Callable[[], float],
                 memory: Callable[[], float | None], registered: Callable[[], bool],
                 draining: Callable[[], bool]) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.jobs_started = Counter(f"{PREFIX}_jobs_started", "Jobs that joined their room", registry=r)
        self.jobs_ended = Counter(f"{PREFIX}_jobs_ended", "Jobs ended, by reason", ["reason"], registry=r)
        self.jobs_failed = Counter(f"{PREFIX}_jobs_failed", "Jobs reported failed, by reason", ["reason"],
                                   registry=r)
        self.offers_declined = Counter(f"{PREFIX}_offers_declined", "Job offers declined, by reason",
                                       ["reason"], registry=r)
        self.reconnects = Counter(f"{PREFIX}_reconnects", "Registrations after the first one", registry=r)
        Gauge(f"{PREFIX}_jobs_running", "Jobs running now", registry=r).set_function(running)
        Gauge(f"{PREFIX}_load", "Load last reported to the server (0..1)", registry=r).set_function(load)
        Gauge(f"{PREFIX}_memory_rss_bytes", "Resident memory of the worker's process tree",
              registry=r).set_function(lambda: float(memory() or 0))
        Gauge(f"{PREFIX}_registered", "1 while registered with a LiveKit server",
              registry=r).set_function(lambda: float(registered()))
        Gauge(f"{PREFIX}_draining", "1 while draining", registry=r).set_function(lambda: float(draining()))

    def job_started(self) -> None:
        self.jobs_started.inc()

    def job_ended(self, end: Any) -> None:
        reason = end.kind.value
        self.jobs_ended.labels(reason).inc()
        if end.failed:
            self.jobs_failed.labels(reason).inc()

    def offer_declined(self, reason: str) -> None:
        self.offers_declined.labels(reason).inc()

    def reconnected(self) -> None:
        self.reconnects.inc()

    def render(self) -> tuple[bytes, str]:
        """The metrics in the Prometheus text format, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


__all__ = ["WorkerMetrics"]
