"""X's rows from the schema decode agree with rows from `json.loads` dicts, on arbitrary lines.

The schema path (`xrows`, structs straight from msgspec) is the fast path; a line it does not fit
is decoded into dicts and converted. Differential: for any line (known fields, fields asked for but
in no column, new fields, values of other types, spacing, escapes and key orders a server may
send), both give the same posts, rows, unknown fields, extras, authors and links; and a few
columns are checked against a plain reading of the `json.loads` value.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sfm_archiver.export import flatten, xrows
from sfm_archiver.platforms.x_fields import TWEET_FIELDS, USER_FIELDS

from .test_known_fields import objects
from .test_unknown_fields import json_values

common_ids = st.sampled_from(["1", "1", "2", None])
ids = st.one_of(common_ids, common_ids, common_ids, json_values)  # mostly ids that join (or null, which joins nothing)


def fitting(level: flatten._Level) -> st.SearchStrategy[dict]:
    """Objects of a level's fields only, nested levels as objects or null (what the schema fits;
    `note_tweet` comes with the joins below)."""
    children = dict(level.children)
    keys = st.lists(st.sampled_from(sorted(level.allowed - {"note_tweet"})), unique=True, max_size=8)

    def value(key: str) -> st.SearchStrategy:
        return fitting(children[key]) | st.none() if key in children else json_values

    return keys.flatmap(lambda names: st.fixed_dictionaries({name: value(name) for name in names}))


def capture_lines(fit: bool) -> st.SearchStrategy[dict]:
    """Timeline pages and stream messages: of fields the schema fits (`fit`), or of any fields
    and values (new fields, other types, objects of any shape)."""
    def shaped(level: flatten._Level, asked: tuple[str, ...]) -> st.SearchStrategy[dict]:
        extra = st.dictionaries(st.sampled_from(sorted(set(asked) - level.allowed)), json_values, max_size=3)
        body = fitting(level) if fit else fitting(level) | objects(level)
        return st.tuples(body, extra, ids).map(lambda parts: {**parts[0], **parts[1], "id": parts[2]})

    entities = fitting(dict(flatten._POST_FIELDS.children)["entities"])
    notes = st.fixed_dictionaries({"text": st.text(max_size=5) | json_values},
                                  optional={"entities": entities if fit else entities | json_values})
    references = st.lists(st.fixed_dictionaries({"type": st.sampled_from(["quoted", "retweeted", "replied_to"]),
                                                 "id": ids}), max_size=2)
    posts = shaped(flatten._POST_FIELDS, TWEET_FIELDS).flatmap(lambda post: st.fixed_dictionaries(
        {"author_id": ids, "in_reply_to_user_id": ids, "referenced_tweets": references},
        optional={"note_tweet": notes}).map(lambda joins: {**post, **joins}))
    places = st.lists(st.fixed_dictionaries({"id": ids, "full_name": json_values}), max_size=2)
    includes = st.fixed_dictionaries({"users": st.lists(shaped(flatten._USER_FIELDS, USER_FIELDS), min_size=1, max_size=3),
                                      "tweets": st.lists(posts, max_size=2)}, optional={"places": places})
    pages = st.fixed_dictionaries({
        "data": st.lists(posts, max_size=3) | posts, "includes": includes,
        "__sfm": st.fixed_dictionaries({"captured_at": st.just("2026-12-01T00:00:00.000Z")}),
    }, optional={"matching_rules": json_values})
    return pages if fit else pages | st.dictionaries(st.sampled_from(["data", "includes", "__sfm"]), json_values)


# what a server may legally send: spacing, escapes and key order of its own
spellings = st.sampled_from([
    {"separators": (",", ":")}, {"separators": (", ", ": "), "ensure_ascii": True}, {"indent": None, "sort_keys": True},
])


def read(raw: bytes, referenced: bool) -> list[xrows.XLine]:
    with tempfile.TemporaryDirectory() as temp:
        path = Path(temp) / "c.jsonl.gz"
        path.write_bytes(gzip.compress(raw + b"\n"))
        problems: list = []
        found = [line for _no, line in xrows.read_x_lines(path, problems.append, None, referenced)]
        assert not problems
        return found


def facts(line: xrows.XLine) -> list:
    return [(slot, is_referenced, xrows.flatten_values(post, line, line.meta, "timeline", "c", is_referenced, None),
             xrows.unknown_of(post, line), xrows.extra_of(post, line), xrows.author_of(post, line),
             list(xrows.links_of(post)))
            for slot, post, is_referenced in line.posts]


@settings(max_examples=200, deadline=None)
@given(record=capture_lines(fit=True), spelling=spellings, referenced=st.booleans())
def test_lines_of_known_fields_take_the_schema_path(record, spelling, referenced):
    raw = json.dumps(record, **spelling).encode()
    assume(b"Infinity" not in raw)  # what json writes for an infinite float is not JSON: read the slow way
    [line] = read(raw, referenced)
    assert line.dicts is None
    agrees_with_json_loads(line, raw, referenced)


@settings(max_examples=200, deadline=None)
@given(record=capture_lines(fit=False), spelling=spellings, referenced=st.booleans())
def test_any_line_reads_as_json_loads_reads_it(record, spelling, referenced):
    raw = json.dumps(record, **spelling).encode()
    [line] = read(raw, referenced)
    agrees_with_json_loads(line, raw, referenced)


def agrees_with_json_loads(line: xrows.XLine, raw: bytes, referenced: bool) -> None:
    """The same facts as the line read from `json.loads` dicts; some columns as read from them here."""
    value = json.loads(raw)
    plain = xrows._dict_line(value, referenced)
    assert repr(facts(line)) == repr(facts(plain))  # repr: 1, 1.0 and True are equal, but not the same cell
    data = value.get("data")
    data = data if isinstance(data, list) else [data]
    includes = value["includes"] if isinstance(value.get("includes"), dict) else {}
    names = ("id", "text", "entities.hashtags", "author.username", "quoted_user_id", "public_metrics.like_count")
    columns = [flatten.COLUMN_NAMES.index(name) for name in names]
    for slot, post, is_referenced in line.posts:
        source = includes["tweets"][slot - flatten.REFERENCED_SLOT] if is_referenced else data[slot]
        note = source.get("note_tweet")
        long = isinstance(note, dict) and isinstance(note.get("text"), str)
        text = note["text"] if long else source.get("text")
        entities = note.get("entities") if long and isinstance(note.get("entities"), dict) else source.get("entities")
        hashtags = entities.get("hashtags") if isinstance(entities, dict) else None
        named = same_id(includes.get("users"), source.get("author_id"))
        refs = [ref for ref in source.get("referenced_tweets") or [] if ref.get("type") == "quoted"]
        quoted = same_id(includes.get("tweets"), refs[-1].get("id")) if refs else []
        metrics = source.get("public_metrics") if isinstance(source.get("public_metrics"), dict) else {}
        row = xrows.flatten_values(post, line, line.meta, "timeline", "c", is_referenced, None)
        assert repr([row[n] for n in columns]) == repr([
            source["id"], text, hashtags, named[-1].get("username") if named else None,
            quoted[-1].get("author_id") if quoted else None, metrics.get("like_count")])


def same_id(objects: object, wanted: object) -> list[dict]:
    """The objects of an `includes` list whose id is `wanted` (an id that is null, a list or an
    object joins nothing)."""
    if wanted is None or isinstance(wanted, (list, dict)) or not isinstance(objects, list):
        return []
    return [obj for obj in objects if isinstance(obj, dict) and not isinstance(obj.get("id"), (list, dict))
            and obj.get("id") == wanted]


def test_a_page_of_asked_for_fields_takes_the_schema_path():
    """A page with fields the harvester asks for (those outside the columns too) is read without
    dicts, and the fields outside the columns are reported; with a new field it is read by the
    schema that skips it, its fields found in the dicts; with a value of another shape, converted."""
    post = {"id": "1", "text": "t", "author_id": "9", "display_text_range": [0, 1], "public_metrics": {"like_count": 2}}
    user = {"id": "9", "username": "nine", "pinned_tweet_id": "1"}
    page = {"data": [post], "includes": {"users": [user]}, "__sfm": {"captured_at": "2026-12-01T00:00:00.000Z"}}
    [line] = read(json.dumps(page).encode(), False)
    assert line.dicts is None
    [(_slot, struct, _referenced)] = line.posts
    assert xrows.unknown_of(struct, line) == ["author.pinned_tweet_id", "display_text_range"]
    assert xrows.extra_of(struct, line) == {"author.pinned_tweet_id": "1", "display_text_range": [0, 1]}
    post["public_metrics"]["zz_new"] = 1
    [line] = read(json.dumps(page).encode(), False)
    [(_slot, struct, _referenced)] = line.posts
    assert line.dicts is not None and type(struct) is xrows.LENIENT_POST.type  # still read by a schema
    assert xrows.unknown_of(struct, line) == ["author.pinned_tweet_id", "display_text_range", "public_metrics.zz_new"]
    post["public_metrics"] = [1]  # an object's place holds a list: converted from the dicts
    [line] = read(json.dumps(page).encode(), False)
    [(_slot, struct, _referenced)] = line.posts
    assert type(struct) is xrows.POST.type and struct.public_metrics is None
    assert xrows.unknown_of(struct, line) == ["author.pinned_tweet_id", "display_text_range", "public_metrics"]
