"""Audit keys: AES-GCM content encryption with key ids (R-AUD-3) and Ed25519 checkpoint signing (R-AUD-4).

Keys live in a JSON key file (mode 0600, written atomically)::

    {"format": "leis-audit-keys/1",
     "content_keys": {"<key id>": "<base64 32-byte AES key>", ...},
     "active_content_key": "<key id>",
     "signing_key": "<base64 32-byte Ed25519 private key>",
     "trusted_signing_keys": ["<base64 32-byte Ed25519 public key>", ...]}

Older content keys stay in the file after a rotation so old events still decrypt;
retired signing keys stay trusted through their public keys. The environment can
supply the active keys instead (``LEIS_AUDIT_KEY``: base64 AES-256 key;
``LEIS_AUDIT_SIGNING_KEY``: base64 Ed25519 private key). A key id is the first 16
hex digits of a domain-separated SHA-256 of the key (the public key for signing).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from leis.audit.errors import AuditConfigError

KEY_FILE_FORMAT = "leis-audit-keys/1"
ENV_CONTENT_KEY = "LEIS_AUDIT_KEY"
ENV_SIGNING_KEY = "LEIS_AUDIT_SIGNING_KEY"
ENV_KEY_FILE = "LEIS_AUDIT_KEY_FILE"
NONCE_BYTES = 12
_AAD_PREFIX = b"leis-audit-content/1\x00"
# Version 2 binds the event's whole hashed metadata (``chain.canonical_metadata``), not only its id.
AAD_V2_PREFIX = b"leis-audit-content/2\x00"


class ContentKeyUnavailable(AuditConfigError):
    """An event's content cannot be decrypted: its key id is unknown or the ciphertext is bad."""


def key_id_of(raw: bytes) -> str:
    """The public id of a content key or of a signing public key."""
    return hashlib.sha256(b"leis-audit-key-id\x00" + raw).hexdigest()[:16]


def _public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key_id(key: Ed25519PublicKey) -> str:
    """The id of an Ed25519 public key (recorded with each signature)."""
    return key_id_of(_public_raw(key))


def public_key_b64(key: Ed25519PublicKey) -> str:
    """An Ed25519 public key as base64 of its 32 raw bytes."""
    return base64.b64encode(_public_raw(key)).decode("ascii")


def _b64_key(raw: object, what: str, where: str) -> bytes:
    if not isinstance(raw, str):
        raise AuditConfigError(f"{where}: {what} must be a base64 string")
    try:
        value = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AuditConfigError(f"{where}: {what} is not valid base64") from exc
    if len(value) != 32:
        raise AuditConfigError(f"{where}: {what} must decode to 32 bytes, got {len(value)}")
    return value


def public_key_from_b64(raw: str, where: str = "public key") -> Ed25519PublicKey:
    """Parse a base64 raw Ed25519 public key; ``AuditConfigError`` when malformed."""
    try:
        return Ed25519PublicKey.from_public_bytes(_b64_key(raw, "Ed25519 public key", where))
    except ValueError as exc:
        raise AuditConfigError(f"{where}: not an Ed25519 public key") from exc


