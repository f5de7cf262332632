"""The compiled test for objects holding only known fields agrees with the field-by-field search for
unknown ones, on posts and authors of known, new and retyped fields (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sfm_archiver.export import flatten

from .test_unknown_fields import json_values


def objects(level: flatten._Level) -> st.SearchStrategy[dict]:
    """Objects of a level's fields, now and then a new one; nested levels' objects or any value."""
    children = dict(level.children)
    keys = st.lists(st.sampled_from(sorted(level.allowed) + ["zz_new"]), unique=True, max_size=8)

    def value(key: str) -> st.SearchStrategy:
        return objects(children[key]) | json_values if key in children else json_values

    return keys.flatmap(lambda names: st.fixed_dictionaries({name: value(name) for name in names}))


def searched(obj: dict, level: flatten._Level) -> list[str]:
    found: list[str] = []
    flatten._unknown(obj, level, found, "")
    return found


@settings(max_examples=400, deadline=None)
@given(post=objects(flatten._POST_FIELDS), author=objects(flatten._USER_FIELDS))
def test_known_test_agrees_with_the_search(post, author):
    assert flatten._post_known(post) == (searched(post, flatten._POST_FIELDS) == [])
    assert flatten._user_known(author) == (searched(author, flatten._USER_FIELDS) == [])
    expected = sorted(searched(post, flatten._POST_FIELDS) + [f"author.{path}" for path in
                                                               searched(author, flatten._USER_FIELDS)])
    assert flatten.unknown_fields(post, author) == expected
