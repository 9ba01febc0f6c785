"""Hot reload of the agreement registry (R-ID-2): changes take effect without restart.

The watcher polls the file's content digest. A valid new version replaces the
current one atomically (readers see either the old or the new registry, never a
mix) and is reported to ``on_change`` (the audit log records it). Changes are
versioned: an agreement whose content changed without a higher ``version``, or
whose version went down, refuses the whole file. A refused file (invalid, or
unversioned) is logged with its precise reason and reported once to
``on_refusal`` (the audit log records it); the previous registry stays in force.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from leis.registry.agreements import Agreement, Registry, RegistryError, load_registry

log = logging.getLogger("leis.registry")

REGISTRY_INVALID = "REGISTRY_INVALID"
AGREEMENT_VERSION_NOT_INCREASED = "AGREEMENT_VERSION_NOT_INCREASED"


@dataclass(frozen=True)
class Refusal:
    """A registry file refused on reload: why, which agreements, the refused file's digest."""

    reason: str
    detail: str
    digest: str
    agreements: tuple[str, ...] = ()


ChangeHook = Callable[[Registry, Registry], Awaitable[None]]
RefusalHook = Callable[[Registry, Refusal], Awaitable[None]]


def _terms(agreement: Agreement) -> dict[str, object]:
    """An agreement's fields other than its version."""
    return {name: value for name, value in vars(agreement).items() if name != "version"}


def unversioned_changes(old: Registry, new: Registry) -> tuple[str, ...]:
    """Ids of agreements of ``new`` that changed without a higher version, or whose version went down."""
    stale = []
    for agreement in new.agreements:
        before = old.get(agreement.agency_id)
        if before is None:
            continue
        changed = _terms(before) != _terms(agreement)
        if agreement.version < before.version or (changed and agreement.version == before.version):
            stale.append(agreement.agency_id)
    return tuple(sorted(stale))


class RegistryHolder:
    """The registry in force, and a task that reloads it when the file changes."""

    def __init__(
        self, path: Path, on_change: ChangeHook | None = None, on_refusal: RefusalHook | None = None
    ) -> None:
        self._path = path
        self._current = load_registry(path)
        self._on_change = on_change
        self._on_refusal = on_refusal
        self._refused_digest = ""
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
        if digest in (self._current.digest, self._refused_digest):
            return False
        try:
            new = load_registry(self._path)
        except RegistryError as exc:
            await self._refuse(Refusal(REGISTRY_INVALID, str(exc), digest))
            return False
        stale = unversioned_changes(self._current, new)
        if stale:
            detail = f"agreements changed without a higher version: {', '.join(stale)}"
            await self._refuse(Refusal(AGREEMENT_VERSION_NOT_INCREASED, detail, new.digest, stale))
            return False
        old = self._current
        if self._on_change is not None:
            # Record first: a change that cannot be audited does not take effect.
            await self._on_change(old, new)
        self._current = new
        log.info("agreement registry version %s in force (was %s)", new.version, old.version)
        return True

    async def _refuse(self, refusal: Refusal) -> None:
        """Log and report a refused file once; the registry in force stays."""
        log.error(
            "agreement registry change refused (%s), keeping version %s: %s",
            refusal.reason,
            self._current.version,
            refusal.detail,
        )
        if self._on_refusal is not None:
            await self._on_refusal(self._current, refusal)
        self._refused_digest = refusal.digest

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
