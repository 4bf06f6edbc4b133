"""Strict query-string parsing: every parameter checked before any lookup.

The raw query is decoded here (not by yarl, which silently replaces invalid UTF-8), so a
parameter that is not valid UTF-8, holds a NUL byte, repeats where it may not, or is out of
range is a 400 with a sentence saying which parameter and why.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote_to_bytes

from server.errors import BadRequest

MAX_PARAM_LENGTH = 1024
MAX_PARAMS = 64


class Query:
    """The decoded parameters of one request, with typed, validating accessors."""

    __slots__ = ("_values",)

    def __init__(self, raw_query: str) -> None:
        values: dict[str, list[str]] = {}
        if raw_query:
            pairs = raw_query.split("&")
            if len(pairs) > MAX_PARAMS:
                raise BadRequest(f"Too many query parameters (at most {MAX_PARAMS}).")
            for pair in pairs:
                if not pair:
                    continue
                raw_key, _, raw_value = pair.partition("=")
                key = _decode(raw_key, "a parameter name")
                values.setdefault(key, []).append(_decode(raw_value, f"parameter {key!r}"))
        self._values = values

    def reject_unknown(self, known: Iterable[str]) -> None:
        unknown = sorted(set(self._values) - set(known))
        if unknown:
            raise BadRequest(f"Unknown query parameter {unknown[0]!r}.", code="unknown_parameter")

    def all(self, name: str) -> list[str]:
        return self._values.get(name, [])

    def text(
        self, name: str, *, required: bool = False, default: str | None = None, max_length: int = MAX_PARAM_LENGTH
    ) -> str | None:
        values = self._values.get(name)
        if not values:
            if required:
                raise BadRequest(f"Query parameter {name!r} is required.", code="missing_parameter")
            return default
        if len(values) > 1:
            raise BadRequest(f"Query parameter {name!r} is given more than once.")
        value = values[0]
        if len(value) > max_length:
            raise BadRequest(f"Query parameter {name!r} is longer than {max_length} characters.")
        if required and not value:
            raise BadRequest(f"Query parameter {name!r} must not be empty.", code="missing_parameter")
        return value

    def required(self, name: str, max_length: int = MAX_PARAM_LENGTH) -> str:
        value = self.text(name, required=True, max_length=max_length)
        assert value is not None
        return value

    def integer(self, name: str, *, default: int | None, low: int, high: int) -> int | None:
        text = self.text(name, max_length=20)
        if text is None or text == "":
            return default
        if not (text.isascii() and text.lstrip("-").isdigit()):
            raise BadRequest(f"Query parameter {name!r} must be a whole number, not {text!r}.")
        value = int(text)
        if not low <= value <= high:
            raise BadRequest(f"Query parameter {name!r} must be between {low} and {high}, not {value}.")
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        text = self.text(name, max_length=64)
        if text is None or text == "":
            return default
        if text not in choices:
            raise BadRequest(f"Query parameter {name!r} must be one of {', '.join(choices)}, not {text!r}.")
        return text


def _decode(raw: str, what: str) -> str:
    try:
        text = unquote_to_bytes(raw.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"{what[0].upper()}{what[1:]} is not valid UTF-8.", code="invalid_encoding") from None
    if "\x00" in text:
        raise BadRequest(f"{what[0].upper()}{what[1:]} holds a NUL byte.", code="invalid_character")
    return text
