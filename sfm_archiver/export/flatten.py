"""X's capture lines as dicts: their posts, each joined with its author, referenced posts, media
and place from the line's `includes` (as `twarc2 flatten` does), and the fields no column holds.

The raw line is never changed; unknown fields are reported (`unknown_fields`), never an error, so a
field X adds tomorrow breaks no export. The rows themselves are made from structs (`xrows.py`).
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterator

import msgspec

from sfm_archiver.export.columns import COLUMNS

COLUMN_NAMES = tuple(column.name for column in COLUMNS)

REFERENCED_SLOT = 2048  # slots of includes.tweets start here; data items count from 0
POST_KINDS = ("timeline", "stream")

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_encode = msgspec.json.Encoder().encode
# what msgspec refuses: a lone surrogate (from a `\ud800` escape), a key that is not text
_ENCODE_ERRORS = (UnicodeEncodeError, TypeError, OverflowError)
# Post fields consumed whole (lists, or objects read through includes) besides the column paths.
_CONSUMED = {"referenced_tweets", "note_tweet", "geo.coordinates", "attachments.media", "author"}
# Columns that are not fields of the post (joined from includes or the capture, or made here).
_DERIVED = {"in_reply_to_username", "retweeted_user_id", "retweeted_username", "quoted_user_id", "quoted_username",
            "geo.full_name", "matching_rules", "urls.final", "captured_at", "collection", "kind", "row_type"}


class _Level:
    """One nesting level of the known fields: keys held whole, and keys whose objects are read
    key by key (each with its own level)."""

    __slots__ = ("prefix", "leaves", "children", "allowed")

    def __init__(self, prefix: str, paths: list[list[str]]):
        self.prefix = prefix
        self.leaves = frozenset(parts[0] for parts in paths if len(parts) == 1)
        nested = sorted({parts[0] for parts in paths if len(parts) > 1} - self.leaves)
        self.children = tuple(
            (key, _Level(f"{prefix}{key}.", [parts[1:] for parts in paths if parts[0] == key and len(parts) > 1]))
            for key in nested)
        self.allowed = self.leaves | frozenset(nested)


def _known_fields(prefix: str) -> _Level:
    """The fields of posts (`prefix` "") or authors ("author.") that the columns hold."""
    paths = [column.name[len(prefix):] for column in COLUMNS
             if column.name.startswith(prefix) and (prefix or not column.name.startswith("author."))
             and column.name not in _DERIVED]
    if not prefix:
        paths += sorted(_CONSUMED)
    return _Level("", [path.split(".") for path in paths])


def _known_checker(level: _Level) -> Callable[[dict], bool]:
    """A function telling whether an object holds only fields of `level` (nearly every post does),
    compiled once with each nested level's test written out: what `unknown_fields` asks first."""
    namespace: dict[str, Any] = {"allowed": level.allowed}
    lines = ["def known(obj):", "    if not obj.keys() <= allowed:", "        return False"]
    for n, (key, child) in enumerate(level.children):
        if child.children:
            namespace[f"known{n}"] = _known_checker(child)
            test = f"known{n}(value)"
        else:
            namespace[f"allowed{n}"] = child.allowed
            test = f"value.keys() <= allowed{n}"
        lines += [f"    value = obj.get({key!r})",
                  f"    if value is not None and (value.__class__ is not dict or not {test}):",
                  "        return False"]
    exec("\n".join(lines + ["    return True"]) + "\n", namespace)  # noqa: S102 (made here from the columns)
    return namespace["known"]


_UNHASHABLE = (list, dict)  # JSON values that cannot be dict keys
_EMPTY: dict = {}  # what a missing object reads as; never written to
_POST_FIELDS = _known_fields("")
_USER_FIELDS = _known_fields("author.")
_post_known = _known_checker(_POST_FIELDS)
_user_known = _known_checker(_USER_FIELDS)


class Includes:
    """The `includes` of one capture line, indexed by id (built once per line)."""

    __slots__ = ("users", "tweets", "media", "places")

    def __init__(self, record: dict):
        includes = record.get("includes")
        if not isinstance(includes, dict):
            includes = {}
        self.users = _index(includes.get("users"), "id")
        self.tweets = _index(includes.get("tweets"), "id")
        self.media = _index(includes.get("media"), "media_key")
        self.places = _index(includes.get("places"), "id")


def _index(items: Any, key: str) -> dict:
    """Objects by their `key`; one without it (or null: what a missing reference reads as) joins nothing."""
    if not isinstance(items, list):
        return {}
    return {item[key]: item for item in items
            if isinstance(item, dict) and item.get(key) is not None and item[key].__class__ not in _UNHASHABLE}


def lookup(table: dict, key: Any) -> Any:
    """`table.get(key)`, also for a list or object where X sends an id: it joins nothing."""
    return None if key.__class__ in _UNHASHABLE else table.get(key)


