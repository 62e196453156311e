"""Every value codec in one place: what is stored is JSON any service can read, never pickle.

Encoding goes through pydantic-core, so pydantic models, dataclasses, datetimes, UUIDs and sets
are stored as their JSON form. NaN and infinities become ``null``, as in JavaScript.

* ``encode`` / ``decode``: the cache's plain JSON values;
* ``ValueCodec`` / ``ModelCodec``: typed repositories' values and hash or stream fields,
  validated into the declared type;
* ``EnvelopeCodec``: ``@cached`` entries (the value and how long it took to compute);
* ``MessageCodec``: pub/sub messages in their versioned envelope.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Generic, Literal, NamedTuple, TypeVar, cast

from pydantic import BaseModel, TypeAdapter, ValidationError, create_model
from pydantic_core import PydanticSerializationError, to_json

from ._exceptions import ConfigurationError, InvalidInputError, SerializationError

__all__ = [
    "Envelope",
    "EnvelopeCodec",
    "MessageCodec",
    "ModelCodec",
    "ValueCodec",
    "decode",
    "encode",
]


def encode(value: Any, max_bytes: int) -> bytes:
    """Encode ``value`` as JSON bytes.

    Raises:
        SerializationError: the value is not JSON-able or its JSON exceeds ``max_bytes``.
    """
    try:
        data = to_json(value, inf_nan_mode="null")
    except (PydanticSerializationError, ValueError, TypeError, RecursionError) as exc:
        raise SerializationError(f"cannot store a {type(value).__name__} as JSON: {exc}") from exc
    if len(data) > max_bytes:
        raise SerializationError(
            f"value is {len(data)} bytes as JSON, over the {max_bytes}-byte limit"
        )
    return data


def decode(raw: str | bytes) -> Any:
    """Decode stored JSON; raises ``ValueError`` on anything else (a corrupt entry)."""
    return json.loads(raw)


V = TypeVar("V")
M = TypeVar("M", bound=BaseModel)


class ValueCodec(Generic[V]):
    """Encode values of one type as JSON, and validate stored JSON back into that type."""

    __slots__ = ("_adapter", "max_bytes", "value_type")

    def __init__(self, value_type: Any, max_bytes: int) -> None:
        self.value_type = value_type
        try:
            self._adapter: TypeAdapter[V] = TypeAdapter(value_type)
        except Exception as exc:  # pydantic cannot build a schema for this type
            raise InvalidInputError(f"{value_type!r} cannot be stored as JSON: {exc}") from None
        self.max_bytes = max_bytes

    def encode(self, value: V) -> bytes:
        """JSON bytes for ``value``.

        Raises:
            SerializationError: ``value`` is not of the declared type, or is too large.
        """
        try:
            data = self._adapter.dump_json(value, warnings="error")
        except Exception as exc:  # pydantic raises several kinds here
            raise SerializationError(
                f"cannot store a {type(value).__name__} as {self.value_type!r}: {exc}"
            ) from exc
        if len(data) > self.max_bytes:
            raise SerializationError(
                f"value is {len(data)} bytes as JSON, over the {self.max_bytes}-byte limit"
            )
        return data

    def decode(self, raw: str | bytes) -> V:
        """Validate stored JSON; raises ``ValueError`` when it does not fit the type."""
        return self._adapter.validate_json(raw)

    def decode_all(self, raws: Iterable[str], key: str) -> list[V]:
        """Decode every member of a collection.

        Raises:
            SerializationError: a member is not valid JSON of the declared type.
        """
        try:
            return [self._adapter.validate_json(raw) for raw in raws]
        except ValueError as exc:
            raise SerializationError(
                f"{key} holds a member that is not a valid {self.value_type!r}"
            ) from exc


class ModelCodec(Generic[M]):
    """A model's fields as separate JSON values (hash fields, stream entry fields)."""

    __slots__ = ("_fields", "max_bytes", "model")

    def __init__(self, model: type[M], max_bytes: int) -> None:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise InvalidInputError(
                f"a hash or stream value must be a pydantic model, not {model!r}"
            )
        self.model = model
        self.max_bytes = max_bytes
        self._fields: dict[str, TypeAdapter[Any]] = {
            name: TypeAdapter(cast(Any, info.annotation))
            for name, info in model.model_fields.items()
        }

    def encode(self, value: M) -> dict[str, bytes]:
        """Every field (extras included) as JSON bytes.

        Raises:
            SerializationError: ``value`` is not a ``model`` or a field is too large.
        """
        if not isinstance(value, self.model):
            raise SerializationError(
                f"expected a {self.model.__name__}, not {type(value).__name__}"
            )
        return {
            name: encode(field, self.max_bytes)
            for name, field in value.model_dump(mode="json").items()
        }

    def encode_fields(self, fields: Mapping[str, Any]) -> dict[str, bytes]:
        """Validate and encode a partial update.

        Raises:
            InvalidInputError: a field is unknown, or a value does not fit its field.
        """
        encoded = {}
        for name, value in fields.items():
            adapter = self._fields.get(name)
            if adapter is None:
                if self.model.model_config.get("extra") != "allow":
                    raise InvalidInputError(f"{self.model.__name__} has no field {name!r}")
                encoded[name] = encode(value, self.max_bytes)
                continue
            try:
                checked = adapter.validate_python(value)
                encoded[name] = adapter.dump_json(checked)
            except ValidationError as exc:
                raise InvalidInputError(f"{self.model.__name__}.{name}: {exc}") from None
        return encoded

    def decode(self, stored: Mapping[str, str]) -> M:
        """Rebuild the model; raises ``ValueError`` when a field is missing or invalid."""
        return self.model.model_validate({name: json.loads(raw) for name, raw in stored.items()})

    def decode_field(self, name: str, raw: str) -> Any:
        """Validate one stored field; raises ``ValueError`` when invalid."""
        adapter = self._fields.get(name)
        return json.loads(raw) if adapter is None else adapter.validate_json(raw)

    def check_field(self, name: str) -> str:
        """Return ``name`` if the model has (or accepts) such a field.

        Raises:
            InvalidInputError: the field is unknown.
        """
        if name not in self._fields and self.model.model_config.get("extra") != "allow":
            raise InvalidInputError(f"{self.model.__name__} has no field {name!r}")
        return name


