"""Secrets out of configuration text and values, found by YAML structure (not by text patterns).

A secret is the value of any mapping key whose name contains `token`, `secret` or `password`
(any case), whatever the section, so sections added later need nothing here; every value under
such a key is secret (a mapping or list of them too; the keys inside stay). Keys ending in `_file` (`bearer_token_file`)
name a file holding the secret: the path is kept, the file is never copied. Inside any other
value, URL credentials are secrets: the user info of `scheme://user:pass@host` and query
parameters named like secrets (`?pass=`, `&token=`, `apikey=`).

`redact_text` composes the YAML, and rewrites the exact character span of each secret scalar
(found through the nodes' marks, so every form is covered: block or flow, plain, quoted, block
scalars, multi-line values, quoted keys; an alias is the same node as its anchor, so a secret is
rewritten where its anchor defines it). A literal secret becomes `${SFM_<KEY_PATH>}` (for
`x.bearer_token`, `${SFM_X_BEARER_TOKEN}`), a reference `${VAR}` stays, a default in
`${VAR:-literal}` is dropped. Line numbers, comments, anchors and everything else are kept; a
comment that looks like it holds a secret (`# token: ...`, a URL with a password) is replaced.
The result is parsed again and compared with the
original; if anything differs, or the text cannot be parsed at all, nothing of it is kept.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

import yaml

SECRET_KEY = re.compile(r"token|secret|password", re.IGNORECASE)
FILE_KEY_SUFFIX = "_file"
REDACTED = "REDACTED"
WITHHELD = "# configuration withheld: it could not be parsed, so its secrets could not be told apart\n"
COMMENT_REDACTED = "# (comment removed: it mentions a secret)"

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}")
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#\s]*)@")
_SECRET_PARAM = r"[^=&#\s?;]*(?:token|secret|pass|pwd|key|auth|sig|credential)[^=&#\s]*"
_CURSOR = r"(?<!pagination_token)(?<!next_token)(?<!previous_token)"  # X API paging cursors: not secrets
_QUERY_SECRET = re.compile(r"(?P<name>[?&;]" + _SECRET_PARAM + _CURSOR + r"=)(?P<value>[^&#\s]*)", re.IGNORECASE)
_COMMENT_SECRET = re.compile(r"(?:token|secret|passw)\w*[\'\"]?\s*[:=]|://[^\s@/]*@", re.IGNORECASE)
_NULL_TAG = "tag:yaml.org,2002:null"
_LOADER = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader


def is_secret_key(key: Any) -> bool:
    """True for a key whose value is a secret (`*token*`, `*secret*`, `*password*`, not `*_file`)."""
    name = str(key)
    return bool(SECRET_KEY.search(name)) and not name.lower().endswith(FILE_KEY_SUFFIX)


def reference_only(text: str) -> str | None:
    """`text` made only of `${VAR}` references (defaults dropped), or None if it has literal parts."""
    if not text or _REFERENCE.sub("", text).strip():
        return None
    return "".join(f"${{{name}}}" for name in _REFERENCE.findall(text))


# -- values -----------------------------------------------------------------------------------


def redact_url_credentials(text: str) -> str:
    """`text` with the user info of every URL and each secret-named query parameter replaced."""
    if "@" not in text and "=" not in text:
        return text

    def userinfo(match: re.Match) -> str:
        user, colon, password = match.group("userinfo").partition(":")
        parts = [reference_only(part) or REDACTED for part in (user, password)[: 2 if colon else 1]]
        return match.group("scheme") + ":".join(parts) + "@"

    def parameter(match: re.Match) -> str:
        value = match.group("value")
        return match.group("name") + (reference_only(value) or (REDACTED if value else ""))

    return _QUERY_SECRET.sub(parameter, _URL_USERINFO.sub(userinfo, text))


def url_secrets(text: str) -> list[str]:
    """The credentials inside the URLs of `text` (passwords, tokens in user info or query)."""
    found = []
    for match in _URL_USERINFO.finditer(text):
        user, _, password = match.group("userinfo").partition(":")
        found.append(password or user)
    found.extend(match.group("value") for match in _QUERY_SECRET.finditer(text))
    return [secret for secret in found if secret]


def secret_values(document: Any, secret: bool = False) -> list[str]:
    """Every secret in a loaded (and expanded) configuration: for masking them in log lines."""
    if isinstance(document, dict):
        return [s for key, value in document.items() for s in secret_values(value, secret or is_secret_key(key))]
    if isinstance(document, list):
        return [s for item in document for s in secret_values(item, secret)]
    if document is None or document == "":
        return []
    if secret:
        return [str(document)]
    return url_secrets(document) if isinstance(document, str) else []


# -- text -------------------------------------------------------------------------------------


def redact_text(text: str) -> str:
    """The configuration text with every secret value replaced (see the module docstring)."""
    try:
        root = _single_document(text)
        tokens = list(yaml.scan(text, Loader=_LOADER))
    except yaml.YAMLError:
        return WITHHELD
    if root is None:
        return text
    rewrites: dict[int, tuple[yaml.ScalarNode, str]] = {}
    for node, path, secret, _line in _scalars(root, (), False, 1, set()):
        if secret:
            replacement = _secret_replacement(node, path)
            if replacement is not None:
                rewrites[id(node)] = (node, replacement)
        elif id(node) not in rewrites:
            cleaned = redact_url_credentials(node.value)
            if cleaned != node.value:
                rewrites[id(node)] = (node, cleaned)
    content_start = {token.end_mark.index: token.start_mark.index for token in tokens if isinstance(token, yaml.ScalarToken)}
    edits = [_scalar_edit(text, node, value, content_start) for node, value in rewrites.values()]
    edits.extend(_comment_edits(text, tokens))
    redacted = _apply(text, edits)
    if redacted is None or not _faithful(root, redacted, rewrites):
        return WITHHELD
    return redacted


def _single_document(text: str) -> yaml.Node | None:
    loader = _LOADER(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


Scalar = tuple[yaml.ScalarNode, tuple[str, ...], bool, int]


def _scalars(node: yaml.Node, path: tuple[str, ...], secret: bool, line: int, seen: set) -> Iterator[Scalar]:
    """Each scalar reached, in document order: (node, key path, under a secret key?, line).

    An alias is the node of its anchor, reached again (once more for each secret flag); its line
    is that of the key it stands under, the anchor's line being where the node was defined.
    """
    first = id(node) not in seen  # `seen` holds node ids, and (id, secret flag) pairs
    if (id(node), secret) in seen:
        return
    seen.update((id(node), (id(node), secret)))
    line = node.start_mark.line + 1 if first else line
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from _scalars(key, path, False, key.start_mark.line + 1, seen)
            name = key.value if isinstance(key, yaml.ScalarNode) else ""
            child = (*path, name) if name != "<<" else path
            yield from _scalars(value, child, secret or is_secret_key(name), key.start_mark.line + 1, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _scalars(item, (*path, str(index)), secret, line, seen)
    elif isinstance(node, yaml.ScalarNode):
        yield node, path, secret, line


def secret_aliases(text: str) -> list[tuple[int, str]]:
    """(line, problem) for each secret also used, through an anchor and alias, as a value that is
    not secret: there it would be shown (an organization name in every bag), so it is refused."""
    if "&" not in text:
        return []
    try:
        root = _single_document(text)
    except yaml.YAMLError:
        return []  # the loader reports it
    where: dict[int, dict[bool, int]] = {}
    for node, _path, secret, line in _scalars(root, (), False, 1, set()) if root is not None else ():
        if node.tag != _NULL_TAG and node.value != "":
            where.setdefault(id(node), {}).setdefault(secret, line)
    return [
        (lines[False], f"this value is a secret (the one at line {lines[True]}), reused here through an anchor and alias "
                       "where it would be shown: give it under a token, secret or password key only")
        for lines in where.values() if len(lines) == 2
    ]


def _secret_replacement(node: yaml.ScalarNode, path: tuple[str, ...]) -> str | None:
    """A reference to the environment instead of the secret (None: nothing secret to hide)."""
    if node.tag == _NULL_TAG or node.value == "":
        return None
    reference = reference_only(node.value)
    if reference == node.value:
        return None
    return reference or "${" + environment_name(path) + "}"


def environment_name(path: tuple[str, ...]) -> str:
    """`SFM_X_BEARER_TOKEN` for x.bearer_token: the variable a restored configuration reads."""
    return re.sub(r"[^A-Z0-9]+", "_", "_".join(("SFM", *path)).upper()).strip("_")


def _scalar_edit(text: str, node: yaml.ScalarNode, value: str, content_start: dict[int, int]) -> tuple[int, int, str]:
    """Replace the scalar's content (its anchor stays, a tag goes), keeping its line breaks."""
    start, end = node.start_mark.index, node.end_mark.index
    begin = content_start.get(end, start)
    anchor = re.findall(r"(?<!\S)&\S+", text[start:begin])
    quoted = yaml.safe_dump(value, default_style='"', width=1 << 30, allow_unicode=True).rstrip("\n")
    replacement = " ".join((*anchor, quoted)) + "\n" * text.count("\n", start, end)
    return start, end, replacement


