"""Every telemetry test gets its own Redis key prefix and runs in both buffer modes."""

from tests.support.telemetry import _telemetry_isolation, buffer_mode, flags, send

__all__ = ["_telemetry_isolation", "buffer_mode", "flags", "send"]
