"""Templates: frozen pydantic models that render to, and parse from, colon-separated names.

Key schemas (``_keys.py``) and channel schemas (``_channels.py``) are both templates: the
template (``"user:{user_id}:profile"``) names the dynamic parts, which are the model's fields.

Rendering is injective and glob-safe: each string part is percent-encoded for ``% : { } * ? [ ]
\\ #``, spaces and control characters, so no input can act as a separator, a glob wildcard
(SCAN MATCH, PSUBSCRIBE) or a cluster hash tag; a part longer than ``MAX_PART_LENGTH`` after
escaping becomes ``#`` and its BLAKE2b hash. The template is checked against the fields when
the class is created.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from string import Formatter
from typing import Any, ClassVar, Self, cast
from urllib.parse import quote, unquote
from uuid import UUID

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from pydantic_core import to_jsonable_python

from ._exceptions import InvalidInputError, KeySchemaError

__all__ = [
    "MAX_PART_LENGTH",
    "Template",
    "escape_part",
    "render_part",
    "stable_hash",
    "type_argument",
    "unescape_part",
]

#: Escaped parts longer than this are replaced by ``#<32 hex digits>``.
MAX_PART_LENGTH = 128

# Glob, separator, hash-tag and marker characters, the ASCII space, and every control or
# line-breaking character (C0, DEL, C1, U+2028/U+2029).
_SPECIAL = (
    "%:{}*?[]\\# "
    + "".join(map(chr, range(0x20)))
    + "".join(map(chr, range(0x7F, 0xA0)))
    + "\u2028\u2029"
)
_ESCAPES = str.maketrans({c: quote(c, safe="") for c in _SPECIAL})  # UTF-8 %XX bytes
_NEEDS_ESCAPE = re.compile("[" + re.escape(_SPECIAL) + "]")
_NONE = "%N"  # escaped strings only hold '%' before two hex digits, so this is unambiguous
# An empty part renders as a marker too: Redis ignores an empty {} hash tag.
_EMPTY = "%E"
_HASHED = "#"
_RENDERED = "_rendered"  # underscore names are never fields, and pydantic skips them


def escape_part(text: str) -> str:
    """Percent-encode the characters that could act as syntax; hash an over-long result.

    Raises:
        InvalidInputError: ``text`` is not valid Unicode (a lone surrogate).
    """
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInputError("a key part must be valid Unicode") from None
    if not text:
        return _EMPTY
    if _NEEDS_ESCAPE.search(text):
        text = text.translate(_ESCAPES)
    if len(text) > MAX_PART_LENGTH:
        return _HASHED + hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()
    return text


def unescape_part(part: str) -> str:
    """Invert ``escape_part``.

    Raises:
        InvalidInputError: the part was hashed, so the original cannot be recovered.
    """
    if part.startswith(_HASHED):
        raise InvalidInputError("this key part was hashed; its value cannot be recovered")
    if part == _EMPTY:
        return ""
    try:
        return unquote(part, errors="strict")
    except UnicodeDecodeError:
        raise InvalidInputError("a key part holds an invalid escape") from None


def render_part(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return escape_part(value)
    if kind is int:
        try:
            digits = str(value)
        except ValueError:  # beyond Python's int-to-str digit limit
            raise InvalidInputError("an int key part has too many digits") from None
        return digits if len(digits) <= MAX_PART_LENGTH else escape_part(digits)
    if kind is bool:
        return "true" if value else "false"
    if value is None:
        return _NONE
    if isinstance(value, Enum):
        return render_part(value.value)
    if isinstance(value, str):
        return escape_part(str(value))
    if isinstance(value, int | float | Decimal | UUID):
        return escape_part(str(value))
    if isinstance(value, date | datetime | time):
        return escape_part(value.isoformat())
    raise InvalidInputError(f"a {kind.__name__} cannot be a key part: use str, int, UUID, ...")


def stable_hash(value: Any) -> str:
    """Hash a JSON-able value to 32 hex digits, the same in every process and Python version.

    Dict keys are sorted and sets ordered, so the same logical input (a dict in any key order,
    a set in any iteration order) always gives the same hash. For ``{hash}`` parts of keys.

    Raises:
        InvalidInputError: the value has no JSON form.
    """
    try:
        canonical = json.dumps(
            _canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"cannot hash a {type(value).__name__}: {exc}") from exc
    return hashlib.blake2b(canonical.encode("utf-8"), digest_size=16).hexdigest()


def _canonical(value: Any) -> Any:
    # Python mode keeps sets as sets and NaN as NaN, so both are handled below.
    if isinstance(value, BaseModel):
        value = value.model_dump()
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        canonical = {str(k): _canonical(v) for k, v in value.items()}
        if len(canonical) != len(value):
            raise ValueError("two keys share one JSON name (e.g. 1 and '1')")
        return canonical
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, set | frozenset):
        items = [_canonical(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("NaN and infinities have no JSON form")
    return to_jsonable_python(value)


class Template(BaseModel):
    """Base of key and channel schemas: the fields are the name's dynamic parts.

    Optional: ``schema_version`` (appended as ``:v<N>``; bump it when the value model changes
    so old names are never read again) and ``hash_tag`` (a field whose part is wrapped in
    ``{}`` so that all names sharing it land in one cluster slot).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    template: ClassVar[str]
    schema_version: ClassVar[int | None] = None
    hash_tag: ClassVar[str | None] = None
    _fields: ClassVar[tuple[str, ...]] = ()
    _format: ClassVar[str] = ""
    _parser: ClassVar[re.Pattern[str] | None] = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "template" in cls.__dict__:
            cls._check_class()
            _compile(cls)

    @classmethod
    def _check_class(cls) -> None:
        """Refuse a subclass whose options do not fit (subclasses add their own checks)."""

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with ``update`` applied and validated (pydantic's own copy skips validation)."""
        return self.model_validate({**self.model_dump(), **(update or {})})

    def render(self) -> str:
        """The name, e.g. ``user:123:profile`` (computed once per object)."""
        # Cached in the instance dict: the model is frozen, and pydantic's ==, hash, repr and
        # dumps look at the declared fields only.
        state = self.__dict__
        rendered: str | None = state.get(_RENDERED)
        if rendered is None:
            parts = [render_part(getattr(self, name)) for name in self._fields]
            rendered = state[_RENDERED] = self._format.format(*parts)
        return rendered

    @classmethod
    def parse(cls, key: str) -> Self:
        """Return the schema instance that renders to ``key``.

        Raises:
            InvalidInputError: ``key`` is not a key of this schema, or holds a hashed part.
        """
        match = cls._parser.fullmatch(key) if cls._parser else None
        if match is None:
            raise InvalidInputError(f"not a {cls.__name__} key")
        values = {
            name: None if part == _NONE else unescape_part(part)
            for name, part in match.groupdict().items()
        }
        try:
            parsed = cls.model_validate(values)
        except ValidationError as exc:
            raise InvalidInputError(f"not a valid {cls.__name__} key: {exc}") from None
        if parsed.render() != key:  # e.g. '%41' for 'A', or '03' for 3: not what render makes
            raise InvalidInputError(f"not a canonical {cls.__name__} key")
        return parsed

    @classmethod
    def pattern(cls, **fields: Any) -> str:
        """A SCAN MATCH pattern: the given fields fixed (escaped), the others wildcards.

        Raises:
            InvalidInputError: a name is not a field of this schema, or a value does not fit.
        """
        unknown = set(fields) - set(cls._fields)
        if unknown:
            raise InvalidInputError(f"{cls.__name__} has no field {sorted(unknown)}")
        parts = []
        for name in cls._fields:
            if name in fields:
                adapter = _adapter(cls, name)
                try:
                    value = adapter.validate_python(fields[name])
                except ValidationError as exc:
                    raise InvalidInputError(f"{cls.__name__}.{name}: {exc}") from None
                parts.append(render_part(value))
            else:
                parts.append("*")
        return cls._format.format(*parts)


_adapters: dict[tuple[type, str], TypeAdapter[Any]] = {}


def _adapter(cls: type[Template], name: str) -> TypeAdapter[Any]:
    cached = _adapters.get((cls, name))
    if cached is None:
        cached = _adapters[(cls, name)] = TypeAdapter(cast(Any, cls.model_fields[name].annotation))
    return cached


_LITERAL_FORBIDDEN = re.compile(r"[*?\[\]\\{}\s\x00-\x1f\x7f]")


def _compile(cls: type[Template]) -> None:
    """Check a schema's template against its fields and build its format and parser."""
    name = cls.__name__
    version = cls.schema_version
    if version is not None and (type(version) is not int or version < 1):
        raise KeySchemaError(f"{name}: schema_version must be a positive int")
    try:
        pieces = list(Formatter().parse(cls.template))
    except ValueError as exc:
        raise KeySchemaError(f"{name}: bad template: {exc}") from None
    fields: list[str] = []
    fmt, regex = "", ""
    previous_was_field = False
    for literal, field, spec, conversion in pieces:
        if _LITERAL_FORBIDDEN.search(literal):
            raise KeySchemaError(f"{name}: template text {literal!r} holds a glob or brace")
        if previous_was_field and literal and ":" not in literal:
            raise KeySchemaError(f"{name}: separate template fields with ':'")
        if previous_was_field and not literal and field is not None:
            raise KeySchemaError(f"{name}: two template fields touch; separate them with ':'")
        fmt += literal.replace("{", "{{").replace("}", "}}")
        regex += re.escape(literal)
        previous_was_field = False
        if field is None:
            continue
        if spec or conversion or not field.isidentifier():
            raise KeySchemaError(f"{name}: template field {{{field}}} must be a plain name")
        if field in fields:
            raise KeySchemaError(f"{name}: template names {{{field}}} twice")
        fields.append(field)
        tagged = field == cls.hash_tag
        fmt += "{{{}}}" if tagged else "{}"
        group = f"(?P<{field}>[^:{{}}]*)"
        regex += rf"\{{{group}\}}" if tagged else group
        previous_was_field = True
    declared = set(cls.model_fields)
    if set(fields) != declared:
        raise KeySchemaError(
            f"{name}: template fields {sorted(fields)} differ from model fields {sorted(declared)}"
        )
    if cls.hash_tag is not None and cls.hash_tag not in fields:
        raise KeySchemaError(f"{name}: hash_tag {cls.hash_tag!r} is not a template field")
    if version is not None:
        fmt += f":v{version}"
        regex += re.escape(f":v{version}")
    cls._fields = tuple(fields)
    cls._format = fmt
    cls._parser = re.compile(regex)


def type_argument(cls: type[BaseModel]) -> Any:
    """The first type argument of the generic base ``cls`` derives from (``Any`` if none)."""
    for klass in cls.__mro__:
        meta = getattr(klass, "__pydantic_generic_metadata__", None)
        if meta and meta.get("args"):
            return meta["args"][0]
    return Any
