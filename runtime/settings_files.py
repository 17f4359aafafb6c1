"""Reading the small text files a cell is set up with (configs, recipes): TOML or JSON, validated by
pydantic, every problem reported as ``FILE: field.path: message (got VALUE)``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import ValidationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def read_text(path: str | Path, error: type[Exception], what: str = "file", encoding: str = "utf-8") -> str:
    """The file's text, or ``error`` naming the file: ``FILE: WHAT not found`` / ``cannot read``."""
    path = Path(path)
    try:
        return path.read_text(encoding=encoding)
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None


def parse_toml_or_json(text: str, path: str | Path, error: type[Exception]):
    """Parse by suffix (``.json`` is JSON, anything else TOML); syntax errors name the file."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise error(f"{path}: not valid JSON: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}") from None


def format_validation_error(source: str | Path, exc: ValidationError, *, unknown_field_hint: str,
                            top_level: str = "(top level)") -> str:
    """One line per problem: ``FILE: field.path: message (got VALUE)``."""
    lines = []
    for item in exc.errors():
        field = ".".join(str(part) for part in item["loc"]) or top_level
        message = item["msg"].removeprefix("Value error, ")
        unknown = item["type"] == "extra_forbidden"
        if unknown:
            message = f"unknown field ({unknown_field_hint})"
        got = item.get("input")
        show = got is not None and not unknown and not isinstance(got, (dict, list))
        lines.append(f"{source}: {field}: {message}" + (f" (got {got!r})" if show else ""))
    return "\n".join(lines)
