"""YAML loading that remembers where every key and item came from.

Mappings become `LocatedDict` and sequences `LocatedList`, each knowing the line of the node and
of each key or item, so configuration errors can name `file:line`. Duplicate keys, which plain
YAML silently collapses, are reported.
"""

from __future__ import annotations

import yaml


class LocatedDict(dict):
    """A mapping with `.line` (its own line) and `.lines[key]` (each key's line)."""

    line: int = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lines: dict = {}

    def line_of(self, key) -> int:
        return self.lines.get(key, self.line)


class LocatedList(list):
    """A sequence with `.line` and `.lines[i]` (each item's line)."""

    line: int = 0

    def __init__(self, *args):
        super().__init__(*args)
        self.lines: list[int] = []

    def line_of(self, index: int) -> int:
        return self.lines[index] if index < len(self.lines) else self.line


class _LocatingLoader(yaml.SafeLoader):
    def __init__(self, stream):
        super().__init__(stream)
        self.duplicate_keys: list[tuple[int, str]] = []


def _construct_mapping(loader: _LocatingLoader, node: yaml.MappingNode) -> LocatedDict:
    loader.flatten_mapping(node)
    mapping = LocatedDict()
    mapping.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            key = str(key)
        line = key_node.start_mark.line + 1
        if key in mapping:
            loader.duplicate_keys.append((line, f"duplicate key {key!r} (first at line {mapping.lines[key]})"))
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.lines[key] = line
    return mapping


def _construct_sequence(loader: _LocatingLoader, node: yaml.SequenceNode) -> LocatedList:
    sequence = LocatedList()
    sequence.line = node.start_mark.line + 1
    for item in node.value:
        sequence.append(loader.construct_object(item, deep=True))
        sequence.lines.append(item.start_mark.line + 1)
    return sequence


_LocatingLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LocatingLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)

_FastLocatingLoader = None
if getattr(yaml, "CSafeLoader", None) is not None:

    class _FastLocatingLoader(yaml.CSafeLoader):  # type: ignore[no-redef]
        """libyaml's parser (about 8x faster: a 10,000-account file loads in a blink), same nodes."""

        def __init__(self, stream):
            super().__init__(stream)
            self.duplicate_keys: list[tuple[int, str]] = []

    _FastLocatingLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    _FastLocatingLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


class YamlSyntaxError(ValueError):
    def __init__(self, line: int, message: str):
        self.line = line
        super().__init__(message)


def load_located(text: str) -> tuple[object, list[tuple[int, str]]]:
    """Parse one YAML document; return it and the duplicate-key problems (line, message).

    Valid documents go through libyaml when it is installed; any error is parsed again by the
    pure-Python loader, whose messages and lines are the ones reported.
    """
    if _FastLocatingLoader is not None:
        fast = _FastLocatingLoader(text)
        try:
            return fast.get_single_data(), fast.duplicate_keys
        except yaml.YAMLError:
            pass
        finally:
            fast.dispose()
    try:
        loader = _LocatingLoader(text)
    except yaml.reader.ReaderError as error:
        raise _unreadable(error, text) from error
    try:
        document = loader.get_single_data()
    except yaml.reader.ReaderError as error:
        raise _unreadable(error, text) from error
    except yaml.MarkedYAMLError as error:
        line, problem = _locate_syntax_error(error, text)
        raise YamlSyntaxError(line, f"YAML syntax error: {problem}") from error
    except yaml.YAMLError as error:
        raise YamlSyntaxError(1, f"YAML error: {error}") from error
    finally:
        loader.dispose()
    return document, loader.duplicate_keys


def _unreadable(error: yaml.reader.ReaderError, text: str) -> YamlSyntaxError:
    """A character YAML does not allow (NUL, other control characters), blamed on its line."""
    line = text.count("\n", 0, max(0, error.position)) + 1
    return YamlSyntaxError(line, f"character U+{error.character:04X} is not allowed in YAML (a control character?)")


def _locate_syntax_error(error: yaml.MarkedYAMLError, text: str) -> tuple[int, str]:
    """The line to blame and the message; an error found only at the end of the file (an
    unclosed quote or bracket) is blamed on the line where the construct started."""
    last_line = max(1, len(text.splitlines()))
    problem = error.problem or str(error)
    context_line = error.context_mark.line + 1 if error.context_mark else None
    if error.context and context_line:
        problem += f" ({error.context} at line {context_line})"
    line = error.problem_mark.line + 1 if error.problem_mark else context_line or 1
    if line > last_line and context_line:
        line = context_line
    return min(line, last_line), problem
