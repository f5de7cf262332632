"""Sessions of the Bluesky simulator, as a PDS keeps them: createSession, refreshSession, and the
check of the bearer token an XRPC call carries.

Answers follow the reference PDS: a wrong identifier or password is 401
`AuthenticationRequired` "Invalid identifier or password"; an expired access token is 400
`ExpiredToken` "Token has expired"; a token the service never issued is 400 `InvalidToken`; a
call without a session where one is required is 401 `AuthenticationRequired`. Tokens look like
JWTs (three base64url parts) and are unique per session.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from typing import Any, Callable

from sfm_archiver.simulator.bluesky.scenario import LoginSpec

CREATE = "com.atproto.server.createSession"
REFRESH = "com.atproto.server.refreshSession"
METHODS = (CREATE, REFRESH)
REFRESH_SECONDS = 90 * 86400


class Sessions:
    def __init__(self, spec: LoginSpec, did: str, clock: Callable[[], float]):
        self._spec = spec
        self._did = did
        self._clock = clock
        self._lock = threading.Lock()
        self._access: dict[str, float] = {}  # token -> expiry
        self._refresh: dict[str, float] = {}
        self.counts = {"sessions_created": 0, "sessions_refreshed": 0, "calls_with_session": 0}

    def answer(self, method: str, body: bytes, authorization: str | None) -> tuple[int, dict[str, Any]]:
        """The answer to one session method (POST)."""
        if method == CREATE:
            request = _json(body)
            if not self._spec.identifier or (str(request.get("identifier", "")).lower(), request.get("password")) != (
                    self._spec.identifier.lower(), self._spec.password):
                return 401, {"error": "AuthenticationRequired", "message": "Invalid identifier or password"}
            return 200, self._issue("sessions_created")
        with self._lock:
            expiry = self._refresh.pop(_token(authorization), None)
        if expiry is None:
            return 400, {"error": "InvalidToken", "message": "Token could not be verified"}
        if expiry <= self._clock():
            return 400, {"error": "ExpiredToken", "message": "Token has expired"}
        return 200, self._issue("sessions_refreshed")

    def refusal(self, authorization: str | None) -> tuple[int, dict[str, Any]] | None:
        """Why an XRPC call may not be answered (None: it may)."""
        token = _token(authorization)
        if token is None:
            if self._spec.required:
                return 401, {"error": "AuthenticationRequired", "message": "Authentication Required"}
            return None
        with self._lock:
            expiry = self._access.get(token)
            if expiry is not None and expiry > self._clock():
                self.counts["calls_with_session"] += 1
                return None
        if expiry is None:
            return 400, {"error": "InvalidToken", "message": "Token could not be verified"}
        return 400, {"error": "ExpiredToken", "message": "Token has expired"}

    def issued(self) -> list[str]:
        """Every token handed out so far (tests look for them where they must not be)."""
        with self._lock:
            return list(self._access) + list(self._refresh)

    def _issue(self, counter: str) -> dict[str, Any]:
        now = self._clock()
        access, refresh = _jwt("access", self._did), _jwt("refresh", self._did)
        with self._lock:
            self._access[access] = now + self._spec.access_seconds
            self._refresh[refresh] = now + REFRESH_SECONDS
            self.counts[counter] += 1
        return {"did": self._did, "handle": self._spec.identifier.lower(), "accessJwt": access, "refreshJwt": refresh,
                "active": True}


def _jwt(scope: str, did: str) -> str:
    def part(document: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()

    return ".".join((part({"typ": f"at+{scope}", "alg": "ES256K"}), part({"sub": did, "jti": secrets.token_hex(12)}),
                     base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()))


def _token(authorization: str | None) -> str | None:
    if authorization and authorization.startswith("Bearer "):
        return authorization[len("Bearer "):].strip() or None
    return None


def _json(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}
