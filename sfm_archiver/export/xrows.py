"""X's rows (CSV, TSV, XLSX, Parquet): capture lines decoded against a schema made from the columns.

msgspec decodes a line straight into structs that hold only what the columns read: one struct
per level of the known-fields tree (`flatten._POST_FIELDS`, `_USER_FIELDS`), every value `Any`,
and of the referenced posts only their ids and authors. That is faster than decoding every field
into dicts, and attribute access makes rows faster still. The fields the harvester asks X for that
no column holds (`x_fields`) are in the schema too, so a post carrying them is read the same way
and they are reported. Any other field, or an object where the schema has none, fails the decode
(`forbid_unknown_fields`): that line is decoded into dicts, where its unknown fields are found,
and read again by the same schema skipping them (no slower than dicts alone), or, when a value
has another shape than the schema's, converted from the dicts to the same structs; so one
function (`flatten_values`) makes every row.
tests/export/test_xrows.py checks both ways against each other and against `json.loads`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import msgspec

from sfm_archiver.export.flatten import (
    _POST_FIELDS,
    _UNHASHABLE,
    _USER_FIELDS,
    COLUMN_NAMES,
    REFERENCED_SLOT,
    Includes,
    _index,
    _Level,
    _media,
    _references,
    extra_fields,
    line_posts,
    lookup,
    unknown_fields,
)
from sfm_archiver.export.lines import object_of, read_lines
from sfm_archiver.platforms.x_fields import TWEET_FIELDS, USER_FIELDS
from sfm_archiver.platforms.x_platform import X
from sfm_archiver.storage.reader import Opener, ProblemSink

UNSET = msgspec.UNSET
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)


class _Shape:
    """The struct of one level of known fields (leaves `Any`, nested levels their own structs,
    `extras` fields asked for but in no column), and how to make one from a decoded dict."""

    def __init__(self, name: str, leaves: list[str], children: list[tuple[str, _Shape]], extras: tuple[str, ...] = (),
                 forbid: bool = True):
        self.leaves, self.children, self.extras = tuple(leaves), tuple(children), extras
        fields: list[tuple[str, Any, Any]] = [(key, Any, None) for key in leaves]
        fields += [(key, child.type | None, None) for key, child in children]
        fields += [(key, Any, UNSET) for key in extras]
        self.type = msgspec.defstruct(name, fields, forbid_unknown_fields=forbid, gc=False)
        self.empty = self.type()  # what an absent object reads as; never written to
        unset = " and ".join(f"obj.{key} is UNSET" for key in extras) or "True"
        # whether a struct carries none of the extras (nearly every one: asked first, written out)
        self.bare = eval(f"lambda obj: {unset}", {"UNSET": UNSET})  # noqa: S307 (made here from field names)

    def convert(self, obj: dict) -> Any:
        """The struct of a dict: its known fields (a nested level that is no object: None). The
        extras are left unset: a converted line's unknown fields are read from its dicts."""
        values = {key: obj.get(key) for key in self.leaves}
        for key, child in self.children:
            value = obj.get(key)
            values[key] = child.convert(value) if value.__class__ is dict else None
        return self.type(**values)


def _shape(name: str, level: _Level, forbid: bool, extras: tuple[str, ...] = (),
           whole: frozenset[str] = frozenset(), more: tuple[tuple[str, _Shape], ...] = ()) -> _Shape:
    """The shape of a level; `whole` leaves are replaced by the `more` shapes."""
    children = [(key, _shape(f"{name}_{key}", child, forbid)) for key, child in level.children]
    return _Shape(name, sorted(level.leaves - whole), children + list(more), extras, forbid)


def _post_shape(forbid: bool) -> _Shape:
    """Posts: their level of the tree, with `note_tweet` (a long post's text and entities, read
    whole by the flattening) as a struct of its own sharing the post's entities."""
    entities = dict(_POST_FIELDS.children)["entities"]
    note = _Shape("NoteTweet", ["text"], [("entities", _shape("NoteTweet_entities", entities, forbid))], (), forbid)
    extras = tuple(sorted(set(TWEET_FIELDS) - _POST_FIELDS.allowed))
    return _shape("Post", _POST_FIELDS, forbid, extras, frozenset({"note_tweet"}), (("note_tweet", note),))


