"""Text holding U+0000 (NUL) is refused at the edges: PostgreSQL cannot store it in text
columns (SQLite can, so without the check the two backends would disagree), and no name, id,
email or attribute a directory or app sends has a legitimate use for it."""

from __future__ import annotations

from typing import Any

from sso_gate.exceptions import ValidationError

__all__ = ["find_nul", "refuse_nul", "NUL_MESSAGE"]

NUL_MESSAGE = "contains the NUL character (U+0000), which is not allowed in text"


def find_nul(value: Any, path: str = "") -> str | None:
    """The JSON path (``emails[0].value``; ``""`` for the top level) of the first string, or
    object key, in ``value`` that holds U+0000; ``None`` when there is none."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and "\x00" in key:
                return here
            found = find_nul(item, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = find_nul(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def refuse_nul(**fields: object) -> None:
    """A 422 ``invalid_text`` naming the field for U+0000 in any of ``fields`` (strings, or
    lists and mappings of them): for input kept in JSON columns, which no string column type
    checks (role mapping, connection settings)."""
    for name, value in fields.items():
        where = find_nul(value)
        if where is not None:
            path = name if not where else f"{name}{'' if where.startswith('[') else '.'}{where}"
            raise ValidationError(f"{path} {NUL_MESSAGE}", field=name, code="invalid_text")
