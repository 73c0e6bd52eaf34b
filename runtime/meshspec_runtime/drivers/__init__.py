"""Drivers: the few lines that run a sans-I/O call with real I/O (threads or asyncio)."""

from __future__ import annotations

from meshspec_runtime.drivers.aio import call_async
from meshspec_runtime.drivers.classify import CallFailed, Classifier, classify, classify_error
from meshspec_runtime.drivers.sync import call_sync

__all__ = ["CallFailed", "Classifier", "call_async", "call_sync", "classify", "classify_error"]