POST = _post_shape(forbid=True)
USER = _shape("User", _USER_FIELDS, True, tuple(sorted(set(USER_FIELDS) - _USER_FIELDS.allowed)))
REF = _Shape("Ref", ["author_id", "id"], [], forbid=False)  # a referenced post that is not a row
# the same structs, fields outside them skipped: a line with a new field is still read this way
LENIENT_POST = _post_shape(forbid=False)
LENIENT_USER = _shape("User", _USER_FIELDS, False, USER.extras)
_EMPTY = {key: child.empty for key, child in POST.children} | {f"author.{key}": child.empty
                                                               for key, child in USER.children}


def _line_decoder(post: _Shape, user: _Shape, tweet: _Shape) -> Any:
    includes = msgspec.defstruct("LineIncludes", [
        ("users", list[user.type] | None, None), ("tweets", list[tweet.type] | None, None),
        ("media", Any, None), ("places", Any, None)], gc=False)
    line = msgspec.defstruct("Line", [
        ("data", list[post.type] | post.type | None, None), ("includes", includes | None, None),
        ("sfm", Any, None), ("matching_rules", Any, None)], rename={"sfm": "__sfm"}, gc=False)
    return msgspec.json.Decoder(line).decode


# by whether referenced posts are rows
_DECODE = {False: _line_decoder(POST, USER, REF), True: _line_decoder(POST, USER, POST)}
_DECODE_LENIENT = {False: _line_decoder(LENIENT_POST, LENIENT_USER, REF),
                   True: _line_decoder(LENIENT_POST, LENIENT_USER, LENIENT_POST)}


class XLine:
    """A capture line for the row formats: its posts as structs, `includes` indexed by id."""

    __slots__ = ("posts", "users", "tweets", "media", "places", "meta", "matching_rules", "dicts")

    def __init__(self, posts: list, users: dict, tweets: dict, media: dict, places: dict, meta: Any,
                 matching_rules: Any, dicts: dict[int, tuple[dict, dict | None]] | None):
        self.posts, self.users, self.tweets, self.media, self.places = posts, users, tweets, media, places
        self.meta = meta if meta.__class__ is dict else {}
        self.matching_rules = matching_rules
        self.dicts = dicts  # a line that did not fit the schema: each post's dict and its author's


def read_x_lines(path: Path, on_problem: ProblemSink, opener: Opener | None, referenced: bool) -> Iterator[tuple[int, XLine]]:
    """(line number, line) of every line of a capture file that is a JSON object (another
    platform's too: its `meta` says whose); other lines are reported, as `read_records` does."""
    decode, lenient = _DECODE[referenced], _DECODE_LENIENT[referenced]
    for line_no, raw in read_lines(path, on_problem, opener):
        try:
            line = decode(raw)
        except _DECODE_ERRORS:
            record = object_of(raw, path, line_no, on_problem)
            if record is not None:
                yield line_no, _fields_outside(raw, record, lenient, referenced)
            continue
        yield line_no, _typed_line(line, referenced)


def _fields_outside(raw: bytes, record: dict, lenient: Any, referenced: bool) -> XLine:
    """A line with fields no schema holds (their paths are read from its dicts): read by the
    schema skipping them, or, where a value has another shape than the schema's, converted."""
    try:
        line = _typed_line(lenient(raw), referenced)
    except _DECODE_ERRORS:
        return _dict_line(record, referenced)
    users = Includes(record).users
    line.dicts = {id(struct): (post, lookup(users, post.get("author_id")))
                  for (_slot, struct, _ref), (_slot2, post, _ref2) in zip(line.posts, line_posts(record, referenced),
                                                                          strict=True)}
    return line


def _typed_line(line: Any, referenced: bool) -> XLine:
    data = line.data
    items = () if data is None else data if data.__class__ is list else (data,)
    posts = [(slot, post, False) for slot, post in enumerate(items) if post.id.__class__ is str]
    includes = line.includes
    if includes is None:
        return XLine(posts, {}, {}, {}, {}, line.sfm, line.matching_rules, None)
    tweets = includes.tweets
    if referenced and tweets:
        posts += [(slot, post, True) for slot, post in enumerate(tweets, start=REFERENCED_SLOT)
                  if post.id.__class__ is str]
    return XLine(posts, _by_id(includes.users), _by_id(tweets), _index(includes.media, "media_key"),
                 _index(includes.places, "id"), line.sfm, line.matching_rules, None)


def _by_id(items: list | None) -> dict:
    """Structs by id (as `flatten._index` indexes dicts: a null or unhashable id joins nothing)."""
    if not items:
        return {}
    return {item.id: item for item in items if item.id is not None and item.id.__class__ not in _UNHASHABLE}


