"""Hot reload of the agreement registry (R-ID-2): changes take effect without restart.

The watcher polls the file's content digest. A valid new version replaces the
current one atomically (readers see either the old or the new registry, never a
mix) and is reported to ``on_change`` (the audit log records it). An invalid
file is refused with its precise error and the previous registry stays in force.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from leis.registry.agreements import Registry, RegistryError, load_registry

log = logging.getLogger("leis.registry")

ChangeHook = Callable[[Registry, Registry], Awaitable[None]]


class RegistryHolder:
    """The registry in force, and a task that reloads it when the file changes."""

    def __init__(self, path: Path, on_change: ChangeHook | None = None) -> None:
        self._path = path
        self._current = load_registry(path)
        self._on_change = on_change
        self._task: asyncio.Task[None] | None = None

    def current(self) -> Registry:
        """The registry in force now."""
        return self._current

    async def check_once(self) -> bool:
        """Reload if the file changed; True when a new registry took effect."""
        try:
            digest = hashlib.sha256(self._path.read_bytes()).hexdigest()
        except OSError as exc:
            log.error("agreement registry unreadable, keeping version %s: %s", self._current.version, exc)
            return False
        if digest == self._current.digest:
            return False
        try:
            new = load_registry(self._path)
        except RegistryError as exc:
            log.error("agreement registry change refused, keeping version %s: %s", self._current.version, exc)
            return False
        old = self._current
        if self._on_change is not None:
            # Record first: a change that cannot be audited does not take effect.
            await self._on_change(old, new)
        self._current = new
        log.info("agreement registry version %s in force (was %s)", new.version, old.version)
        return True

    def start(self, interval_seconds: float) -> None:
        """Poll the file every ``interval_seconds`` until ``stop``."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(interval_seconds)
                try:
                    await self.check_once()
                except Exception:
                    log.exception("agreement registry reload failed; previous version stays in force")

        self._task = asyncio.get_running_loop().create_task(loop())

    async def stop(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
