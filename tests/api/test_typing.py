"""Typing promises, checked through ``mypy.api``.

``tests/typing/pass/`` holds code mypy must accept; its ``assert_type`` calls pin the types users
see. ``tests/typing/fail/`` holds misuses mypy must reject: each offending line ends with
``# E: <error-code>`` (several codes: ``# E: type-var, arg-type``). The fail test asserts that
mypy reports exactly the marked (file, line, code) triples: no marked error goes missing and no
unmarked one appears.

The fail snippets are excluded from the normal ``mypy`` run by ``mypy.ini``. Its ``exclude``
only filters directory discovery, so the snippets are passed one by one and are still checked.
Both runs use ``--strict`` on top of ``mypy.ini`` (which loads the pydantic plugin), so the
promises hold even if the configuration is loosened.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[2]
TYPING = ROOT / "tests" / "typing"
PASS_DIR = TYPING / "pass"
FAIL_DIR = TYPING / "fail"
SHARED = TYPING / "typing_fixtures.py"

_MARKER = re.compile(r"#\s*E:\s*(?P<codes>[a-z][a-z-]*(?:\s*,\s*[a-z][a-z-]*)*)\s*$")
_ERROR = re.compile(r"^(?P<path>.+?):(?P<line>\d+): error: (?P<message>.*)  \[(?P<code>[a-z-]+)\]$")
_NOTE = re.compile(r"^.+?:\d+: note: ")

#: (absolute file path, line number, error code)
Diagnostic = tuple[str, int, str]


@dataclass(frozen=True)
class MypyResult:
    """What one mypy run reported: its errors by (file, line, code), with their messages."""

    exit_status: int
    output: str
    errors: dict[Diagnostic, list[str]]


def _py_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.py"))


def _run_mypy(files: Iterable[Path], cache_dir: Path) -> MypyResult:
    args = [
        "--config-file",
        str(ROOT / "mypy.ini"),
        "--strict",
        "--cache-dir",
        str(cache_dir),
        "--show-absolute-path",
        "--show-error-codes",
        "--hide-column-numbers",
        "--hide-error-end",
        "--hide-error-context",
        "--no-pretty",
        "--no-color-output",
        "--no-error-summary",
        *(str(path) for path in files),
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)  # mypy.ini's mypy_path is relative to the working directory
        stdout, stderr, exit_status = api.run(args)
    assert stderr == "", f"mypy wrote to stderr:\n{stderr}"
    errors: dict[Diagnostic, list[str]] = {}
    for line in stdout.splitlines():
        match = _ERROR.match(line)
        if match is None:
            assert _NOTE.match(line), f"unrecognised mypy output line: {line!r}\n{stdout}"
            continue
        diagnostic = (str(Path(match["path"])), int(match["line"]), match["code"])
        errors.setdefault(diagnostic, []).append(match["message"])
    return MypyResult(exit_status, stdout, errors)


def _markers(path: Path) -> set[Diagnostic]:
    found: set[Diagnostic] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = _MARKER.search(line)
        if match:
            for code in match["codes"].split(","):
                found.add((str(path), number, code.strip()))
    return found


def _describe(diagnostics: Iterable[Diagnostic], result: MypyResult) -> str:
    lines: list[str] = []
    for path, line, code in sorted(diagnostics):
        messages = result.errors.get((path, line, code), ["(not reported)"])
        where = f"{Path(path).relative_to(ROOT)}:{line} [{code}]"
        lines.extend(f"  {where} {message}" for message in messages)
    return "\n".join(lines)


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for this module's two runs, private to this test session."""
    return tmp_path_factory.mktemp("mypy-cache")


def test_pass_files_type_check_without_errors(mypy_cache: Path) -> None:
    files = _py_files(PASS_DIR)
    assert files, "no typing pass files found"

    result = _run_mypy([SHARED, *files], mypy_cache)

    assert result.errors == {}, f"mypy rejected the pass files:\n{result.output}"
    assert result.exit_status == 0, result.output


def test_fail_snippets_report_exactly_the_marked_errors(mypy_cache: Path) -> None:
    files = _py_files(FAIL_DIR)
    assert files, "no typing fail snippets found"
    expected: set[Diagnostic] = set()
    for path in files:
        marked = _markers(path)
        assert marked, f"{path.relative_to(ROOT)} has no '# E: <code>' marker"
        expected |= marked

    result = _run_mypy(files, mypy_cache)
    reported = set(result.errors)

    missing = expected - reported
    unexpected = reported - expected
    assert (missing, unexpected) == (set(), set()), (
        f"marked misuses mypy no longer rejects:\n{_describe(missing, result)}\n"
        f"errors without a '# E:' marker:\n{_describe(unexpected, result)}"
    )
    assert result.exit_status == 1, result.output
