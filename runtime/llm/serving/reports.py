"""What a model pool is configured with and what it reports (events, loaded models, counters)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pgpt.runtime.llm.serving.scheduler import SchedulerConfig, SchedulerStats


@dataclass(frozen=True)
class PoolConfig:
    """How the pool keeps models.

    Attributes:
        keep_alive_s: Idle seconds before a model unloads; -1 never, 0 at once.
        max_loaded: Models loaded at once (a version being replaced may stay beside its successor
            until its last request ends).
        scheduler: Limits of each loaded model's scheduler.
        watch_interval_s: How often the registry is checked for a version switch.
    """

    keep_alive_s: float = 1800.0
    max_loaded: int = 1
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    watch_interval_s: float = 1.0


@dataclass(frozen=True)
class PoolEvent:
    """Something the pool did: kind is loaded, unloaded, load_failed or switched."""

    kind: str
    name: str
    version: str
    previous: str = ""
    reason: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class LoadedModelInfo:
    """One loaded version, for `GET /v1/models` and the metrics."""

    name: str
    version: str
    memory_bytes: int
    loaded_at: float  # time.time()
    expires_at: float | None  # time.time() when it unloads if still idle; None: never, or in use
    active_requests: int
    serving: bool  # plain ``name`` requests go here
    scheduler: SchedulerStats

    @property
    def ref(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class PoolStats:
    """Counters since the pool started, and the gauges summed over the loaded models."""

    loads: int
    unloads: int
    load_failures: int
    switches: int
    loaded: int
    queued: int
    running: int
