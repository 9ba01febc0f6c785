"""Profile the broker under ``bench_broker.py`` load with py-spy: a flame graph and a top-N table per call.

Starts the three source simulators and the full broker (or, with ``--target baseline``,
the bare fan-out forwarder) on a benchmark home (``bench/mesh.py``), drives the same
closed-loop Search load as ``bench/bench_broker.py`` and, after the warm-up, attaches
py-spy (``pip install -e '.[bench]'``) to the server process for the measured seconds.
py-spy needs ptrace rights on the process (root, or ``kernel.yama.ptrace_scope = 0``).

Writes to ``--out`` (default ``.leis-bench/profile``):

- ``stacks.txt``: the collapsed stacks py-spy recorded (one ``frame;frame;... count`` a line,
  frames aggregated by function), for any other flame graph tool;
- ``flamegraph.svg``: a flame graph of those stacks (open it in a browser; hover for counts);
- ``top.txt``: the top functions by self time, by cumulative time, and by cumulative time
  among the project's own modules, each in samples, in % of the samples and in
  milliseconds of CPU per Search call.

It prints the table, the server's whole CPU per call (from ``/proc``: every thread, gRPC
core included, which py-spy sees only with ``--native``), and a final JSON line.

    python bench/profile_broker.py [--persons 50000] [--seconds 15] [--concurrency 16]
        [--rate 100] [--top 25] [--target broker|baseline] [--tracing off] [--native] [--out DIR]

By default py-spy samples only the thread holding the GIL (``--gil``), i.e. where the
process runs Python (or C called from Python without releasing the GIL); ``--all-threads``
samples every thread py-spy does not judge idle, which also counts waits in C (a commit's
fsync, a worker's queue) as busy. Samples are wall-clock: on a loaded machine a thread
preempted while it holds the GIL is still sampled, so the table gives each function its
share of the samples and turns that share into milliseconds by multiplying with the CPU the
server really used per call (``/proc``). Work in C with the GIL released (gRPC core's own
threads, SQLite I/O) is in that CPU figure but is spread over the sampled functions;
``--native`` shows the C frames themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_broker import load, queries
from mesh import PORTS, LoadResult, add_sources, bench_mesh, prepare_home

from leis.common.paths import LeisHome
from leis_sim.launcher import leis_argv

FRAME_HEIGHT = 16
SVG_WIDTH = 1600
MIN_LABEL_PX = 40
CHAR_PX = 7
PROJECT_PREFIXES = ("leis/", "leis_api/", "leis_sim/")


def py_spy() -> str:
    """The py-spy executable next to this interpreter, else on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy not found: pip install -e '.[bench]'")
    return found


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process (all threads) so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_stacks(path: Path) -> Counter[tuple[str, ...]]:
    """Collapsed stacks (root first) and their sample counts from a py-spy raw file."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks[tuple(frames.split(";"))] += int(count)
    return stacks


@dataclass
class FunctionCost:
    """Samples where a function was running (self) or on the stack (cumulative)."""

    name: str
    self_samples: int = 0
    cumulative_samples: int = 0


def function_costs(stacks: Counter[tuple[str, ...]]) -> dict[str, FunctionCost]:
    """Self and cumulative samples per function (a recursive function counts once per stack)."""
    costs: dict[str, FunctionCost] = {}
    for frames, count in stacks.items():
        for name in set(frames):
            costs.setdefault(name, FunctionCost(name)).cumulative_samples += count
        costs.setdefault(frames[-1], FunctionCost(frames[-1])).self_samples += count
    return costs


def top_table(
    costs: dict[str, FunctionCost], total: int, cpu_ms_per_call: float, top: int
) -> tuple[str, list[dict[str, object]]]:
    """Top-``top`` tables (self, cumulative, project cumulative) and the self-time rows as data.

    A function's ``ms/call`` is its share of the samples times the server's CPU per call.
    """

    def share(samples: int) -> float:
        return samples / max(total, 1)

    lines: list[str] = []
    rows: list[dict[str, object]] = []
    tables: tuple[tuple[str, Callable[[FunctionCost], int], bool], ...] = (
        ("self time", attrgetter("self_samples"), False),
        ("cumulative time", attrgetter("cumulative_samples"), False),
        ("cumulative time, project modules only", attrgetter("cumulative_samples"), True),
    )
    for title, key, project_only in tables:
        lines.append(f"top {top} by {title} ({total} samples)")
        lines.append(f"  {'#':>3} {'samples':>8} {'% CPU':>6} {'ms/call':>8}  function")
        chosen = [c for c in costs.values() if not project_only or _in_project(c.name)]
        ranked = sorted(chosen, key=lambda c: (-key(c), c.name))[:top]
        for rank, cost in enumerate(ranked, 1):
            samples = key(cost)
            lines.append(
                f"  {rank:>3} {samples:>8} {100 * share(samples):>6.1f} "
                f"{share(samples) * cpu_ms_per_call:>8.3f}  {cost.name}"
            )
            if title == "self time":
                rows.append(
                    {
                        "function": cost.name,
                        "self_pct": round(100 * share(samples), 2),
                        "self_ms_per_call": round(share(samples) * cpu_ms_per_call, 4),
                        "cumulative_pct": round(100 * share(cost.cumulative_samples), 2),
                        "cumulative_ms_per_call": round(share(cost.cumulative_samples) * cpu_ms_per_call, 4),
                    }
                )
        lines.append("")
    return "\n".join(lines), rows


def _in_project(frame: str) -> bool:
    return frame.rpartition(" (")[2].startswith(PROJECT_PREFIXES)


@dataclass
class _Node:
    name: str
    samples: int = 0
    children: dict[str, _Node] = field(default_factory=dict)


def _tree(stacks: Counter[tuple[str, ...]]) -> _Node:
    root = _Node("all")
    for frames, count in stacks.items():
        root.samples += count
        node = root
        for name in frames:
            node = node.children.setdefault(name, _Node(name))
            node.samples += count
    return root


def _depth(node: _Node) -> int:
    return 1 + max((_depth(child) for child in node.children.values()), default=0)


def flame_graph_svg(stacks: Counter[tuple[str, ...]], title: str) -> str:
    """A flame graph (root at the bottom, width by samples) of collapsed stacks, as SVG."""
    root = _tree(stacks)
    depth = _depth(root)
    height = (depth + 2) * FRAME_HEIGHT
    scale = SVG_WIDTH / max(root.samples, 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{SVG_WIDTH}" height="{height}" '
        f'font-family="monospace" font-size="11">',
        f'<text x="4" y="12">{html.escape(title)}</text>',
    ]

    def draw(node: _Node, x: float, level: int) -> None:
        width = node.samples * scale
        if width < 0.5:
            return
        y = height - (level + 1) * FRAME_HEIGHT
        share = 100.0 * node.samples / max(root.samples, 1)
        hue = 10 + (hash(node.name) % 50)
        label = html.escape(node.name)
        parts.append(
            f"<g><title>{label} ({node.samples} samples, {share:.1f}%)</title>"
            f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{FRAME_HEIGHT - 1}" '
            f'fill="hsl({hue},85%,60%)"/>'
        )
        if width >= MIN_LABEL_PX:
            text = node.name[: int(width // CHAR_PX)]
            parts.append(f'<text x="{x + 2:.1f}" y="{y + 12}">{html.escape(text)}</text>')
        parts.append("</g>")
        offset = x
        for child in sorted(node.children.values(), key=lambda c: c.name):
            draw(child, offset, level + 1)
            offset += child.samples * scale

    draw(root, 0.0, 0)
    parts.append("</svg>")
    return "\n".join(parts)


async def profiled_load(
    home: LeisHome, port: int, pid: int, args: argparse.Namespace, raw: Path
) -> tuple[LoadResult, float]:
    """Run the load; py-spy records the server for the measured window. The load and its CPU seconds."""
    subjects = queries(home, 100)
    command = [
        py_spy(), "record", "--pid", str(pid), "--format", "raw", "--output", str(raw),
        "--duration", str(int(args.seconds)), "--rate", str(args.rate), "--function",
    ]  # fmt: skip
    if not args.all_threads:
        command.append("--gil")
    if args.native:
        command.append("--native")

    async def spy() -> float:
        await asyncio.sleep(1.0)  # closed_loop's warm-up
        before = cpu_seconds(pid)
        process = await asyncio.create_subprocess_exec(
            *command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        _, stderr = await process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"py-spy failed: {stderr.decode(errors='replace')}")
        return cpu_seconds(pid) - before

    result, cpu = await asyncio.gather(load(args.target, home, port, subjects, args), spy())
    return result, cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=Path(".leis-bench"))
    parser.add_argument("--out", type=Path, default=None, help="default <home>/profile")
    parser.add_argument("--persons", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--target", choices=("broker", "baseline"), default="broker")
    parser.add_argument("--tracing", choices=("on", "off"), default="on")
    parser.add_argument("--native", action="store_true", help="include C/C++ frames (gRPC core)")
    parser.add_argument(
        "--all-threads",
        action="store_true",
        help="sample every running thread, not only the one holding the GIL (counts waits in C as busy)",
    )
    args = parser.parse_args()
    home = prepare_home(args.home, args.persons)
    out: Path = args.out or home.root / "profile"
    out.mkdir(parents=True, exist_ok=True)
    raw = out / "stacks.txt"
    if args.target == "broker":
        argv, port = leis_argv("serve"), PORTS["broker"]
    else:
        addresses = [f"--{n}=127.0.0.1:{PORTS[n]}" for n in ("eid", "tecs", "photos")]
        argv = [
            sys.executable,
            str(Path(__file__).parent / "baseline_fanout.py"),
            f"--port={PORTS['baseline']}",
        ]
        argv, port = [*argv, *addresses], PORTS["baseline"]
    env = {"OTEL_TRACES_SAMPLER": "always_off"} if args.tracing == "off" else {}
    with bench_mesh(home) as mesh:
        add_sources(mesh, home)
        server = mesh.add(args.target, argv, port, env)
        mesh.start_healthy()
        started = time.monotonic()
        result, cpu = asyncio.run(profiled_load(home, port, server.pid, args, raw))
        elapsed = time.monotonic() - started
    stacks = read_stacks(raw)
    total = sum(stacks.values())
    title = (
        f"{args.target} (tracing {args.tracing}) under {args.concurrency} callers: "
        f"{result.calls} calls, {total} samples at {args.rate} Hz"
    )
    (out / "flamegraph.svg").write_text(flame_graph_svg(stacks, title))
    cpu_ms_per_call = 1000.0 * cpu / max(result.calls, 1)
    sampled_ms_per_call = 1000.0 * total / args.rate / max(result.calls, 1)
    table, rows = top_table(function_costs(stacks), total, cpu_ms_per_call, args.top)
    header = (
        f"{result.line()}\n"
        f"server CPU {cpu_ms_per_call:.2f} ms per call (all threads, /proc), apportioned below by sample "
        f"share; samples {sampled_ms_per_call:.2f} ms per call of wall time; run {elapsed:.0f} s\n"
    )
    (out / "top.txt").write_text(f"{title}\n{header}\n{table}")
    print(f"{title}\n{header}\n{table}")
    print(f"wrote {out / 'flamegraph.svg'}, {out / 'top.txt'}, {raw}")
    print(
        json.dumps(
            {
                "bench": "profile_broker",
                "target": args.target,
                "tracing": args.tracing,
                "qps": round(result.qps, 1),
                "calls": result.calls,
                "cpu_ms_per_call": round(cpu_ms_per_call, 3),
                "sampled_ms_per_call": round(sampled_ms_per_call, 3),
                "top_self": rows[:10],
            }
        )
    )


if __name__ == "__main__":
    main()
