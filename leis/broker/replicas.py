"""``leis serve --workers N``: N broker processes on one port, supervised.

gRPC Python serves one core per process, so a host runs several broker processes that bind
the same address with ``SO_REUSEPORT`` (as grpc's own multiprocessing example does) and
the kernel spreads connections over them. The supervisor holds the port reserved (a bound,
never listening ``SO_REUSEPORT`` socket) so a port of 0 resolves once for every worker.

Each worker is ``leis serve`` with ``$LEIS_WORKER_INDEX`` set: its own audit chain
(``<host>-<instance>-w<index>``), its own metrics port (``metrics_port + index``). Shared
controls (rate limits, concurrency budgets, the registry) live in PostgreSQL
(``leis.shared``), which is why several workers need ``audit_url = "postgresql://…"``.

Supervision: a worker that dies is logged and restarted on the same index (same chain; its
chain claim died with it), after a back-off that grows while it keeps dying young. A worker
refused at its first start (exit status 2: configuration, keys, audit store) stops the whole
group with that status: restarting cannot fix it. SIGTERM or SIGINT drains all: each worker
gets SIGTERM and finishes its in-flight calls within its grace period; laggards are killed.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from leis.audit.log import ENV_WORKER_INDEX

log = logging.getLogger("leis.supervisor")

START_REFUSED = 2
_POLL_SECONDS = 0.1
_YOUNG_SECONDS = 10.0
_MAX_BACKOFF_SECONDS = 5.0


def split_listen(listen: str) -> tuple[str, int]:
    """``("host", port)`` of ``host:port`` (IPv6 hosts in brackets)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - the operator's listen address


@contextmanager
def reserved_port(listen: str) -> Iterator[int]:
    """Bind (never listen) ``listen`` with ``SO_REUSEPORT`` for the ``with`` block; its port."""
    host, port = split_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


@dataclass
class _Worker:
    index: int
    popen: subprocess.Popen[bytes]
    started: float
    failures: int = 0
    ever_restarted: bool = False


class Supervisor:
    """Starts ``workers`` copies of ``argv``, restarts the ones that die, drains all on a signal."""

    def __init__(
        self,
        argv: Sequence[str],
        workers: int,
        env: Mapping[str, str],
        *,
        stop_timeout: float,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self._argv = list(argv)
        self._count = workers
        self._env = dict(env)
        self._stop_timeout = stop_timeout
        self._stopping = threading.Event()
        self._workers: dict[int, _Worker] = {}

    def _start(self, index: int) -> subprocess.Popen[bytes]:
        popen = subprocess.Popen(self._argv, env={**self._env, ENV_WORKER_INDEX: str(index)})  # noqa: S603
        log.info("worker %d started (pid %d)", index, popen.pid)
        return popen

    def request_stop(self, signum: int = signal.SIGTERM, _frame: FrameType | None = None) -> None:
        """Begin draining (a signal handler)."""
        self._stopping.set()

    def run(self) -> int:
        """Supervise until asked to stop; the exit status for ``leis serve``."""
        for index in range(self._count):
            self._workers[index] = _Worker(index, self._start(index), time.monotonic())
        status = 0
        while not self._stopping.wait(_POLL_SECONDS):
            refused = self._reap()
            if refused is not None:
                status = refused
                break
        self._drain()
        return status

    def _reap(self) -> int | None:
        """Restart every worker that exited; a status when one was refused at its first start."""
        for worker in self._workers.values():
            code = worker.popen.poll()
            if code is None:
                continue
            young = time.monotonic() - worker.started < _YOUNG_SECONDS
            if code == START_REFUSED and young and not worker.ever_restarted:
                log.error("worker %d refused to start (status %d); stopping every worker", worker.index, code)
                return code
            worker.failures = worker.failures + 1 if young else 1
            backoff = min(_MAX_BACKOFF_SECONDS, 0.25 * 2 ** (worker.failures - 1))
            log.error(
                "worker %d (pid %d) exited with status %d; restarting it in %.2f s",
                worker.index,
                worker.popen.pid,
                code,
                backoff,
            )
            if self._stopping.wait(backoff):
                return None
            worker.popen = self._start(worker.index)
            worker.started = time.monotonic()
            worker.ever_restarted = True
        return None

    def _drain(self) -> None:
        log.info("stopping %d workers; each finishes its in-flight calls", len(self._workers))
        for worker in self._workers.values():
            if worker.popen.poll() is None:
                worker.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._stop_timeout
        for worker in self._workers.values():
            try:
                worker.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker %d did not stop in time; killing it", worker.index)
                worker.popen.kill()
                worker.popen.wait()
        log.info("all workers stopped")


def supervise(argv: Sequence[str], workers: int, env: Mapping[str, str], stop_timeout: float) -> int:
    """Run a :class:`Supervisor` with SIGTERM and SIGINT wired to drain; its exit status."""
    supervisor = Supervisor(argv, workers, env, stop_timeout=stop_timeout)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, supervisor.request_stop)
    return supervisor.run()
