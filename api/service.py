"""What the HTTP layer holds: who may call (API keys, rate limits), its metrics, and the backend.

Everything that is not HTTP (the parts, start-up order, readiness, the job queue, the sample
documents) is ``service.backend.Backend``; routes call its small methods.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from api.auth import KeyRing, Principal
from api.limits import RateLimitMetrics, build_limiter
from api.metrics import ApiMetrics
from api.samples import curl_line
from ingest.jobs import Job
from rag.settings import Settings
from service.backend import Backend
from service.samples import SampleTarget

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger(__name__)


class Service:
    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.keyring = KeyRing.from_settings(settings)
        self.limiter = build_limiter(settings, settings.rate_limit_per_minute)
        self.failed_auth = build_limiter(settings, settings.failed_auth_per_minute, "failed-auth")
        """Failed authentications per client address: guessing keys is slowed to this pace."""
        self.metrics = ApiMetrics(registry)
        self.metrics.registry.register(
            RateLimitMetrics({"requests": self.limiter, "failed-auth": self.failed_auth})
        )
        self.backend = Backend(
            settings,
            registry=self.metrics.registry,
            sample_targets=self._sample_targets,
            on_samples_queued=self._samples_queued,
            on_job_finished=self._job_finished,
        )
        self.metrics.watch_jobs(self.backend.job_counts)

    # --- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        """Open the index (a locked data directory fails here) and begin warming up."""
        self.backend.start()

    async def close_gateway(self) -> None:
        await self.backend.close_gateway()

    def stop(self) -> None:
        self.backend.stop()

    # --- hooks ------------------------------------------------------------------

    def _sample_targets(self) -> list[SampleTarget]:
        """Each tenant's default collection; the local namespace when auth is off."""
        if self.keyring.disabled:
            principals = [Principal(key_id="local", tenant="local", admin=True)]
        else:
            principals = [Principal(key_id="samples", tenant=t, namespace=t) for t in self.keyring.tenants]
        default = self.settings.default_collection
        return [SampleTarget(p.tenant, p.internal(default)) for p in principals]

    def _samples_queued(self, jobs: list[Job]) -> None:
        if self.settings.samples_dir is not None:
            print(
                curl_line(self.settings, self.settings.samples_dir, auth=not self.keyring.disabled),
                flush=True,
            )

    def _job_finished(self, job: Job, state: str, seconds: float) -> None:
        self.metrics.jobs_finished.labels("retried" if state == "queued" else state).inc()
        self.metrics.job_seconds.observe(seconds)


__all__ = ["Service"]
