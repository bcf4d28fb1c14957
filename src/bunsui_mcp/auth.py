"""Bearer tokens for the HTTP transport: a file of sha256 hashes, each mapped to an actor.

The file never holds a token itself, so reading it does not let anyone connect. Tokens are
compared in constant time and never logged or passed on (to AWS or anywhere else).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

import yaml
from mcp.server.auth.provider import AccessToken

from bunsui_core.errors import InvalidArgumentError

TOKEN_BYTES = 32


def token_hash(token: str) -> str:
    """What the tokens file stores."""
    return hashlib.sha256(token.encode()).hexdigest()


def load_tokens(path: Path) -> dict[str, str]:
    """`{sha256: actor}` from a tokens file (`tokens: [{actor, sha256}]`); a bad, empty, or
    group/world-writable file is INVALID_ARGUMENT rather than a server that silently accepts
    nobody (or everybody)."""
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise InvalidArgumentError(
                f"tokens file {path} is writable by other users (mode {mode & 0o777:o}): anyone "
                f"who can write it can add a token; run `chmod 600 {path}`",
                details={"path": str(path)},
            )
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {"tokens": []}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidArgumentError(f"cannot read tokens file {path}: {exc}") from None
    entries = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise InvalidArgumentError(f"tokens file {path} must hold `tokens: [{{actor, sha256}}]`")
    hashes: dict[str, str] = {}
    for index, entry in enumerate(entries):
        actor = entry.get("actor") if isinstance(entry, dict) else None
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        if not (isinstance(actor, str) and actor and isinstance(digest, str) and len(digest) == 64):
            raise InvalidArgumentError(f"tokens file {path}: entry {index} needs actor and sha256")
        hashes[digest.lower()] = actor
    if not hashes:
        raise InvalidArgumentError(
            f"tokens file {path} holds no tokens: that would be a server nobody may use, or "
            "(worse, if it meant no authentication) anybody; add one with --new-token ACTOR",
            details={"path": str(path)},
        )
    return hashes


def add_token(path: Path, actor: str) -> str:
    """Create a token for `actor`, store only its hash, and return it (shown once)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    entries = []
    if path.exists() and path.stat().st_size:
        entries = [{"actor": a, "sha256": h} for h, a in load_tokens(path).items()]
    entries.append({"actor": actor, "sha256": token_hash(token)})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(yaml.safe_dump({"tokens": entries}, sort_keys=False))
    return token


class TokenFileVerifier:
    """The SDK's TokenVerifier over a tokens file: the actor is the token's subject."""

    def __init__(self, hashes: dict[str, str]) -> None:
        self.hashes = hashes

    async def verify_token(self, token: str) -> AccessToken | None:
        """The actor behind the token, or None (the SDK answers 401)."""
        digest = token_hash(token)
        for known, actor in self.hashes.items():
            if hmac.compare_digest(known, digest):
                return AccessToken(token=token, client_id=actor, scopes=[], subject=actor)
        return None