@dataclass(frozen=True)
class AuditKeys:
    """The content keyring, the signing key and the trusted verification keys."""

    content_keys: Mapping[str, bytes]
    active_content_key: str
    signing_key: Ed25519PrivateKey | None
    trusted: Mapping[str, Ed25519PublicKey] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.active_content_key not in self.content_keys:
            raise AuditConfigError(f"active content key {self.active_content_key!r} is not in the keyring")
        trusted = dict(self.trusted)
        if self.signing_key is not None:
            public = self.signing_key.public_key()
            trusted[public_key_id(public)] = public
        object.__setattr__(self, "trusted", trusted)
        object.__setattr__(self, "_aead", {kid: AESGCM(key) for kid, key in self.content_keys.items()})

    @classmethod
    def generate(cls) -> AuditKeys:
        """Fresh random keys."""
        content = AESGCM.generate_key(bit_length=256)
        kid = key_id_of(content)
        return cls({kid: content}, kid, Ed25519PrivateKey.generate())

    @classmethod
    def from_raw(cls, content_key: bytes, signing_key: bytes | Ed25519PrivateKey | None) -> AuditKeys:
        """Keys from raw bytes (32-byte AES key; 32-byte Ed25519 private key)."""
        if len(content_key) != 32:
            raise AuditConfigError(f"content key must be 32 bytes (AES-256), got {len(content_key)}")
        kid = key_id_of(content_key)
        return cls({kid: content_key}, kid, _signer(signing_key))

    def with_signer(self, signing_key: bytes | Ed25519PrivateKey) -> AuditKeys:
        """The same keyring with another signing key."""
        return AuditKeys(self.content_keys, self.active_content_key, _signer(signing_key), self.trusted)

    @property
    def signing_key_id(self) -> str:
        if self.signing_key is None:
            raise AuditConfigError("no audit signing key is configured")
        return public_key_id(self.signing_key.public_key())

    # ------------------------------------------------------------------ content

    def encrypt(self, event_id: str, plaintext: bytes) -> tuple[str, bytes]:
        """``(key id, nonce || ciphertext)`` with only the event id bound (format 1, legacy)."""
        nonce = os.urandom(NONCE_BYTES)
        aead: dict[str, AESGCM] = self._aead  # type: ignore[attr-defined]
        sealed = aead[self.active_content_key].encrypt(nonce, plaintext, _AAD_PREFIX + event_id.encode())
        return self.active_content_key, nonce + sealed

    def seal(self, metadata: bytes, plaintext: bytes) -> bytes:
        """``nonce || ciphertext`` under the active key, the event's hashed metadata bound as AAD.

        ``metadata`` is ``chain.canonical_metadata`` of the event (its ``key_id`` column
        is ``active_content_key``), so no metadata column can be changed, and no
        ciphertext moved to another event, without the content key (R-AUD-4).
        """
        nonce = os.urandom(NONCE_BYTES)
        aead: dict[str, AESGCM] = self._aead  # type: ignore[attr-defined]
        return nonce + aead[self.active_content_key].encrypt(nonce, plaintext, AAD_V2_PREFIX + metadata)

    def open_sealed(self, key_id: str, metadata: bytes, blob: bytes) -> bytes | None:
        """The plaintext when ``blob`` authenticates with ``metadata`` under ``key_id``, else None.

        Raises ``ContentKeyUnavailable`` only when the key id is not in the keyring.
        """
        aead: dict[str, AESGCM] = self._aead  # type: ignore[attr-defined]
        cipher = aead.get(key_id)
        if cipher is None:
            raise ContentKeyUnavailable(f"content key {key_id!r} is not in the audit keyring")
        try:
            return cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], AAD_V2_PREFIX + metadata)
        except InvalidTag:
            return None

    def decrypt(self, event_id: str, key_id: str, blob: bytes, metadata: bytes | None = None) -> bytes:
        """The plaintext of one event's content; ``ContentKeyUnavailable`` when impossible.

        With ``metadata`` (the event's canonical metadata) format 2 is tried first, then
        format 1 (events written before the upgrade).
        """
        if metadata is not None:
            opened = self.open_sealed(key_id, metadata, blob)
            if opened is not None:
                return opened
        aead: dict[str, AESGCM] = self._aead  # type: ignore[attr-defined]
        cipher = aead.get(key_id)
        if cipher is None:
            raise ContentKeyUnavailable(f"content key {key_id!r} is not in the audit keyring")
        try:
            return cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _AAD_PREFIX + event_id.encode())
        except InvalidTag as exc:
            raise ContentKeyUnavailable(
                f"content of event {event_id} does not decrypt under key {key_id!r}"
            ) from exc

    def legacy_authentic(self, event_id: str, key_id: str, blob: bytes) -> bool:
        """Whether ``blob`` is format-1 content of ``event_id`` (a log written before format 2)."""
        aead: dict[str, AESGCM] = self._aead  # type: ignore[attr-defined]
        cipher = aead.get(key_id)
        if cipher is None:
            return False
        try:
            cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _AAD_PREFIX + event_id.encode())
        except InvalidTag:
            return False
        return True

    # ------------------------------------------------------------------ signatures

    def sign(self, payload: bytes) -> tuple[str, bytes]:
        """``(signing key id, signature)`` over ``payload``."""
        if self.signing_key is None:
            raise AuditConfigError("no audit signing key is configured")
        return self.signing_key_id, self.signing_key.sign(payload)

    def check_signature(self, key_id: str, signature: bytes, payload: bytes) -> str | None:
        """``None`` when the signature is valid under a trusted key, else what is wrong."""
        public = self.trusted.get(key_id)
        if public is None:
            return f"signed by unknown key {key_id!r}"
        try:
            public.verify(signature, payload)
        except InvalidSignature:
            return "invalid signature"
        return None

    # ------------------------------------------------------------------ file

    def to_json(self) -> str:
        """The key file's text."""
        signing = (
            base64.b64encode(self.signing_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))
            if self.signing_key is not None
            else b""
        ).decode("ascii")
        own = self.signing_key_id if self.signing_key is not None else ""
        data = {
            "format": KEY_FILE_FORMAT,
            "content_keys": {
                kid: base64.b64encode(key).decode("ascii") for kid, key in self.content_keys.items()
            },
            "active_content_key": self.active_content_key,
            "signing_key": signing,
            "trusted_signing_keys": [
                public_key_b64(k) for kid, k in sorted(self.trusted.items()) if kid != own
            ],
        }
        return json.dumps(data, indent=2) + "\n"

    def write(self, path: Path) -> None:
        """Write the key file atomically with mode 0600; refuses to overwrite."""
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(self.to_json())
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temp, 0o600)
            os.link(temp, path)  # fails when the file exists: never overwrite a key
        except FileExistsError as exc:
            raise AuditConfigError(
                f"{path}: already exists; refusing to overwrite an audit key file"
            ) from exc
        finally:
            os.unlink(temp)


