"""The AppView XRPC methods the simulator serves, as (status, JSON document) for a query.

Errors are what the real service sends: HTTP 400 with {"error", "message"}; parameter
problems in the wording of the XRPC server's lexicon validation.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Sequence

from sfm_archiver.simulator.bluesky import views
from sfm_archiver.simulator.bluesky.ids import tid, tid_micros
from sfm_archiver.simulator.bluesky.scenario import HANDLE
from sfm_archiver.simulator.bluesky.world import ACTIVE, DEACTIVATED, TAKENDOWN, Account, Item, World

DID = re.compile(r"^did:[a-z]+:[a-zA-Z0-9._:%-]{1,2048}$")
FILTERS = ("posts_with_replies", "posts_no_replies", "posts_with_media", "posts_and_author_threads")
MAX_PROFILES = 25
Answer = tuple[int, dict[str, Any]]
Query = Mapping[str, Sequence[str]]


class XrpcError(Exception):
    """An XRPC error answer: HTTP status, `error` name and `message`."""

    def __init__(self, status: int, error: str, message: str):
        super().__init__(f"{status} {error}: {message}")
        self.status, self.error, self.message = status, error, message

    def document(self) -> dict[str, str]:
        return {"error": self.error, "message": self.message}


def invalid(message: str) -> XrpcError:
    return XrpcError(400, "InvalidRequest", message)


class AppView:
    """Answers app.bsky.* and com.atproto.identity.* queries from the world."""

    def __init__(self, world: World):
        self._world = world
        self._methods: dict[str, Callable[[Query], dict[str, Any]]] = {
            "app.bsky.feed.getAuthorFeed": self.get_author_feed,
            "app.bsky.actor.getProfile": self.get_profile,
            "app.bsky.actor.getProfiles": self.get_profiles,
            "com.atproto.identity.resolveHandle": self.resolve_handle,
        }

    def answer(self, http_method: str, nsid: str, query: Query) -> Answer:
        method = self._methods.get(nsid)
        try:
            if method is None:
                raise XrpcError(501, "MethodNotImplemented", "Method Not Implemented")
            if http_method not in ("GET", "HEAD"):
                raise invalid(f"Incorrect HTTP method ({http_method}) expected GET")
            return 200, method(query)
        except XrpcError as error:
            return error.status, error.document()

    # methods ---------------------------------------------------------------------------------

    def get_author_feed(self, query: Query) -> dict[str, Any]:
        actor = _actor(query, "actor")
        limit = _limit(query)
        wanted = _one(query, "filter") or "posts_with_replies"  # known values only: others read as the default
        cursor = _one(query, "cursor")
        before = _cursor_key(cursor) if cursor else None
        with self._world.lock:
            account = self._viewable(actor)
            keep = _filter(wanted if wanted in FILTERS else "posts_with_replies", account)
            page: list[Item] = []
            more = False
            for item in self._world.feed(account, before):
                if keep(item):
                    if len(page) == limit:
                        more = True
                        break
                    page.append(item)
            document: dict[str, Any] = {}
            if more:
                document["cursor"] = tid(page[-1].key)
            document["feed"] = [views.feed_view_post(item, account) for item in page]
            return document

    def get_profile(self, query: Query) -> dict[str, Any]:
        actor = _actor(query, "actor")
        with self._world.lock:
            return views.profile_detailed(self._viewable(actor))

    def get_profiles(self, query: Query) -> dict[str, Any]:
        actors = list(query.get("actors", ()))
        if not actors:
            raise invalid('Error: Params must have the property "actors"')
        if len(actors) > MAX_PROFILES:
            raise invalid(f"Error: actors must not have more than {MAX_PROFILES} elements")
        for index, actor in enumerate(actors):
            _check_actor(actor, f"actors/{index}")
        with self._world.lock:
            found = [self._world.find(actor) for actor in actors]
            return {"profiles": [views.profile_detailed(account) for account in found
                                 if account is not None and account.status == ACTIVE]}

    def resolve_handle(self, query: Query) -> dict[str, Any]:
        handle = _one(query, "handle")
        if handle is None:
            raise invalid('Error: Params must have the property "handle"')
        if not HANDLE.match(handle.lower()):
            raise invalid("Error: handle must be a valid handle")
        account = self._world.find(handle)
        if account is None:
            raise invalid("Unable to resolve handle")
        return {"did": account.did}

    # helpers ---------------------------------------------------------------------------------

    def _viewable(self, actor: str) -> Account:
        """The account, or the error AppView gives for an unknown, suspended, deactivated or deleted one."""
        account = self._world.find(actor)
        if account is None or account.status not in (ACTIVE, TAKENDOWN, DEACTIVATED):
            raise invalid("Profile not found")
        if account.status == TAKENDOWN:
            raise XrpcError(400, "AccountTakedown", "Account has been suspended")
        if account.status == DEACTIVATED:
            raise XrpcError(400, "AccountDeactivated", "Account is deactivated")
        return account


def _filter(name: str, account: Account) -> Callable[[Item], bool]:
    def is_reply(item: Item) -> bool:
        return item.repost_uri is None and item.post.parent is not None

    if name == "posts_no_replies":
        return lambda item: not is_reply(item)
    if name == "posts_with_media":
        return lambda item: item.repost_uri is None and "images" in item.post.record.get("embed", {}).get("$type", "")
    if name == "posts_and_author_threads":
        return lambda item: not is_reply(item) or (item.post.root or item.post.parent).author.did == account.did
    return lambda item: True


def _one(query: Query, name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _actor(query: Query, name: str) -> str:
    actor = _one(query, name)
    if actor is None:
        raise invalid(f'Error: Params must have the property "{name}"')
    _check_actor(actor, name)
    return actor


def _check_actor(actor: str, where: str) -> None:
    if not (DID.match(actor) or HANDLE.match(actor.lower())):
        raise invalid(f"Error: {where} must be a valid did or a handle")


def _limit(query: Query) -> int:
    raw = _one(query, "limit")
    if raw is None:
        return 50
    if not re.fullmatch(r"-?\d+", raw.strip()):
        raise invalid("Error: limit must be an integer")
    limit = int(raw)
    if limit > 100:
        raise invalid("Error: limit can not be greater than 100")
    if limit < 1:
        raise invalid("Error: limit can not be less than 1")
    return limit


def _cursor_key(cursor: str) -> int:
    if len(cursor) != 13 or not re.fullmatch(r"[2-7a-z]+", cursor):
        raise invalid("Malformed cursor")
    return tid_micros(cursor)
