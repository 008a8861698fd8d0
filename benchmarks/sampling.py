"""Resource sampling across a benchmark run, every 0.5 s in a background thread.

- CPU utilization: share of all cores busy (psutil.cpu_times deltas, idle and iowait count as not
  busy), machine-wide, so other load on the machine is included; each sample is tagged with the
  stage the harness says is running.
- Peak RSS of Ray worker processes: processes descended from this one (our Ray instance only, not a
  colleague's) whose command line contains `ray::` or `default_worker.py`; the peak of their sum and
  of the largest single one, reset per measured run, with the titles that one had (Ray names a
  worker `ray::<task or actor>` while it runs one: they say which tasks it ran).
"""

from __future__ import annotations

import os
import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field

import psutil

INTERVAL_S = 0.5
RAY_WORKER_MARKERS = ("ray::", "default_worker.py")


@dataclass
class CpuSample:
    tag: str
    busy_share: float  # 0..1 of all cores


def busy_share(before, after) -> float:
    total = sum(after) - sum(before)
    idle = (after.idle - before.idle) + (getattr(after, "iowait", 0) - getattr(before, "iowait", 0))
    return 0.0 if total <= 0 else max(0.0, min(1.0, 1.0 - idle / total))


JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class WorkerMemory:
    """One look at this run's Ray worker processes (bytes)."""

    rss_sum: int = 0
    largest_rss: int = 0
    largest_pid: int = 0
    largest_shared: int = 0  # that worker's shared pages: libraries and object store pages
    # the largest RSS minus shared pages of any worker: its own heap, as Ray's memory guide
    # measures a worker (shared pages are the object store's, counted once per process in RSS)
    largest_heap: int = 0
    largest_heap_pid: int = 0
    titles: dict[int, str] = field(default_factory=dict)


def ray_worker_rss() -> WorkerMemory:
    """RSS of this process's descendant Ray worker processes: their sum, the largest one (its
    pid and its shared pages, file and shared memory: the object store pages it touched count
    in its RSS), the largest heap (RSS minus shared pages) of any, and every worker's title
    (its command line's first word, `ray::<what it runs>`, job ids shortened to <job>)."""
    out = WorkerMemory()
    try:
        children = psutil.Process(os.getpid()).children(recursive=True)
    except psutil.Error:
        return out
    for proc in children:
        try:
            cmdline = " ".join(proc.cmdline())
            if not any(m in cmdline for m in RAY_WORKER_MARKERS):
                continue
            info = proc.memory_info()
        except psutil.Error:
            continue
        out.rss_sum += info.rss
        out.titles[proc.pid] = JOB_ID.sub("<job>", cmdline.split(" ", 1)[0])
        if info.rss - info.shared > out.largest_heap:
            out.largest_heap, out.largest_heap_pid = info.rss - info.shared, proc.pid
        if info.rss > out.largest_rss:
            out.largest_rss, out.largest_pid, out.largest_shared = info.rss, proc.pid, info.shared
    return out


class Sampler:
    """Start once; set `tag` as stages change; read figures with `cpu_by_tag()` / `memory_peak()`."""

    def __init__(self, interval: float = INTERVAL_S) -> None:
        self.interval = interval
        self.tag = "idle"
        self.samples: list[CpuSample] = []
        self._peak_sum = 0
        self._peak_single = 0
        self._peak_pid = 0
        self._peak_shared = 0  # the largest worker's shared pages at its peak
        self._peak_heap = 0  # the largest RSS minus shared pages of any worker
        self._peak_heap_pid = 0
        self._titles: dict[int, list[str]] = defaultdict(list)  # per worker pid, as they came
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def set_tag(self, tag: str) -> None:
        self.tag = tag

    def reset_memory_peak(self) -> None:
        with self._lock:
            self._peak_sum = self._peak_single = self._peak_pid = 0
            self._peak_shared = self._peak_heap = self._peak_heap_pid = 0
            self._titles.clear()

    def memory_peak(self) -> dict[str, int | str]:
        with self._lock:
            return {
                "ray_workers_sum_bytes": self._peak_sum,
                "ray_worker_largest_bytes": self._peak_single,
                "ray_worker_largest_shared_bytes": self._peak_shared,
                "ray_worker_largest_heap_bytes": self._peak_heap,
                "ray_worker_largest_heap_title": " > ".join(
                    self._titles.get(self._peak_heap_pid, [])
                ),
                # what the largest worker ran, in order, up to the run's end (sampled)
                "ray_worker_largest_title": " > ".join(self._titles.get(self._peak_pid, [])),
            }

    def _run(self) -> None:
        before = psutil.cpu_times()
        while not self._stop.wait(self.interval):
            after = psutil.cpu_times()
            seen_now = ray_worker_rss()
            with self._lock:
                self.samples.append(CpuSample(self.tag, busy_share(before, after)))
                self._peak_sum = max(self._peak_sum, seen_now.rss_sum)
                if seen_now.largest_heap > self._peak_heap:
                    self._peak_heap = seen_now.largest_heap
                    self._peak_heap_pid = seen_now.largest_heap_pid
                if seen_now.largest_rss > self._peak_single:
                    self._peak_single = seen_now.largest_rss
                    self._peak_pid, self._peak_shared = (
                        seen_now.largest_pid,
                        seen_now.largest_shared,
                    )
                for worker, title in seen_now.titles.items():
                    seen = self._titles[worker]
                    if not seen or seen[-1] != title:
                        seen.append(title)
            before = after

    def cpu_by_tag(self, prefix: str = "") -> dict[str, dict[str, float]]:
        """Mean and max busy share and sample count per tag (tags starting with `prefix`)."""
        groups: dict[str, list[float]] = defaultdict(list)
        with self._lock:
            for s in self.samples:
                if s.tag.startswith(prefix):
                    groups[s.tag].append(s.busy_share)
        return {
            tag: {"mean": sum(v) / len(v), "max": max(v), "samples": len(v)}
            for tag, v in groups.items()
        }

    def cpu_over(self, prefix: str) -> dict[str, float] | None:
        """Mean and max busy share over every sample whose tag starts with `prefix`."""
        with self._lock:
            values = [s.busy_share for s in self.samples if s.tag.startswith(prefix)]
        if not values:
            return None
        return {"mean": sum(values) / len(values), "max": max(values), "samples": len(values)}
