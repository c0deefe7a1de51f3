"""OAuth access tokens the sandbox issued (``developers/profile-api``: 8-hour bearer tokens)."""

from __future__ import annotations

import secrets
import threading
import time

__all__ = ["TokenBook"]


class TokenBook:
    """Issued tokens and when each expires; owns its lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}

    def issue(self, ttl_seconds: float) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.time() + ttl_seconds
        return token

    def valid(self, token: str) -> bool:
        with self._lock:
            expires = self._tokens.get(token)
        return expires is not None and expires > time.time()

    def expire_all(self) -> int:
        """Make every token expire now; return how many there were."""
        with self._lock:
            past = time.time() - 1
            for token in self._tokens:
                self._tokens[token] = past
            return len(self._tokens)

    def revoke_all(self) -> int:
        """Forget every token (mParticle cannot revoke tokens; tests use this to stand in for a lost one)."""
        with self._lock:
            count = len(self._tokens)
            self._tokens.clear()
            return count
