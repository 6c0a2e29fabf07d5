"""Traces, through the OpenTelemetry SDK and its OTLP/HTTP exporter, configured by the SDK's own
variables (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_SERVICE_NAME``, ``OTEL_BSP_*``...).

Modules take ``tracer`` and open spans around their stages; until ``configure_tracing`` installs
a provider (only when an OTLP endpoint is set) it is OpenTelemetry's no-op tracer, so tracing
off costs a function call per stage and exports nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from opentelemetry import trace

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

tracer = trace.get_tracer("rag")

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def tracing_requested(env: Mapping[str, str] = os.environ) -> bool:
    """An OTLP endpoint is set, and the SDK is not disabled (``OTEL_SDK_DISABLED``)."""
    disabled = env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    return not disabled and any(env.get(name, "").strip() for name in _ENDPOINTS)


def configure_tracing(service_name: str = "rag-service") -> TracerProvider | None:
    """Install the SDK's provider with a batching OTLP/HTTP exporter; ``None`` when not requested."""
    if not tracing_requested():
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; ours is only the default
    resource = Resource.create({} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


__all__ = ["configure_tracing", "tracer", "tracing_requested"]