def _comment_edits(text: str, tokens: list) -> Iterator[tuple[int, int, str]]:
    """Comments (found between the scanner's tokens) that mention a secret or a URL credential."""
    position = 0
    for token in [*tokens, None]:
        gap_end = token.start_mark.index if token is not None else len(text)
        for match in re.finditer(r"#[^\n\r]*", text[position:gap_end]):
            if _COMMENT_SECRET.search(match.group(0)):
                yield position + match.start(), position + match.end(), COMMENT_REDACTED
        if token is not None:
            position = max(position, token.end_mark.index)


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str | None:
    """The text with each (start, end, replacement) made; None if two would overlap."""
    pieces, position = [], 0
    for start, end, replacement in sorted(edits):
        if start < position:
            return None
        pieces.append(text[position:start])
        pieces.append(replacement)
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def _faithful(original: yaml.Node, redacted_text: str, rewrites: dict) -> bool:
    """The redacted text parses to the original structure, rewritten exactly where intended."""
    try:
        redacted = _single_document(redacted_text)
    except yaml.YAMLError:
        return False
    return _same(original, redacted, rewrites, set())


def _same(a: yaml.Node, b: yaml.Node, rewrites: dict, seen: set) -> bool:
    if (id(a), id(b)) in seen:
        return True
    seen.add((id(a), id(b)))
    if type(a) is not type(b):
        return False
    if isinstance(a, yaml.ScalarNode):
        if id(a) in rewrites:
            return b.value == rewrites[id(a)][1]
        return a.value == b.value and a.tag == b.tag
    if len(a.value) != len(b.value):
        return False
    if isinstance(a, yaml.MappingNode):
        return all(
            _same(ka, kb, rewrites, seen) and _same(va, vb, rewrites, seen)
            for (ka, va), (kb, vb) in zip(a.value, b.value, strict=True)
        )
    return all(_same(x, y, rewrites, seen) for x, y in zip(a.value, b.value, strict=True))
