"""The network seam: send every request of a requests.Session to one base URL.

tweepy hard-codes https://api.twitter.com and takes no host argument, but uses its public
`session` for every call (streams and rules included). Mounting `RedirectAdapter` there
points tweepy at `x.api_base_url` (the simulator in tests), and since it replaces every other
adapter and ignores proxies, nothing sent through the session can reach another host.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import tweepy
from requests.adapters import HTTPAdapter

from sfm_archiver.errors import UsageError


class RedirectAdapter(HTTPAdapter):
    """Rewrites scheme, host and port of each request to `base_url`, keeping path and query."""

    def __init__(self, base_url: str, **kwargs: Any):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise UsageError(f"not a usable API base URL: {base_url!r} (expected e.g. http://127.0.0.1:8000)")
        self.base_url = base_url
        self._scheme, self._netloc, self._prefix = parts.scheme, parts.netloc, parts.path.rstrip("/")
        super().__init__(**kwargs)

    def rewrite(self, url: str) -> str:
        parts = urlsplit(url)
        return urlunsplit((self._scheme, self._netloc, self._prefix + parts.path, parts.query, ""))

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        request.url = self.rewrite(request.url or "")
        kwargs["proxies"] = {}
        return super().send(request, **kwargs)


def redirect_session(session: requests.Session, base_url: str) -> requests.Session:
    """Make `session` send everything to `base_url` (every other adapter and env proxies removed)."""
    adapter = RedirectAdapter(base_url, pool_maxsize=32)
    session.adapters.clear()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.trust_env = False
    return session


def make_client(bearer_token: str, base_url: str, **kwargs: Any) -> tweepy.Client:
    """A tweepy Client whose requests go to `base_url`."""
    client = tweepy.Client(bearer_token, **kwargs)
    redirect_session(client.session, base_url)
    return client


def make_streaming_client(bearer_token: str, base_url: str, **kwargs: Any) -> tweepy.StreamingClient:
    """A tweepy StreamingClient (streams and rules) whose requests go to `base_url`."""
    client = tweepy.StreamingClient(bearer_token, **kwargs)
    redirect_session(client.session, base_url)
    return client
