"""Observability: metric names (one source of truth), the Prometheus collector, tracing."""
