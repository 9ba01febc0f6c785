"""Fuzz benchmark (issue 13): the seeded hostile-input generator of ``leis_sim.fuzz`` at
>= 100,000 requests against a broker process, as four callers (two partners, the analyst,
the auditor), over every unary method of every service (LEIS, health) and the reflection
stream. Prints the status histogram (overall and per method) and the broker's RSS before
and after.

    python bench/bench_fuzz.py [--requests 100000] [--concurrency 32] [--persons 2000]

Targets: zero INTERNAL, zero UNKNOWN; broker RSS within +10% (issue 13).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from collections import Counter
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


async def fuzz(pki: Path, requests: int, concurrency: int, seed: int) -> dict[str, Counter[str]]:
    """Send ``requests`` fuzzed calls; the status histogram per method."""
    channels = {name: _channel(pki, name) for name in CALLERS}
    methods = unary_methods()
    fuzzer = RequestFuzzer(seed)
    plan = itertools.product(CALLERS, [*methods, None])
    seen: dict[str, Counter[str]] = {}
    started = time.monotonic()

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
        if sent % 10_000 == 0:
            print(f"  {sent:,} sent, {sent / (time.monotonic() - started):.0f}/s", flush=True)
    await asyncio.gather(*pending)
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
    args = parser.parse_args()
    home = prepare_home(args.home, args.persons)
    with bench_mesh(home) as mesh:
        add_sources(mesh, home)
        broker = mesh.add("broker", leis_argv("serve"), PORTS["broker"])
        mesh.start_healthy()
        asyncio.run(fuzz(home.pki, 1000, args.concurrency, args.seed + 1))  # warm-up: caches, channels
        before = rss_mb(broker.pid)
        started = time.monotonic()
        seen = asyncio.run(fuzz(home.pki, args.requests, args.concurrency, args.seed))
        seconds = time.monotonic() - started
        after = rss_mb(broker.pid)
        alive = broker.running
    total: Counter[str] = Counter()
    for counts in seen.values():
        total.update(counts)
    print(f"{sum(total.values()):,} requests in {seconds:.0f} s ({sum(total.values()) / seconds:.0f}/s)")
    print("status histogram: " + ", ".join(f"{code} {n:,}" for code, n in total.most_common()))
    for path, counts in sorted(seen.items()):
        print(f"  {path:<62} " + ", ".join(f"{code} {n}" for code, n in counts.most_common()))
    growth = (after - before) / before * 100
    print(f"broker RSS {before:.0f} MB -> {after:.0f} MB ({growth:+.1f}%, target <= +10%)")
    print(f"broker alive after: {alive}; forbidden statuses: {sum(total[c] for c in FORBIDDEN)}")


if __name__ == "__main__":
    main()
