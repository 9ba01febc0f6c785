"""Run mesh processes (sources, partner simulators, broker) as operating-system processes.

One launcher for the demo, the benchmarks and the process tests: each process is started
with its argv and environment, writes stdout and stderr to ``<log_dir>/<name>.out|.err``
(appended across restarts), is ready when standard gRPC health answers SERVING over mTLS
(the client certificate of ``pki_dir``), and is stopped with SIGTERM, then SIGKILL if it
has not exited in time. ``Mesh`` is a context manager that stops every process on exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from leis.common.tls import channel_credentials

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
HEALTH_CLIENT = "broker-client"
_POLL_SECONDS = 0.1


def leis_argv(*args: str) -> list[str]:
    """The command line of ``leis <args>`` run by this interpreter."""
    return [sys.executable, "-m", "leis.cli", *args]


@dataclass
class Process:
    """One mesh process: its command, gRPC port(s), environment and captured output."""

    name: str
    argv: list[str]
    port: int
    env: dict[str, str]
    stdout_path: Path
    stderr_path: Path
    more_ports: tuple[int, ...] = ()
    popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The process id of the running (or last) instance."""
        if self.popen is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.popen.pid

    @property
    def running(self) -> bool:
        """Started and not yet exited."""
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> None:
        """Start (or restart) the process, appending to its output files."""
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            self.popen = subprocess.Popen(self.argv, stdout=out, stderr=err, env=self.env)  # noqa: S603

    def output(self) -> str:
        """Everything the process wrote so far (stdout, then stderr)."""
        return "\n".join(
            path.read_text(errors="replace") for path in (self.stdout_path, self.stderr_path) if path.exists()
        )

    def wait_healthy(self, credentials: grpc.ChannelCredentials, deadline: float) -> None:
        """Poll gRPC health on every port until SERVING; ``RuntimeError`` with the output if not."""
        for port in (self.port, *self.more_ports):
            self._wait_serving(port, credentials, deadline)

    def _wait_serving(self, port: int, credentials: grpc.ChannelCredentials, deadline: float) -> None:
        with grpc.secure_channel(f"localhost:{port}", credentials) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                if not self.running:
                    raise RuntimeError(f"{self.name} exited early:\n{self.output()}")
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} not healthy on port {port} in time:\n{self.output()}")
                time.sleep(_POLL_SECONDS)

    def send(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Send ``sig`` if the process is running."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(sig)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """Signal the process and reap it (SIGKILL after ``timeout``); its exit status."""
        if self.popen is None:
            return 0
        self.send(sig)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait(timeout=timeout)


@dataclass
class Mesh:
    """Processes sharing one PKI, log directory and base environment; stops them all on exit."""

    pki_dir: Path
    log_dir: Path
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    processes: dict[str, Process] = field(default_factory=dict)

    def add(
        self,
        name: str,
        argv: Sequence[str],
        port: int,
        env: Mapping[str, str] | None = None,
        more_ports: Sequence[int] = (),
    ) -> Process:
        """Declare a process (not started); ``env`` adds to the mesh environment.

        ``more_ports`` are further gRPC ports the process serves (the partner simulators).
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        process = Process(
            name,
            list(argv),
            port,
            {**self.env, **(env or {})},
            self.log_dir / f"{name}.out",
            self.log_dir / f"{name}.err",
            tuple(more_ports),
        )
        self.processes[name] = process
        return process

    def start(self, names: Sequence[str] | None = None) -> None:
        """Start the named processes (all by default)."""
        for name in self._names(names):
            self.processes[name].start()

    def wait_healthy(
        self, names: Sequence[str] | None = None, timeout: float = START_TIMEOUT_SECONDS
    ) -> None:
        """Wait for every named process (all by default) to serve, within ``timeout`` overall."""
        credentials = channel_credentials(self.pki_dir, HEALTH_CLIENT)
        deadline = time.monotonic() + timeout
        for name in self._names(names):
            self.processes[name].wait_healthy(credentials, deadline)

    def start_healthy(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Start every process and wait until all serve; stop them all if one does not."""
        try:
            self.start()
            self.wait_healthy(timeout=timeout)
        except BaseException:
            self.stop_all()
            raise

    def stop(self, name: str, sig: signal.Signals = signal.SIGTERM) -> int:
        """Stop one process (SIGKILL after the timeout); its exit status."""
        return self.processes[name].stop(sig)

    def stop_all(self) -> None:
        """SIGTERM every running process (last added first), then reap each, killing laggards."""
        for process in reversed(self.processes.values()):
            process.send()
        for process in reversed(self.processes.values()):
            process.stop()

    def output(self, name: str) -> str:
        """What one process wrote so far."""
        return self.processes[name].output()

    def all_output(self) -> str:
        """What every process wrote so far."""
        return "\n".join(process.output() for process in self.processes.values())

    def _names(self, names: Sequence[str] | None) -> Sequence[str]:
        return list(self.processes) if names is None else names

    def __enter__(self) -> Mesh:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop_all()
