"""Background jobs of the review page: progress in ticks, cancel stops the work, one job per key."""
from __future__ import annotations

import threading

import pytest

from dashboard import jobs


def _work(gate: threading.Event, ticks: int):
    def run(tick):
        for _ in range(ticks):
            tick()
            gate.wait(5)
        return "map"
    return run


def test_progress_counts_ticks_and_the_result_arrives():
    gate = threading.Event()
    job = jobs.start(("sha-a", "ScoreCAM"), 4, _work(gate, 4))
    assert jobs.start(("sha-a", "ScoreCAM"), 4, _work(gate, 4)) is job  # same study and method: one job
    gate.set()
    assert job.future.result(timeout=10) == "map" and job.fraction == 1.0 and job.done == 4


def test_cancel_raises_inside_the_work_and_a_new_start_runs_again():
    gate = threading.Event()
    job = jobs.start(("sha-b", "ScoreCAM"), 10, _work(gate, 10))
    job.cancel.set()
    gate.set()
    with pytest.raises(jobs.Cancelled):
        job.future.result(timeout=10)
    assert job.cancelled and job.done < 10
    again = jobs.start(("sha-b", "ScoreCAM"), 10, _work(gate, 10))
    assert again is not job and again.future.result(timeout=10) == "map"