def line_posts(record: dict, referenced: bool) -> Iterator[tuple[int, dict, bool]]:
    """(slot, post, is_referenced) of a timeline page or stream message; with `referenced`, also
    the posts of `includes.tweets` (slots from REFERENCED_SLOT)."""
    data = record.get("data")
    if isinstance(data, dict):
        data = [data]
    if isinstance(data, list):
        for slot, post in enumerate(data):
            if isinstance(post, dict) and isinstance(post.get("id"), str):
                yield slot, post, False
    if referenced:
        includes = record.get("includes")
        tweets = includes.get("tweets") if isinstance(includes, dict) else None
        if isinstance(tweets, list):
            for slot, post in enumerate(tweets, start=REFERENCED_SLOT):
                if isinstance(post, dict) and isinstance(post.get("id"), str):
                    yield slot, post, True


def nested_post(post: dict, includes: Includes, meta: dict, matching_rules: Any) -> dict:
    """The post as `twarc2 flatten` shapes it (author, referenced posts, media and place inline),
    plus the capture's `__sfm`: what the JSON lines format writes and twarc plugins read."""
    out = dict(post)
    author = lookup(includes.users, post.get("author_id"))
    if author is not None:
        out["author"] = author
    replied_user = lookup(includes.users, post.get("in_reply_to_user_id"))
    if replied_user is not None:
        out["in_reply_to_user"] = replied_user
    if isinstance(post.get("referenced_tweets"), list):
        inlined = []
        for ref in post["referenced_tweets"]:
            if isinstance(ref, dict):
                target = lookup(includes.tweets, ref.get("id"))
                if target is not None:
                    target = {**target, "author": lookup(includes.users, target.get("author_id"))}
                    ref = {**ref, **{k: v for k, v in target.items() if v is not None}}
            inlined.append(ref)
        out["referenced_tweets"] = inlined
    attachments = post.get("attachments")
    if isinstance(attachments, dict) and isinstance(attachments.get("media_keys"), list):
        out["attachments"] = {**attachments, "media": _media(includes, attachments["media_keys"]) or []}
    place_id = _dict(post.get("geo")).get("place_id")
    place = lookup(includes.places, place_id)
    if place is not None:
        out["geo"] = {**post["geo"], **place}
    if matching_rules is not None:
        out["matching_rules"] = matching_rules
    out["__sfm"] = meta
    return out


def unknown_fields(post: dict, author: dict | None) -> list[str]:
    """Paths of fields that no column holds (the export's README lists them with counts)."""
    if _post_known(post) and (not author or _user_known(author)):
        return []
    found: list[str] = []
    _unknown(post, _POST_FIELDS, found, "")
    if author:
        _unknown(author, _USER_FIELDS, found, "author.")
    return sorted(found) if len(found) > 1 else found


def extra_fields(post: dict, author: dict | None) -> dict | None:
    """The unknown fields with their values (the `extra` column of `--columns all`)."""
    paths = unknown_fields(post, author)
    if not paths:
        return None
    extra: dict[str, Any] = {}
    for path in paths:
        holder: Any = {"author": author or {}} if path.startswith("author.") else post
        for part in path.split("."):
            holder = holder.get(part) if isinstance(holder, dict) else None
        extra[path] = holder
    return extra


def _unknown(obj: dict, level: _Level, found: list[str], shown: str) -> None:
    if obj.keys() <= level.allowed:  # the common case: nothing to report at this level
        for key, child in level.children:
            value = obj.get(key)
            if value.__class__ is dict:
                if child.children or not value.keys() <= child.allowed:
                    _unknown(value, child, found, shown)
            elif value is not None:
                found.append(f"{shown}{level.prefix}{key}")
        return
    nested = dict(level.children)
    for key in obj.keys() - level.leaves:
        value = obj[key]
        if key in nested and value.__class__ is dict:
            _unknown(value, nested[key], found, shown)
        elif key not in nested or value is not None:
            found.append(f"{shown}{level.prefix}{key}")


def _references(refs: Any) -> dict[str, str]:
    """The ids of a post's `referenced_tweets` by type (replied_to, retweeted, quoted)."""
    if not isinstance(refs, list):
        return {}
    return {ref.get("type"): ref.get("id") for ref in refs
            if isinstance(ref, dict) and ref.get("type").__class__ not in _UNHASHABLE}


def _media(includes: Includes, keys: Any) -> list[dict] | None:
    """The media objects of `attachments.media_keys`, in their order (None when there are no keys)."""
    if not isinstance(keys, list):
        return None
    return [media for media in (lookup(includes.media, key) for key in keys) if media is not None]


def _dict(value: Any) -> dict:
    return value if value.__class__ is dict else _EMPTY


def to_json(value: Any) -> str:
    """Compact JSON text of a decoded value: `json.dumps(value, ensure_ascii=False,
    separators=(",", ":"))` but for the spelling of some floats (`1e16` for `1e+16`, `0.00001`
    for `1e-05`: the same numbers). msgspec writes it several times faster; what it refuses,
    and NaN or Infinity (which it would write as null), go to `json`."""
    try:
        text = _encode(value)
    except _ENCODE_ERRORS:
        return _dumps(value)
    if b"null" in text and value is not None:  # perhaps a NaN: rare enough to write exactly
        return _dumps(value)
    return text.decode()