def _dict_line(record: dict, referenced: bool) -> XLine:
    """A line that does not fit the schema, from its dicts (which keep what no column holds)."""
    includes = Includes(record)
    posts, dicts = [], {}
    for slot, post, is_referenced in line_posts(record, referenced):
        struct = POST.convert(post)
        posts.append((slot, struct, is_referenced))
        dicts[id(struct)] = (post, lookup(includes.users, post.get("author_id")))
    tweet = POST if referenced else REF
    users = {key: USER.convert(user) for key, user in includes.users.items()}
    tweets = {key: tweet.convert(post) for key, post in includes.tweets.items()}
    return XLine(posts, users, tweets, includes.media, includes.places, record.get("__sfm"),
                 record.get("matching_rules"), dicts)


# -- from structs to rows ------------------------------------------------------------------------

_NO_USER = USER.empty
_NO_REF = REF.empty
_NO_METRICS = _EMPTY["public_metrics"]
_NO_EDITS = _EMPTY["edit_controls"]
_NO_ENTITIES = _EMPTY["entities"]
_NO_ATTACHMENTS = _EMPTY["attachments"]
_NO_GEO = _EMPTY["geo"]
_NO_WITHHELD = _EMPTY["withheld"]
_NO_USER_METRICS = _EMPTY["author.public_metrics"]
_NOTHING: dict = {}


def joined(table: dict, key: Any) -> Any:
    """The struct `key` names in `table`, or None (a list or object where X sends an id joins nothing)."""
    return table.get(key) if key.__class__ is str else lookup(table, key)


def full_text(post: Any) -> tuple[Any, Any]:
    """The text and entities of a post: a long post's `note_tweet` when it has one."""
    note = post.note_tweet
    if note is not None and note.text.__class__ is str:
        return note.text, note.entities or post.entities or _NO_ENTITIES
    return post.text, post.entities or _NO_ENTITIES


def flatten_values(post: Any, line: XLine, meta: dict, kind: str, collection: str, referenced: bool,
                   finals: list[str] | None) -> tuple:
    """One row: the values of COLUMNS in their order (missing values are None); a tuple, since
    the export builds one per post and reads it by position."""
    users = line.users
    author = joined(users, post.author_id) or _NO_USER
    refs = _NOTHING if post.referenced_tweets is None else _references(post.referenced_tweets)
    text, entities = full_text(post)
    metrics = post.public_metrics or _NO_METRICS
    edits = post.edit_controls or _NO_EDITS
    attachments = post.attachments or _NO_ATTACHMENTS
    geo = post.geo or _NO_GEO
    withheld = post.withheld or _NO_WITHHELD
    place = _NOTHING if geo.place_id is None else lookup(line.places, geo.place_id) or _NOTHING
    author_metrics = author.public_metrics or _NO_USER_METRICS
    replied_to = post.in_reply_to_user_id
    replied_user = _NO_USER if replied_to is None else joined(users, replied_to) or _NO_USER
    retweeted = (joined(line.tweets, refs.get("retweeted")) or _NO_REF) if refs else _NO_REF
    quoted = (joined(line.tweets, refs.get("quoted")) or _NO_REF) if refs else _NO_REF
    retweeted_user = _NO_USER if retweeted.author_id is None else joined(users, retweeted.author_id) or _NO_USER
    quoted_user = _NO_USER if quoted.author_id is None else joined(users, quoted.author_id) or _NO_USER
    media_keys = attachments.media_keys
    media = None if media_keys is None else _media(line, media_keys)
    return (
        post.id,                                                        # id
        post.conversation_id,                                           # conversation_id
        refs.get("replied_to"),                                         # referenced_tweets.replied_to.id
        refs.get("retweeted"),                                          # referenced_tweets.retweeted.id
        refs.get("quoted"),                                             # referenced_tweets.quoted.id
        post.author_id,                                                 # author_id
        replied_to,                                                     # in_reply_to_user_id
        replied_user.username,                                          # in_reply_to_username
        retweeted.author_id,                                            # retweeted_user_id
        retweeted_user.username,                                        # retweeted_username
        quoted.author_id,                                               # quoted_user_id
        quoted_user.username,                                           # quoted_username
        post.created_at,                                                # created_at
        text,                                                           # text
        post.lang,                                                      # lang
        post.source,                                                    # source
        metrics.impression_count,                                       # public_metrics.impression_count
        metrics.reply_count,                                            # public_metrics.reply_count
        metrics.retweet_count,                                          # public_metrics.retweet_count
        metrics.quote_count,                                            # public_metrics.quote_count
        metrics.like_count,                                             # public_metrics.like_count
        metrics.bookmark_count,                                         # public_metrics.bookmark_count
        post.reply_settings,                                            # reply_settings
        post.possibly_sensitive,                                        # possibly_sensitive
        post.edit_history_tweet_ids,                                    # edit_history_tweet_ids
        edits.edits_remaining,                                          # edit_controls.edits_remaining
        edits.editable_until,                                           # edit_controls.editable_until
        edits.is_edit_eligible,                                         # edit_controls.is_edit_eligible
        entities.hashtags,                                              # entities.hashtags
        entities.cashtags,                                              # entities.cashtags
        entities.mentions,                                              # entities.mentions
        entities.urls,                                                  # entities.urls
        entities.annotations,                                           # entities.annotations
        post.context_annotations,                                       # context_annotations
        media_keys,                                                     # attachments.media_keys
        media or None,                                                  # attachments.media
        attachments.poll_ids,                                           # attachments.poll_ids
        geo.place_id,                                                   # geo.place_id
        place.get("full_name"),                                         # geo.full_name
        withheld.country_codes,                                         # withheld.country_codes
        author.id,                                                      # author.id
        author.username,                                                # author.username
        author.name,                                                    # author.name
        author.created_at,                                              # author.created_at
        author.description,                                             # author.description
        author.location,                                                # author.location
        author.url,                                                     # author.url
        author.profile_image_url,                                       # author.profile_image_url
        author.verified,                                                # author.verified
        author.verified_type,                                           # author.verified_type
        author.protected,                                               # author.protected
        author_metrics.followers_count,                                 # author.public_metrics.followers_count
        author_metrics.following_count,                                 # author.public_metrics.following_count
        author_metrics.tweet_count,                                     # author.public_metrics.tweet_count
        author_metrics.listed_count,                                    # author.public_metrics.listed_count
        author_metrics.like_count,                                      # author.public_metrics.like_count
        line.matching_rules,                                            # matching_rules
        finals,                                                         # urls.final
        meta.get("captured_at"),                                        # captured_at
        collection,                                                     # collection
        kind,                                                           # kind
        "referenced" if referenced else "post",                         # row_type
    )


