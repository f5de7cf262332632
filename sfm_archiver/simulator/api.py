"""Users and timeline endpoints: pure request → (status, body) over the `World`."""

from __future__ import annotations

import functools
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Any

from sfm_archiver.simulator import bodies, params
from sfm_archiver.simulator.fields import USER_EXPANSIONS, Post, Requested, includes
from sfm_archiver.simulator.params import InvalidRequest, Query
from sfm_archiver.simulator.tweets import REPLY, RETWEET, TweetFactory, id_ms
from sfm_archiver.simulator.world import Account, World

LOOKUP_PARAMS = ("expansions", "tweet.fields", "user.fields")
TIMELINE_PARAMS = ("end_time", "exclude", "expansions", "max_results", "media.fields", "pagination_token",
                   "place.fields", "poll.fields", "since_id", "start_time", "tweet.fields", "until_id",
                   "user.fields")
TIMELINE_REACH = 3200
RENDER_CACHE_SIZE = 20_000
TIMELINE_REACH_WITHOUT_REPLIES = 800

Result = tuple[int, dict[str, Any]]

# (method, pattern) -> endpoint name; path captures become keyword parameters.
ROUTES = (
    ("GET", re.compile(r"^/2/users/by/username/(?P<username>[^/]*)$"), "users_by_username"),
    ("GET", re.compile(r"^/2/users/by$"), "users_by"),
    ("GET", re.compile(r"^/2/users/(?P<id>[^/]*)/tweets$"), "user_tweets"),
    ("GET", re.compile(r"^/2/users/(?P<id>[^/]+)$"), "users_id"),
    ("GET", re.compile(r"^/2/users$"), "users"),
    ("GET", re.compile(r"^/2/tweets/search/stream$"), "search_stream"),
    ("GET", re.compile(r"^/2/tweets/sample/stream$"), "sample_stream"),
    ("GET", re.compile(r"^/2/tweets/search/stream/rules$"), "rules_get"),
    ("POST", re.compile(r"^/2/tweets/search/stream/rules$"), "rules_post"),
)


@dataclass
class ApiRequest:
    method: str
    path: str
    query: Query
    base_url: str
    token: str | None = None
    body: bytes = b""
    endpoint: str = ""
    path_params: dict[str, str] = field(default_factory=dict)


def route(method: str, path: str) -> tuple[str, dict[str, str]] | None | str:
    """(endpoint, path parameters); "method" if the path exists for another method; None."""
    other_method = False
    for route_method, pattern, endpoint in ROUTES:
        match = pattern.match(path)
        if match:
            if route_method == method:
                return endpoint, match.groupdict()
            other_method = True
    return "method" if other_method else None


class UsersApi:
    """The four user lookups and the user timeline."""

    def __init__(self, world: World, factory: TweetFactory):
        self.world = world
        self.factory = factory
        # Harvesters re-read the newest pages again and again; rendering is the costly part.
        self._tweet = functools.lru_cache(maxsize=RENDER_CACHE_SIZE)(factory.tweet)

    def handle(self, request: ApiRequest) -> Result:
        handler = getattr(self, request.endpoint)
        return handler(request)

    # lookups ---------------------------------------------------------------------------------

    def users_by_username(self, request: ApiRequest) -> Result:
        params.check_names(request.query, LOOKUP_PARAMS)
        username = params.check_username("username", request.path_params["username"])
        return self._lookup(request, [username], "username", single=True)

    def users_by(self, request: ApiRequest) -> Result:
        params.check_names(request.query, ("usernames", *LOOKUP_PARAMS))
        return self._lookup(request, params.usernames(request.query, "usernames"), "usernames", single=False)

    def users_id(self, request: ApiRequest) -> Result:
        params.check_names(request.query, LOOKUP_PARAMS)
        user_id = params.check_id("id", request.path_params["id"])
        return self._lookup(request, [user_id], "id", single=True)

    def users(self, request: ApiRequest) -> Result:
        params.check_names(request.query, ("ids", *LOOKUP_PARAMS))
        return self._lookup(request, params.ids(request.query, "ids"), "ids", single=False)

    def _lookup(self, request: ApiRequest, values: list[str], parameter: str, single: bool) -> Result:
        query = request.query
        requested = Requested.parse(query, USER_EXPANSIONS)
        by_username = parameter.startswith("username")
        users, errors, pinned = [], [], []
        for value in values:
            account = self.world.by_username(value) if by_username else self.world.by_id(value)
            if account is None or account.deactivated:
                errors.append(bodies.user_not_found(value, parameter))
            elif account.suspended:
                errors.append(bodies.user_suspended(value, parameter))
            else:
                view = self.world.view(account)
                users.append(self.factory.user(view, requested.user, request.base_url))
                if "pinned_tweet_id" in requested.expansions and view.pinned_tweet_id:
                    pinned.append(self.factory.tweet(int(view.pinned_tweet_id), account.id,
                                                     self.factory.kind_of(int(view.pinned_tweet_id)),
                                                     requested.tweet, request.base_url))
        body: dict[str, Any] = {}
        if users:
            body["data"] = users[0] if single else users
        if pinned:
            body["includes"] = {"tweets": pinned}
        if errors:
            body["errors"] = errors
        return 200, body

    # timeline --------------------------------------------------------------------------------

    def user_tweets(self, request: ApiRequest) -> Result:
        query = request.query
        params.check_names(query, TIMELINE_PARAMS)
        user_id = params.check_id("id", request.path_params["id"])
        page = TimelinePage.parse(query)
        account = self.world.by_id(user_id)
        if account is None or account.deactivated:
            return 200, {"errors": [bodies.user_not_found(user_id, "id")]}
        if account.suspended:
            return 200, {"errors": [bodies.user_suspended(user_id, "id")]}
        if account.protected:
            return 200, {"errors": [bodies.user_protected(user_id)]}
        return 200, self._timeline(request, account, page)

    def _timeline(self, request: ApiRequest, account: Account, page: TimelinePage) -> dict[str, Any]:
        ids, kinds = self.world.posts(account)
        selected = page.select(ids, kinds)
        start, end = page.cut([ids[index] for index in selected])
        if start == end:
            return {"meta": {"result_count": 0}}
        chosen = selected[start:end]
        newest_first = [ids[index] for index in reversed(chosen)]
        kind_of = {ids[index]: kinds[index] for index in chosen}
        requested = page.requested
        tweets = [self._tweet(tweet_id, account.id, kind_of[tweet_id], requested.tweet, request.base_url)
                  for tweet_id in newest_first]
        body: dict[str, Any] = {"data": tweets}
        author = self.world.view(account)
        found = includes(self.factory, [Post(tweet_id, kind_of[tweet_id], author) for tweet_id in newest_first],
                         requested, request.base_url)
        if found:
            body["includes"] = found
        meta: dict[str, Any] = {"result_count": len(tweets), "newest_id": str(newest_first[0]),
                                "oldest_id": str(newest_first[-1])}
        if start > 0:
            meta["next_token"] = encode_token(newest_first[-1], older=True)
        if page.token is not None:
            meta["previous_token"] = encode_token(newest_first[0], older=False)
        body["meta"] = meta
        return body


