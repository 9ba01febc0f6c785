"""Shared set-up for the broker and outbound benchmarks: a LEIS home with PKI,
registry, high rate limits and seeded sources, a process launcher on it
(``leis_sim.launcher``) and closed-loop load. Benchmarks run on demand (``python bench/<name>.py``) and print
figures; they are never part of the test suite.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from leis.common.paths import LeisHome
from leis.pki.ca import init_pki
from leis.pki.pins import key_pins
from leis.registry.agreements import write_seed_registry
from leis_sim.launcher import Mesh, leis_argv
from leis_sim.sources.store import SCHEMA_VERSION

BENCH_CONFIG = """
[broker]
listen = "127.0.0.1:{broker_port}"
max_concurrent_rpcs = 512

[rate_limits]
user_per_minute = 10000000.0
user_burst = 1000000
agency_per_minute = 10000000.0
agency_burst = 1000000

[sources.eid]
address = "127.0.0.1:{eid_port}"
[sources.tecs]
address = "127.0.0.1:{tecs_port}"
[sources.photos]
address = "127.0.0.1:{photos_port}"
"""

# Below the Linux ephemeral range (32768-60999).
PORTS = {"broker": 7151, "baseline": 7152, "eid": 7161, "tecs": 7162, "photos": 7163}


def prepare_home(root: Path, persons: int) -> LeisHome:
    """A LEIS home for benchmarks (reused when it already exists)."""
    home = LeisHome(root.resolve())
    home.root.mkdir(parents=True, exist_ok=True)
    if not home.pki.exists():
        init_pki(home.pki)
    if not home.agreements.exists():
        write_seed_registry(home.agreements, key_pins(home.pki))
    home.config.write_text(
        BENCH_CONFIG.format(
            broker_port=PORTS["broker"],
            eid_port=PORTS["eid"],
            tecs_port=PORTS["tecs"],
            photos_port=PORTS["photos"],
        )
    )
    marker = home.sources / f".persons-{persons}-schema-{SCHEMA_VERSION}"
    if not marker.exists():
        subprocess.run(
            leis_argv(
                "sources", "seed", "--persons", str(persons), "--data-dir", str(home.sources), "--force"
            ),
            check=True,
        )
        marker.touch()
    return home


def bench_mesh(home: LeisHome) -> Mesh:
    """A launcher for benchmark processes on ``home`` (logs in ``<home>/bench-logs``)."""
    return Mesh(home.pki, home.root / "bench-logs", {**os.environ, "LEIS_HOME": str(home.root)})


def add_sources(mesh: Mesh, home: LeisHome) -> None:
    """Declare the three source simulators on their benchmark ports."""
    for name in ("eid", "tecs", "photos"):
        argv = leis_argv(
            "sources",
            "serve",
            "--source",
            name,
            "--port",
            str(PORTS[name]),
            "--data-dir",
            str(home.sources),
            "--pki-dir",
            str(home.pki),
        )
        mesh.add(name, argv, PORTS[name])


def rss_mb(pid: int) -> float:
    """Resident set size of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class LoadResult:
    label: str
    calls: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def qps(self) -> float:
        return self.calls / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")

    def line(self) -> str:
        return (
            f"{self.label:<28} {self.qps:8.1f} QPS   p50 {self.percentile(50):7.2f} ms   "
            f"p99 {self.percentile(99):7.2f} ms   calls {self.calls}  errors {self.errors}"
        )


async def closed_loop(
    label: str,
    call: Callable[[int], Awaitable[object]],
    concurrency: int,
    seconds: float,
    warmup: float = 1.0,
) -> LoadResult:
    """``concurrency`` workers calling back-to-back for ``seconds`` (after a warm-up)."""
    latencies: list[float] = []
    errors = 0
    calls = 0
    start_at = time.monotonic() + warmup
    stop_at = start_at + seconds

    async def worker(worker_id: int) -> None:
        nonlocal errors, calls
        i = worker_id
        while True:
            t0 = time.monotonic()
            if t0 >= stop_at:
                return
            try:
                await call(i)
                ok = True
            except grpc.aio.AioRpcError:
                ok = False
            t1 = time.monotonic()
            if t0 >= start_at:
                calls += 1
                if ok:
                    latencies.append((t1 - t0) * 1000)
                else:
                    errors += 1
            i += concurrency

    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return LoadResult(label, calls, errors, seconds, latencies)


def summary(results: Sequence[LoadResult]) -> str:
    return (
        "\n".join(r.line() for r in results)
        + f"\n(mean over runs: {statistics.mean(r.qps for r in results):.1f})"
    )