def _signer(signing_key: bytes | Ed25519PrivateKey | None) -> Ed25519PrivateKey | None:
    if isinstance(signing_key, bytes):
        if len(signing_key) != 32:
            raise AuditConfigError(f"signing key must be 32 bytes (Ed25519), got {len(signing_key)}")
        return Ed25519PrivateKey.from_private_bytes(signing_key)
    return signing_key


def parse_key_file(text: str, where: str) -> AuditKeys:
    """Parse a key file's text; ``AuditConfigError`` naming the problem when corrupt."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AuditConfigError(f"{where}: corrupt audit key file (not JSON: line {exc.lineno})") from exc
    if not isinstance(data, dict) or data.get("format") != KEY_FILE_FORMAT:
        raise AuditConfigError(f"{where}: corrupt audit key file (format is not {KEY_FILE_FORMAT!r})")
    raw_keys = data.get("content_keys")
    if not isinstance(raw_keys, dict) or not raw_keys:
        raise AuditConfigError(f"{where}: content_keys must be a non-empty object")
    content: dict[str, bytes] = {}
    for kid, raw in raw_keys.items():
        key = _b64_key(raw, f"content key {kid!r}", where)
        if key_id_of(key) != kid:
            raise AuditConfigError(f"{where}: content key {kid!r} does not match its id (corrupt key file)")
        content[kid] = key
    active = data.get("active_content_key")
    if not isinstance(active, str) or active not in content:
        raise AuditConfigError(f"{where}: active_content_key must name one of content_keys")
    signing_raw = data.get("signing_key", "")
    signer = (
        Ed25519PrivateKey.from_private_bytes(_b64_key(signing_raw, "signing_key", where))
        if signing_raw
        else None
    )
    trusted_raw = data.get("trusted_signing_keys", [])
    if not isinstance(trusted_raw, list):
        raise AuditConfigError(f"{where}: trusted_signing_keys must be a list")
    trusted = {}
    for raw in trusted_raw:
        public = public_key_from_b64(raw, where)
        trusted[public_key_id(public)] = public
    return AuditKeys(content, active, signer, trusted)


def load_key_file(path: Path) -> AuditKeys:
    """Read and parse a key file; ``AuditConfigError`` when missing, unreadable or corrupt."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise AuditConfigError(f"{path}: audit key file is missing") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditConfigError(f"{path}: cannot read the audit key file ({type(exc).__name__})") from exc
    return parse_key_file(text, str(path))