@dataclass
class TimelinePage:
    """The validated parameters of one timeline request and the selection they make."""

    max_results: int
    token: tuple[int, bool] | None
    since_id: int | None
    until_id: int | None
    start_ms: int | None
    end_ms: int | None
    exclude: set[str]
    requested: Requested

    @classmethod
    def parse(cls, query: Query) -> TimelinePage:
        raw_token = params.first(query, "pagination_token")
        return cls(
            max_results=params.integer(query, "max_results", 5, 100, 10),
            token=decode_token(raw_token) if raw_token is not None else None,
            since_id=params.optional_id(query, "since_id"),
            until_id=params.optional_id(query, "until_id"),
            start_ms=params.timestamp_ms(query, "start_time"),
            end_ms=params.timestamp_ms(query, "end_time"),
            exclude=set(params.csv(query, "exclude", ("replies", "retweets"))),
            requested=Requested.parse(query),
        )

    def select(self, ids: Any, kinds: bytearray) -> list[int]:
        """Indices of reachable posts (ascending) passing since/until, time bounds and exclusions."""
        reach = TIMELINE_REACH_WITHOUT_REPLIES if "replies" in self.exclude else TIMELINE_REACH
        low, high = max(0, len(ids) - reach), len(ids)
        if self.since_id is not None:
            low = max(low, bisect_right(ids, self.since_id))
        if self.until_id is not None:
            high = min(high, bisect_left(ids, self.until_id))
        excluded = {REPLY} if "replies" in self.exclude else set()
        if "retweets" in self.exclude:
            excluded.add(RETWEET)
        return [index for index in range(low, high)
                if kinds[index] not in excluded
                and (self.start_ms is None or id_ms(ids[index]) >= self.start_ms)
                and (self.end_ms is None or id_ms(ids[index]) < self.end_ms)]

    def cut(self, selected: list[int]) -> tuple[int, int]:
        """Bounds of the page within the selected ids (ascending); older posts remain if start > 0."""
        if self.token is None or self.token[1]:
            end = len(selected) if self.token is None else bisect_left(selected, self.token[0])
            start = max(0, end - self.max_results)
        else:
            start = bisect_right(selected, self.token[0])
            end = min(len(selected), start + self.max_results)
        return start, end


_TOKEN_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def encode_token(tweet_id: int, older: bool) -> str:
    """Opaque pagination token: the boundary id and the direction, in base 36."""
    value = tweet_id * 2 + (1 if older else 0)
    digits = []
    while value:
        value, rest = divmod(value, 36)
        digits.append(_TOKEN_DIGITS[rest])
    return "".join(reversed(digits)) or "0"


def decode_token(token: str) -> tuple[int, bool]:
    if not token or len(token) > 20 or any(char not in _TOKEN_DIGITS for char in token):
        raise InvalidRequest("pagination_token", [token],
                             f"The `pagination_token` query parameter value [{token}] is not valid")
    value = int(token, 36)
    return value // 2, bool(value % 2)
