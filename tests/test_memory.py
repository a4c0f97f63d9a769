"""unlearning/memory.py and the report's `peak_mem_mb`: the peak of the run itself, not the
lifetime peak of the process that hosts it."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
import torch

from unlearning import pipeline
from unlearning.memory import MemoryWatch, rss_mb

BIG_MB = 200


def hold_big_tensor(seconds: float = 0.3) -> None:
    """Allocate and touch BIG_MB of floats, keep them a while, free them."""
    big = torch.ones(BIG_MB * 2**20 // 4)  # ones, not empty: every page becomes resident
    time.sleep(seconds)  # several sampling intervals
    del big


class Ctx:
    def progress(self, fraction, message=""):
        pass


def eval_report(monkeypatch, work) -> dict:
    """The report of an eval run whose evaluation is `work()` (no model needed)."""

    def reference_phases(*args):
        work()
        return None, None, {}  # oracle, oracle_raw, before

    monkeypatch.setattr(pipeline, "_reference_phases", reference_phases)
    loaded = SimpleNamespace(name="fake", device="cpu")
    return pipeline.eval_job(loaded, {})(Ctx())


def test_watch_sees_a_temporary_peak_and_the_next_watch_starts_afresh():
    with MemoryWatch("cpu", interval_s=0.01) as big:
        hold_big_tensor()
    with MemoryWatch("cpu", interval_s=0.01) as small:
        time.sleep(0.05)
    assert big.peak_mb >= big.start_mb + 0.95 * BIG_MB, (big.start_mb, big.peak_mb)
    assert small.peak_mb < big.peak_mb - BIG_MB / 2, (small.peak_mb, big.peak_mb)  # not the lifetime peak
    assert abs(small.peak_mb - rss_mb()) < BIG_MB / 2


def test_report_peak_is_the_runs_own(monkeypatch):
    start = rss_mb()
    first = eval_report(monkeypatch, hold_big_tensor)
    second = eval_report(monkeypatch, lambda: time.sleep(0.05))
    assert first["peak_mem_mb"] >= start + 0.95 * BIG_MB, (start, first["peak_mem_mb"])
    assert second["peak_mem_mb"] < first["peak_mem_mb"] - BIG_MB / 2, (first["peak_mem_mb"], second["peak_mem_mb"])


def test_without_proc_the_lifetime_peak_stands_in(monkeypatch):
    from unlearning import memory

    hold_big_tensor(0)
    now = rss_mb()
    monkeypatch.setattr(memory, "_STATM", "/nonexistent/statm")
    assert rss_mb() >= now + 0.9 * BIG_MB  # ru_maxrss: the big tensor was resident once


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
def test_cuda_peak_is_the_allocators_since_the_watch_began():
    keep = torch.ones(2**20, device="cuda")  # 4 MB held throughout
    with MemoryWatch("cuda") as big:
        tmp = torch.ones(BIG_MB * 2**20 // 4, device="cuda")
        del tmp
    with MemoryWatch("cuda") as small:
        pass
    assert big.peak_mb >= big.start_mb + BIG_MB and small.peak_mb < big.peak_mb - BIG_MB / 2
    assert small.peak_mb >= 4
    del keep
