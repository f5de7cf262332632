"""Facts about the code's shape that a reader relies on: each is written in one place."""

from __future__ import annotations

import ast
import inspect
import pkgutil
import re
from importlib import import_module
from pathlib import Path

import sfm_archiver
from sfm_archiver import errors

PACKAGE = Path(sfm_archiver.__file__).parent


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_fsync_goes_through_durable():
    calls = re.compile(r"\bos\.(fsync|fdatasync)\(")
    offenders = [f"{path.relative_to(PACKAGE)}:{number}"
                 for path in _sources() if path.name != "durable.py"
                 for number, line in enumerate(path.read_text().splitlines(), 1) if calls.search(line)]
    assert offenders == []


def test_every_project_error_is_defined_in_errors_with_its_place_in_the_tree():
    defined_elsewhere = []
    for module_info in pkgutil.walk_packages([str(PACKAGE)], "sfm_archiver."):
        if module_info.name.endswith("__main__"):
            continue  # running it is the command line
        module = import_module(module_info.name)
        for name, value in vars(module).items():
            if (inspect.isclass(value) and issubclass(value, errors.SfmError)
                    and value.__module__ == module.__name__ and module is not errors):
                defined_elsewhere.append(f"{module.__name__}.{name}")
    assert defined_elsewhere == []
    tree = errors.__doc__ or ""
    for name, value in vars(errors).items():
        if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == errors.__name__:
            assert re.search(rf"\b{name}\b", tree), f"{name} is missing from the tree in errors.py's docstring"


def test_one_stop_requested_exception():
    stops = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and re.search(r"Stop|Interrupt", node.name) and path.name != "errors.py":
                stops.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}")
    assert stops == []


# X's particulars outside platforms/ (and the X API simulator): what is left to move behind
# `platforms.base.Platform`. The list only shrinks: a new use fails this test, and so does one
# listed here that is gone (then strike it from the list).
X_WORDS = re.compile(r"x-rate-limit|bearer_token|since_id|newest_id|next_token|note_tweet|entities\.urls|includes\.tweets")
X_OUTSIDE_PLATFORMS = {
    "config.py",  # the `x:` section
    "config_redact.py",  # X's paging cursors are not secrets
    "export/columns.py",  # the export's columns and flattening are X's post shape (twarc-csv names);
    "export/flatten.py",  # a second platform brings its own flattener
    "export/xrows.py",  # X's rows, from the same column table (flatten.py's fast path)
    "export/readme.py",
    "export/scan.py",
    "state.py",  # the schema's history: migration 8 renamed the checkpoints' since_id to newest
}


def test_x_particulars_stay_behind_the_platform_seam():
    found = set()
    for path in _sources():
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(("platforms/", "simulator/")):
            continue
        if X_WORDS.search(path.read_text()):
            found.add(relative)
    assert found == X_OUTSIDE_PLATFORMS


def test_platform_modules_use_no_job_module():
    """The seam points one way: jobs use platforms; a platform reads answers into the seam's own
    words (`platforms/base.py`), so a new platform needs nothing from the jobs."""
    users = set()
    for path in sorted((PACKAGE / "platforms").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sfm_archiver.jobs"):
                users.add(path.name)
    assert users == set()