def keys_from_env(base: AuditKeys | None) -> AuditKeys | None:
    """Apply ``LEIS_AUDIT_KEY`` / ``LEIS_AUDIT_SIGNING_KEY`` over ``base`` (None when neither is set)."""
    content_env = os.environ.get(ENV_CONTENT_KEY, "")
    signing_env = os.environ.get(ENV_SIGNING_KEY, "")
    if not content_env and not signing_env:
        return base
    if content_env:
        content_key = _b64_key(content_env, "content key", ENV_CONTENT_KEY)
        kid = key_id_of(content_key)
        keyring = {**(base.content_keys if base else {}), kid: content_key}
    elif base is not None:
        keyring, kid = dict(base.content_keys), base.active_content_key
    else:
        raise AuditConfigError(f"{ENV_SIGNING_KEY} is set but no content key ({ENV_CONTENT_KEY} or key file)")
    signer = base.signing_key if base else None
    if signing_env:
        signer = Ed25519PrivateKey.from_private_bytes(_b64_key(signing_env, "signing key", ENV_SIGNING_KEY))
    trusted = dict(base.trusted) if base else {}
    return AuditKeys(keyring, kid, signer, trusted)


@dataclass(frozen=True)
class PublicKeys:
    """Verification keys only: what an outside auditor holds (no content key, no private key)."""

    trusted: Mapping[str, Ed25519PublicKey]

    def check_signature(self, key_id: str, signature: bytes, payload: bytes) -> str | None:
        """``None`` when the signature is valid under a trusted key, else what is wrong."""
        public = self.trusted.get(key_id)
        if public is None:
            return f"signed by unknown key {key_id!r}"
        try:
            public.verify(signature, payload)
        except InvalidSignature:
            return "invalid signature"
        return None


def public_key_pem(key: Ed25519PublicKey) -> str:
    """An Ed25519 public key as PEM (SubjectPublicKeyInfo)."""
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def parse_public_key(text: str, where: str) -> Ed25519PublicKey:
    """A public key from PEM text or base64 of its 32 raw bytes; ``AuditConfigError`` otherwise."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        try:
            key = load_pem_public_key(stripped.encode("ascii"))
        except (ValueError, UnicodeEncodeError) as exc:
            raise AuditConfigError(f"{where}: not a PEM public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise AuditConfigError(f"{where}: not an Ed25519 public key")
        return key
    return public_key_from_b64(stripped, where)


def load_public_keys(path: Path) -> PublicKeys:
    """Every PEM (or base64) public key in a file, e.g. the output of ``leis audit public-key``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditConfigError(f"{path}: cannot read the public key file ({type(exc).__name__})") from exc
    blocks: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("-----BEGIN"):
            current = [line]
        elif line.startswith("-----END") and current:
            current.append(line)
            blocks.append("\n".join(current))
            current = []
        elif current:
            current.append(line)
    if not blocks:
        blocks = [line for line in text.splitlines() if line.strip() and not line.startswith("#")][:1]
    keys = [parse_public_key(block, str(path)) for block in blocks]
    if not keys:
        raise AuditConfigError(f"{path}: no public key in the file")
    return PublicKeys({public_key_id(k): k for k in keys})