def row_by_name(record: dict, kind: str = "timeline", collection: str = "") -> list[dict[str, Any]]:
    """The rows of a decoded capture line by column name (for readers of single lines)."""
    line = _dict_line(record, False)
    return [dict(zip(COLUMN_NAMES, flatten_values(post, line, line.meta, kind, collection, False, None), strict=True))
            for _slot, post, _referenced in line.posts]


def author_of(post: Any, line: XLine) -> tuple[Any, Any]:
    """(author id, username) of a post, for the account filter and the README's counts."""
    return post.author_id, (joined(line.users, post.author_id) or _NO_USER).username


def unknown_of(post: Any, line: XLine) -> list[str]:
    """Paths of a post's fields that no column holds (as `flatten.unknown_fields` finds them)."""
    if line.dicts is not None:
        return unknown_fields(*line.dicts[id(post)])
    author = joined(line.users, post.author_id)
    if POST.bare(post) and (author is None or USER.bare(author)):
        return []
    found = [key for key in POST.extras if getattr(post, key) is not UNSET]
    if author is not None:
        found += [f"author.{key}" for key in USER.extras if getattr(author, key) is not UNSET]
    return sorted(found) if len(found) > 1 else found


def extra_of(post: Any, line: XLine) -> dict | None:
    """The unknown fields with their values (the `extra` column of `--columns all`)."""
    if line.dicts is not None:
        return extra_fields(*line.dicts[id(post)])
    author = joined(line.users, post.author_id)
    extra = {path: getattr(author, path[len("author."):]) if path.startswith("author.") else getattr(post, path)
             for path in unknown_of(post, line)}
    return extra or None


def links_of(post: Any) -> Iterator[str]:
    """The post's links (`X.post_links`), read from its structs."""
    def urls(entities: Any) -> dict | None:
        return None if entities is None else {"urls": entities.urls}

    note = post.note_tweet
    return X.post_links({"entities": urls(post.entities),
                         "note_tweet": None if note is None else {"entities": urls(note.entities)}})
