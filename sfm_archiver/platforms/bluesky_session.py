"""A logged-in Bluesky session (identifier + app password), for services that ask for one.

With `bluesky.identifier` and an app password, the client makes a session at
`bluesky.service_url` (the account's PDS or an entryway such as bsky.social) with
`com.atproto.server.createSession`, sends `Authorization: Bearer <accessJwt>` with every call to
that service (which proxies `app.bsky.*` to its AppView), and when an answer says
`ExpiredToken` renews it with `com.atproto.server.refreshSession` (or a new session, when the
refresh token has expired too). A process keeps one session per login (`shared_session`):
workers side by side and runs one after another share it; one of them renews it.

The session calls go through an HTTP session of their own that nothing records: their bodies
hold the password and the tokens. The tokens join the secrets every log line is masked of.
"""

from __future__ import annotations

import hashlib
import json
import threading

import requests

from sfm_archiver.errors import AuthError, TransientError
from sfm_archiver.logsetup import add_secrets

CREATE = "com.atproto.server.createSession"
REFRESH = "com.atproto.server.refreshSession"
EXPIRED = "ExpiredToken"


class BlueskySession:
    """The bearer token to send, made on first use and renewed when the service says it expired."""

    def __init__(self, service_url: str, identifier: str, password: str, *, timeout: float, user_agent: str):
        self.service_url = service_url.rstrip("/")
        self.identifier = identifier
        self._password = password
        self._timeout = timeout
        self._http = requests.Session()
        self._http.trust_env = False
        self._http.headers["User-Agent"] = user_agent
        self._lock = threading.Lock()
        self._access: str | None = None
        self._refresh: str | None = None

    def authorization(self) -> str:
        """The Authorization header value for the next call (a session is made if there is none)."""
        with self._lock:
            if self._access is None:
                self._create()
            return f"Bearer {self._access}"

    def renew(self, used: str) -> None:
        """After an `ExpiredToken` answer to a call made with `used`: renew, unless another
        worker already has."""
        with self._lock:
            if self._access is not None and used != f"Bearer {self._access}":
                return
            if self._refresh is not None and self._call(REFRESH, headers={"Authorization": f"Bearer {self._refresh}"},
                                                        expired_ok=True):
                return
            self._create()

    def _create(self) -> None:
        if not self._call(CREATE, body={"identifier": self.identifier, "password": self._password}):
            raise AuthError(f"the Bluesky service at {self.service_url} refused the app password of "
                            f"{self.identifier!r}: check bluesky.identifier and the app password")

    def _call(self, method: str, *, body: dict | None = None, headers: dict | None = None, expired_ok: bool = False) -> bool:
        """POST one session method; True once its tokens are kept, False when it was refused."""
        url = f"{self.service_url}/xrpc/{method}"
        try:
            response = self._http.post(url, json=body, headers=headers, timeout=self._timeout)
        except requests.RequestException as error:
            raise TransientError(f"{method} at {self.service_url} failed: {type(error).__name__}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(f"HTTP {response.status_code} from {url}")
        document = _document(response.content)
        if response.status_code in (400, 401):
            if expired_ok or document.get("error") in ("AuthenticationRequired", "AuthFactorTokenRequired", EXPIRED):
                return False
            raise AuthError(f"{method} at {self.service_url} answered HTTP {response.status_code}: "
                            f"{document.get('error')}: {document.get('message')}")
        access, refresh = document.get("accessJwt"), document.get("refreshJwt")
        if response.status_code != 200 or not isinstance(access, str) or not isinstance(refresh, str):
            raise AuthError(f"{method} at {self.service_url} answered HTTP {response.status_code} without a session")
        self._access, self._refresh = access, refresh
        add_secrets([access, refresh])
        return True


_SHARED: dict[tuple[str, str, str], BlueskySession] = {}
_SHARED_LOCK = threading.Lock()


def shared_session(service_url: str, identifier: str, password: str, *, timeout: float, user_agent: str) -> BlueskySession:
    """The process's one session of a login: every client and run shares it (a session per run
    would soon meet the service's limit on createSession, 300 a day on bsky.social)."""
    key = (service_url.rstrip("/"), identifier.lower(), hashlib.sha256(password.encode()).hexdigest())
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = BlueskySession(service_url, identifier, password, timeout=timeout, user_agent=user_agent)
        return _SHARED[key]


def is_expired(status: int, body: dict) -> bool:
    """The answer the service gives to a call made with an access token that has expired."""
    return status == 400 and body.get("error") == EXPIRED


def _document(raw: bytes) -> dict:
    try:
        document = json.loads(raw)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}
