"""Who is calling (R-ID-1, R-ID-3, R-SEC-2): TLS peer certificate → agreement → principal.

The handshake already proved the certificate chains to the trust bundle and is
in date (``require_client_auth=True``). Here the broker checks revocation (gRPC
Python has no CRL option), maps the certificate to its agreement, enforces the
agreement's status and effective dates and the role the method needs, and checks
the ORI the partner asserts for its end user.

A certificate is a registered agency's only if exactly one agreement names it (its DNS
SAN is the agreement's ``cert_identity``) and that agreement pins its public key, within
the pin's window (R-SEC-4). A name under the shared CA is a claim, never a proof.

``UNAUTHENTICATED``: no verified certificate, a revoked one, one whose key its agreement
does not pin (``CERTIFICATE_NOT_PINNED``), or one naming several agreements
(``CERTIFICATE_AMBIGUOUS``).
``PERMISSION_DENIED``: a certificate no agreement names, or a known one without the right.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import grpc

from leis.common.errors import (
    CERTIFICATE_AMBIGUOUS,
    CERTIFICATE_NOT_PINNED,
    CERTIFICATE_REVOKED,
    NO_AGREEMENT,
    NO_CLIENT_CERTIFICATE,
    ROLE_NOT_PERMITTED,
    PermissionDenied,
    Unauthenticated,
)
from leis.common.tls import CRL_FILE, CertIdentity, PkiError, peer_identity
from leis.pki.revocation import RevocationList
from leis.registry.agreements import Agreement, Registry, Role

log = logging.getLogger("leis.identity")

# ErrorInfo reasons (domain leis.dhs.gov) of the identity stage.

# Which registry role may call which service; everything else is denied.
SERVICE_ROLES: dict[str, Role] = {
    "leis.v1.QueryService": Role.PARTNER,
    "leis.v1.FederatedSearchService": Role.ANALYST,
    "leis.v1.AuditService": Role.AUDITOR,
}


@dataclass(frozen=True)
class Caller:
    """Who a connection presents itself as, looked up once at the start of the call: its
    verified certificate, the agreements that certificate names, and why its key is not
    pinned to the one it names (None when it is). A fact, not a decision."""

    certificate: CertIdentity | None
    named: tuple[Agreement, ...] = ()
    unpinned: str | None = None

    @property
    def agreement(self) -> Agreement | None:
        """The agreement the certificate is proven to belong to: named alone, its key pinned."""
        return self.named[0] if len(self.named) == 1 and self.unpinned is None else None

    @property
    def agency_id(self) -> str:
        return self.agreement.agency_id if self.agreement is not None else ""

    @property
    def fingerprint(self) -> str:
        return self.certificate.fingerprint_sha256 if self.certificate is not None else ""


@dataclass(frozen=True)
class Principal:
    """A verified caller: its certificate, its agreement and the end user it asserts."""

    identity: CertIdentity
    agreement: Agreement

    @property
    def agency_id(self) -> str:
        return self.agreement.agency_id


def service_of(method: str) -> str:
    """``/leis.v1.QueryService/Search`` → ``leis.v1.QueryService``."""
    return method.lstrip("/").split("/", 1)[0]


class IdentityResolver:
    """Identifies the caller of a call once, and decides on it against the current registry and CRL."""

    def __init__(
        self,
        registry: Callable[[], Registry],
        revocations: Callable[[], RevocationList],
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self._registry = registry
        self._revocations = revocations
        self._today = today

    def identify(self, context: grpc.aio.ServicerContext) -> Caller:  # type: ignore[type-arg]
        """The certificate on the connection and the agreements it names, without judging either."""
        certificate = peer_identity(context)
        if certificate is None:
            return Caller(None)
        named = self._registry().named_by(certificate)
        unpinned = named[0].pin_refusal(certificate, self._today()) if len(named) == 1 else None
        return Caller(certificate, named, unpinned)

    def authorize(self, caller: Caller, method: str) -> Principal:
        """The caller's principal for ``method``, or a refusal (raises)."""
        principal = self.registered(caller)
        needed = SERVICE_ROLES.get(service_of(method))
        if needed is None or principal.agreement.role != needed:
            raise PermissionDenied(
                ROLE_NOT_PERMITTED,
                f"agreement {principal.agency_id} may not call {service_of(method)}",
            )
        return principal

    def registered(self, caller: Caller) -> Principal:
        """The caller as the principal of an agreement in force, whatever its role, or a refusal (raises)."""
        identity = caller.certificate
        if identity is None:
            raise Unauthenticated(NO_CLIENT_CERTIFICATE, "no verified client certificate on this connection")
        if self._revocations().is_revoked(identity):
            raise Unauthenticated(CERTIFICATE_REVOKED, "the client certificate has been revoked")
        if not caller.named:
            raise PermissionDenied(NO_AGREEMENT, "no registered agreement for this client certificate")
        if len(caller.named) > 1:
            names = ", ".join(a.agency_id for a in caller.named)
            raise Unauthenticated(
                CERTIFICATE_AMBIGUOUS, f"the client certificate names several agreements ({names})"
            )
        agreement = caller.agreement
        if agreement is None:
            raise Unauthenticated(
                CERTIFICATE_NOT_PINNED,
                f"the client certificate names agreement {caller.named[0].agency_id}, but {caller.unpinned}",
            )
        reason = agreement.inactive_reason(self._today())
        if reason is not None:
            raise PermissionDenied(
                reason, f"the agreement of {agreement.agency_id} is not in force ({reason})"
            )
        return Principal(identity=identity, agreement=agreement)


class RevocationHolder:
    """The CRL in force: re-read when ``crl.pem`` changes (checked at most every ``interval``).

    A revocation takes effect without restart (R-SEC-2). A CRL that no longer loads
    (bad signature, stale, unreadable) is refused and the previous one stays in force.
    """

    def __init__(
        self, pki_dir: Path, interval_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._pki_dir = pki_dir
        self._path = pki_dir / CRL_FILE
        self._interval = interval_seconds
        self._clock = clock
        self._current = RevocationList.load(pki_dir)
        self._stamp = self._file_stamp()
        self._checked = clock()

    def _file_stamp(self) -> tuple[int, int]:
        stat = self._path.stat()
        return stat.st_mtime_ns, stat.st_size

    def current(self) -> RevocationList:
        """The revocation list in force now."""
        now = self._clock()
        if now - self._checked >= self._interval:
            self._checked = now
            try:
                stamp = self._file_stamp()
                if stamp != self._stamp:
                    self._current = RevocationList.load(self._pki_dir)
                    self._stamp = stamp
                    log.info("certificate revocation list reloaded")
            except (OSError, PkiError) as exc:
                log.error("certificate revocation list change refused, keeping the previous one: %s", exc)
        return self._current
