"""The service's keys: decoded from the environment (`id:base64` rings), or, for
local use, generated once into the instance folder's keys.json (mode 0600)."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from suppression.config.production import MAKE_KEY
from suppression.config.settings import ConfigError, Keys

KEYS_FILE = "keys.json"


def _decode_key(text: str, name: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as exc:
        raise ConfigError(f"{name} is not base64") from exc
    if len(raw) != 32:
        raise ConfigError(f"{name} must be 32 bytes (base64 of 32 random bytes)")
    return raw


def _key_ring(env: Mapping[str, str], name: str) -> dict[int, bytes]:
    """`id:base64,id:base64` → {id: key}."""
    ring: dict[int, bytes] = {}
    for part in filter(None, env.get(name, "").split(",")):
        key_id, sep, value = part.strip().partition(":")
        if not sep or not key_id.isdigit():
            raise ConfigError(f"{name} entries are id:base64")
        ring[int(key_id)] = _decode_key(value, name)
    return ring


def keys_from_env(env: Mapping[str, str]) -> Keys:
    """ADDRESS_SEALING_KEYS is `id:base64,id:base64`; the highest id seals new data.
    TOKEN_KEYS has the same form (ids 0..255); the highest id mints links."""
    sealing = _key_ring(env, "ADDRESS_SEALING_KEYS")
    tokens = _key_ring(env, "TOKEN_KEYS")
    if any(key_id > 255 for key_id in tokens):
        raise ConfigError("TOKEN_KEYS ids are 0..255 (one byte in each link)")
    if not sealing:
        raise ConfigError(
            "ADDRESS_SEALING_KEYS holds no key: set it to 1:<key>, a key made with " + MAKE_KEY
        )
    secret = env.get("SECRET_KEY", "")
    if len(secret) < 32:
        raise ConfigError("SECRET_KEY must be at least 32 characters")
    return Keys(
        secret_key=secret,
        index_key=_decode_key(env.get("ADDRESS_INDEX_KEY", ""), "ADDRESS_INDEX_KEY"),
        sealing_keys=sealing,
        sealing_key_current=max(sealing),
        token_keys=tokens,
    )


def _new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def local_keys(instance: Path) -> Keys:
    """Keys for local use: generated on first run, kept in the instance folder (0600)."""
    path = instance / KEYS_FILE
    if not path.exists():
        document = {
            "SECRET_KEY": secrets.token_urlsafe(48),
            "ADDRESS_INDEX_KEY": _new_key(),
            "ADDRESS_SEALING_KEYS": f"1:{_new_key()}",
            "TOKEN_KEYS": f"1:{_new_key()}",
        }
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first; read theirs
        else:
            with os.fdopen(fd, "w") as handle:
                json.dump(document, handle, indent=2)
    document = json.loads(path.read_text())
    if not document.get("TOKEN_KEYS"):
        document = _add_local_key(path, "TOKEN_KEYS")
    return keys_from_env(document)


def _add_local_key(path: Path, name: str) -> dict[str, str]:
    """A key this version needs that an older instance's keys.json lacks: generated
    once under a lock (several workers may start at once), written atomically, 0600."""
    lock_fd = os.open(path.with_name(path.name + ".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(lock_fd, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        document = json.loads(path.read_text())
        if not document.get(name):
            document[name] = f"1:{_new_key()}"
            temporary = path.with_name(path.name + ".new")
            temporary.unlink(missing_ok=True)
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(document, handle, indent=2)
            os.replace(temporary, path)
    return document
