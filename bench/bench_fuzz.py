"""Fuzz benchmark (issue 13): the seeded hostile-input generator of ``leis_sim.fuzz`` at
>= 100,000 requests against a broker process, as four callers (two partners, the analyst,
the auditor), over every unary method of every service (LEIS, health) and the reflection
stream. Prints the status histogram (overall and per method), the broker's RSS curve and a
final JSON line with the figures.

    python bench/bench_fuzz.py [--requests 100000] [--concurrency 32] [--persons 2000]
                               [--sample-every 10000] [--warmup-fraction 0.1]

Targets: zero INTERNAL, zero UNKNOWN; broker RSS within +10% (issue 13).

How RSS is measured. "Within +10%" is about growth with the number of requests (a leak),
not about the memory a fresh broker takes on as it starts serving: every bounded structure
fills during the first requests and then stays the same size. Those are the SQLite page
caches of the audit store and of the trace store (``sqlite_cache_mib`` per connection;
they fill as pages are read and appended, i.e. with the first few MiB of events written),
the OpenTelemetry batch queues, gRPC/TLS buffers of the four caller channels, and the
Python allocator's arenas reaching the run's peak working set. So the run is one
continuous stream of the same seeded request mix; the broker's RSS is sampled before the
first request and every ``--sample-every`` requests; the baseline is the sample taken when
the first ``--warmup-fraction`` of the requests (10% by default) have been sent, and the
figure is the growth from that baseline to the end of the run, sampled ``SETTLE_SECONDS``
after the last call ended (the sample as it ended and the peak sample are printed too: the
memory of calls in flight, an auditor's page or stream, comes and goes). Nothing is excluded or
restarted: the whole curve, the cold start included, is printed, so a curve still climbing
after the warm-up shows as growth and a plateau shows as one.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Collection
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mesh import PORTS, add_sources, bench_mesh, prepare_home, rss_mb

from leis.common.tls import CA_CERT
from leis_sim.fuzz import FuzzMethod, RequestFuzzer, unary_methods
from leis_sim.launcher import leis_argv

CALLERS = ("agency-ndex", "agency-nlets", "dhs-analyst", "auditor")
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
FORBIDDEN = ("INTERNAL", "UNKNOWN")
SETTLE_SECONDS = 3.0


def _identity(data: bytes) -> bytes:
    return data


def _channel(pki: Path, name: str) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(
        (pki / CA_CERT).read_bytes(), (pki / f"{name}.key").read_bytes(), (pki / f"{name}.crt").read_bytes()
    )
    return grpc.aio.secure_channel(f"localhost:{PORTS['broker']}", credentials)


async def _unary(channel: grpc.aio.Channel, method: FuzzMethod, body: bytes) -> str:
    try:
        await channel.unary_unary(method.path, _identity, _identity)(body, timeout=10)
    except grpc.aio.AioRpcError as exc:
        return str(exc.code().name)
    return "OK"


async def _reflection(channel: grpc.aio.Channel, frames: list[bytes]) -> str:
    call = channel.stream_stream(REFLECTION, _identity, _identity)(iter(frames), timeout=10)
    try:
        async for _ in call:
            pass
    except grpc.aio.AioRpcError as exc:
        if exc.code().name in FORBIDDEN:
            print(f"  reflection {exc.code().name}: {exc.details()} {[f[:20].hex() for f in frames]}")
        return str(exc.code().name)
    return "OK"


async def fuzz(
    pki: Path,
    requests: int,
    concurrency: int,
    seed: int,
    *,
    sample_at: Collection[int],
    on_sample: Callable[[int], None],
) -> dict[str, Counter[str]]:
    """Send ``requests`` fuzzed calls; the status histogram per method.

    ``on_sample(sent)`` is called before the first call, when ``sent`` calls (one of
    ``sample_at``) have been sent, and once more after the last call has completed.
    """
    channels = {name: _channel(pki, name) for name in CALLERS}
    methods = unary_methods()
    fuzzer = RequestFuzzer(seed)
    plan = itertools.product(CALLERS, [*methods, None])
    seen: dict[str, Counter[str]] = {}
    started = time.monotonic()
    on_sample(0)

    async def one(caller: str, method: FuzzMethod | None) -> None:
        channel = channels[caller]
        if method is None:
            frames = [fuzzer.random_bytes() for _ in range(3)]
            seen.setdefault(REFLECTION, Counter())[await _reflection(channel, frames)] += 1
            return
        body = next(fuzzer.bodies(method, 1))
        seen.setdefault(method.path, Counter())[await _unary(channel, method, body)] += 1

    pending: set[asyncio.Task[None]] = set()
    for sent, (caller, method) in enumerate(itertools.islice(itertools.cycle(list(plan)), requests), 1):
        if len(pending) >= concurrency:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        pending.add(asyncio.ensure_future(one(caller, method)))
        if sent in sample_at and sent < requests:
            print(f"  {sent:,} sent, {sent / (time.monotonic() - started):.0f}/s", flush=True)
            on_sample(sent)
    await asyncio.gather(*pending)
    on_sample(requests)
    for channel in channels.values():
        await channel.close(None)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path(".leis-bench-fuzz"))
    parser.add_argument("--persons", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--sample-every", type=int, default=10_000)
    parser.add_argument("--warmup-fraction", type=float, default=0.1)
    args = parser.parse_args()
    warmup = round(args.requests * args.warmup_fraction)
    home = prepare_home(args.home, args.persons)
    curve: list[tuple[int, float]] = []
    with bench_mesh(home) as mesh:
        add_sources(mesh, home)
        broker = mesh.add("broker", leis_argv("serve"), PORTS["broker"])
        mesh.start_healthy()

        def sample(sent: int) -> None:
            curve.append((sent, rss_mb(broker.pid)))

        sample_at = {*range(args.sample_every, args.requests, args.sample_every), warmup}
        started = time.monotonic()
        seen = asyncio.run(
            fuzz(home.pki, args.requests, args.concurrency, args.seed, sample_at=sample_at, on_sample=sample)
        )
        seconds = time.monotonic() - started
        # What the broker keeps, not what its last calls held: span export and audit commits
        # of the final burst finish within a moment.
        time.sleep(SETTLE_SECONDS)
        settled = rss_mb(broker.pid)
        alive = broker.running
    total: Counter[str] = Counter()
    for counts in seen.values():
        total.update(counts)
    print(f"{sum(total.values()):,} requests in {seconds:.0f} s ({sum(total.values()) / seconds:.0f}/s)")
    print("status histogram: " + ", ".join(f"{code} {n:,}" for code, n in total.most_common()))
    for path, counts in sorted(seen.items()):
        print(f"  {path:<62} " + ", ".join(f"{code} {n}" for code, n in counts.most_common()))
    print("broker RSS curve (requests sent: MB):")
    for sent, mb in curve:
        print(f"  {sent:>9,}: {mb:6.1f}" + ("  <- baseline (end of warm-up)" if sent == warmup else ""))
    start = curve[0][1]
    before = next(mb for sent, mb in curve if sent >= warmup)
    after = curve[-1][1]
    growth = (settled - before) / before * 100
    peak = max(mb for sent, mb in curve if sent >= warmup)
    peak_growth = (peak - before) / before * 100
    print(
        f"broker RSS {start:.0f} MB at start, {before:.0f} MB after the {warmup:,}-request warm-up, "
        f"{after:.0f} MB as the last call ended, {settled:.0f} MB {SETTLE_SECONDS:.0f} s later "
        f"({growth:+.1f}% after warm-up, target <= +10%); peak sample {peak:.0f} MB ({peak_growth:+.1f}%)"
    )
    forbidden = sum(total[c] for c in FORBIDDEN)
    print(f"broker alive after: {alive}; forbidden statuses: {forbidden}")
    summary = {
        "requests": sum(total.values()),
        "seconds": round(seconds, 1),
        "statuses": dict(total.most_common()),
        "forbidden": forbidden,
        "broker_alive": alive,
        "rss_start_mb": round(start, 1),
        "rss_after_warmup_mb": round(before, 1),
        "rss_end_mb": round(after, 1),
        "rss_settled_mb": round(settled, 1),
        "rss_growth_after_warmup_pct": round(growth, 1),
        "rss_peak_growth_pct": round(peak_growth, 1),
        "warmup_requests": warmup,
        "rss_curve_mb": [[sent, round(mb, 1)] for sent, mb in curve],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
