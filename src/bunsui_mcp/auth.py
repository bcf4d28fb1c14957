"""Bearer tokens for the HTTP transport: a file of sha256 hashes, each mapped to an actor.

The file never holds a token itself, so reading it does not let anyone connect. Tokens are
compared in constant time and never logged or passed on (to AWS or anywhere else).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

import yaml
from mcp.server.auth.provider import AccessToken

from bunsui_core.errors import InvalidArgumentError

TOKEN_BYTES = 32


def token_hash(token: str) -> str:
    """What the tokens file stores."""
    return hashlib.sha256(token.encode()).hexdigest()


def load_tokens(path: Path) -> dict[str, str]:
    """`{sha256: actor}` from a tokens file (`tokens: [{actor, sha256}]`); bad files are
    INVALID_ARGUMENT rather than a server that silently accepts nobody (or everybody)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
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
    return hashes


def add_token(path: Path, actor: str) -> str:
    """Create a token for `actor`, store only its hash, and return it (shown once)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    entries = []
    if path.exists():
        entries = [{"actor": a, "sha256": h} for h, a in load_tokens(path).items()]
    entries.append({"actor": actor, "sha256": token_hash(token)})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"tokens": entries}, sort_keys=False), encoding="utf-8")
    path.chmod(0o600)
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
