"""Prometheus metrics of one app, in the app's own registry (two apps in a process never mix)."""

from __future__ import annotations

from typing import Any

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("plait_http_requests", "HTTP requests answered",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("plait_http_request_seconds", "time from request to the last byte of the response",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.tokens = Counter("plait_tokens", "tokens processed by generation", ["model", "kind"], registry=r)
        self.ttft = Histogram("plait_time_to_first_token_seconds", "time from admission to the first generated text",
                              ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("plait_generation_queue_depth", "generation requests waiting", ["model"], registry=r)
        self.rejected = Counter("plait_generation_rejected", "generation requests refused because the queue was full",
                                ["model"], registry=r)
        self.cache = Counter("plait_cache_lookups", "response cache lookups", ["result"], registry=r)
        self.batch_size = Histogram("plait_batch_size", "items per micro-batch", ["model"],
                                    buckets=BATCH_BUCKETS, registry=r)
        self.in_flight = Gauge("plait_http_requests_in_flight", "requests being answered", registry=r)
        self.alerts = Counter("plait_security_alerts", "alerts raised by anomaly detection on the audit log",
                              ["kind"], registry=r)
        self.auth_failures = Counter("plait_auth_failures", "requests refused for a wrong or revoked key", registry=r)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def observe_alert(self, alert: Any) -> None:
        self.alerts.labels(kind=alert.kind).inc()

    def observe_batch(self, key: Any, size: int) -> None:
        model = key[0] if isinstance(key, tuple) else str(key)
        self.batch_size.labels(model=model).observe(size)