class Envelope(NamedTuple):
    """A decoded L2 entry."""

    value: Any
    compute_seconds: float


class EnvelopeCodec:
    """Encode and validate envelopes for one return type."""

    __slots__ = ("_model", "max_bytes")

    def __init__(self, value_type: Any, max_bytes: int) -> None:
        try:
            # ``x`` (a writer's wall-clock expiry) was written by earlier versions: accepted,
            # never trusted.
            self._model: type[BaseModel] = create_model(
                "CachedEnvelope", v=(value_type, ...), d=(float, 0.0), x=(float | None, None)
            )
        except Exception as exc:  # pydantic cannot build a schema for the return type
            raise ConfigurationError(f"cannot cache a {value_type!r} as JSON: {exc}") from None
        self.max_bytes = max_bytes

    def encode(self, value: Any, compute_seconds: float) -> bytes:
        """The envelope's JSON.

        Raises:
            SerializationError: the value has no JSON form of the declared type, or is too large.
        """
        entry = self._model.model_construct(v=value, d=compute_seconds)
        try:
            data = entry.__pydantic_serializer__.to_json(entry, warnings="error", exclude={"x"})
        except Exception as exc:
            raise SerializationError(f"cannot store a {type(value).__name__}: {exc}") from exc
        if len(data) > self.max_bytes:
            raise SerializationError(f"value is {len(data)} bytes, over {self.max_bytes}")
        return data

    def decode(self, raw: str | bytes) -> Envelope:
        """Validate an envelope; raises ``ValueError`` on anything else."""
        entry: Any = self._model.model_validate_json(raw)
        return Envelope(entry.v, entry.d)


#: The envelope version ``MessageCodec`` writes; a reader skips (and counts) any other.
MESSAGE_VERSION = 1


class MessageCodec(Generic[M]):
    """Pub/sub messages of one model in a small versioned envelope, encoded once::

    {"v":1,"id":"<publisher's id>","ts":<Unix seconds>,"m":{...the message...}}
    """

    __slots__ = ("_envelope", "model")

    def __init__(self, model: type[M]) -> None:
        self.model = model
        self._envelope: type[BaseModel] = create_model(
            f"{model.__name__}Envelope",
            v=(Literal[1], ...),
            id=(str, ...),
            ts=(float, ...),
            m=(model, ...),
        )

    def encode(self, message: M, message_id: str, published_at: float, max_bytes: int) -> bytes:
        """The envelope's JSON.

        Raises:
            SerializationError: ``message`` is not a ``model``, or the envelope is too large.
        """
        if not isinstance(message, self.model):
            raise SerializationError(
                f"expected a {self.model.__name__} message, not {type(message).__name__}"
            )
        try:
            body = message.__pydantic_serializer__.to_json(message, warnings="error")
        except Exception as exc:
            raise SerializationError(f"cannot send a {self.model.__name__}: {exc}") from exc
        head = b'{"v":%d,"id":"%s","ts":%.6f,"m":' % (
            MESSAGE_VERSION,
            message_id.encode("ascii"),
            published_at,
        )
        data = head + body + b"}"
        if len(data) > max_bytes:
            raise SerializationError(
                f"message is {len(data)} bytes as JSON, over the {max_bytes}-byte limit"
            )
        return data

    def decode(self, raw: str | bytes) -> tuple[M, str, float]:
        """The message, its id and its time; raises ``ValueError`` on anything else."""
        envelope: Any = self._envelope.model_validate_json(raw)
        return envelope.m, envelope.id, envelope.ts
