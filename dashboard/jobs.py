"""Slow CAM methods (ScoreCAM: one forward pass per batch of feature maps) in the background.

The page starts a job and keeps showing the fast map; a small fragment polls the job's progress,
offers "Cancel", and reruns the page when the map is ready. One worker thread per process: the
network serialises its forwards on the bundle's lock anyway (``registry.SharedModel``), so more
threads would only queue. Jobs are keyed by file SHA-256 and method, so two sessions asking for the
same map share one job; finished jobs are kept for :data:`KEEP` studies, then forgotten.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

KEEP = 32
_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="slow-cam")
_JOBS: OrderedDict[tuple[str, str], Job] = OrderedDict()
_LOCK = threading.Lock()


class Cancelled(Exception):
    """Raised inside the network's forward when the reviewer cancels a job."""


@dataclass
class Job:
    """One background computation: ``fraction`` done in [0, 1], ``future`` holds the result or error."""

    total: int
    done: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)
    future: Future | None = None

    @property
    def fraction(self) -> float:
        return min(self.done / max(self.total, 1), 1.0)

    def tick(self) -> None:
        """Called before each forward pass: counts it, and stops the work when cancelled."""
        if self.cancel.is_set():
            raise Cancelled
        self.done += 1

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set()


def start(key: tuple[str, str], total: int, work: Callable[[Callable[[], None]], object]) -> Job:
    """The job for ``key``, started if new (or if the last one was cancelled or failed).

    ``work(tick)`` runs on the worker thread and must call ``tick()`` before each forward pass.
    """
    with _LOCK:
        job = _JOBS.get(key)
        if job is None or job.cancelled or (job.future.done() and job.future.exception() is not None):
            job = Job(total)
            job.future = _POOL.submit(work, job.tick)
            _JOBS[key] = job
        _JOBS.move_to_end(key)
        while len(_JOBS) > KEEP:
            old_key, old = next(iter(_JOBS.items()))
            if not old.future.done():
                break
            del _JOBS[old_key]
        return job


def get(key: tuple[str, str]) -> Job | None:
    with _LOCK:
        return _JOBS.get(key)
