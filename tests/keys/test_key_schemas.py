"""Schema definitions that are refused, and schema instances that behave as values."""

from __future__ import annotations

import types
from typing import Any

import pydantic
import pytest

from arketic_cache import (
    HashKey,
    KBEmbeddingKey,
    KeySchema,
    KeySchemaError,
    ListKey,
    SetKey,
    SortedSetKey,
    StringKey,
    UserProfileKey,
)


def make_schema(
    template: str, fields: dict[str, Any], base: type[KeySchema] = StringKey[int], **extra: Any
) -> type[KeySchema]:
    """Create a schema class the way a class statement would (so ``_compile`` runs)."""

    def body(namespace: dict[str, Any]) -> None:
        namespace.update(
            {"__module__": __name__, "__annotations__": fields, "template": template, **extra}
        )

    return types.new_class("Made", (base,), exec_body=body)


class TestSchemaDefinitionErrors:
    """An ill-defined schema fails when its class is created, not when a key is rendered."""

    def test_template_names_a_missing_field(self) -> None:
        """A placeholder with no model field."""
        with pytest.raises(KeySchemaError, match="differ"):

            class Bad(StringKey[int]):
                template = "t:{a}:{b}"
                a: str

    def test_model_field_unused_by_template(self) -> None:
        """A model field the template leaves out (it would not be part of the key)."""
        with pytest.raises(KeySchemaError, match="differ"):

            class Bad(StringKey[int]):
                template = "t:{a}"
                a: str
                b: str

    def test_placeholders_touch(self) -> None:
        """``{a}{b}`` cannot be split back into a and b."""
        with pytest.raises(KeySchemaError, match="touch"):

            class Bad(StringKey[int]):
                template = "t:{a}{b}"
                a: str
                b: str

    @pytest.mark.parametrize("template", ["t:{a}-{b}", "t:{a}.{b}", "t:{a}x{b}", "t:{a}-x"])
    def test_placeholder_followed_without_colon(self, template: str) -> None:
        """A field must be followed by ':' (the only char a part can never hold)."""
        with pytest.raises(KeySchemaError, match="':'"):
            make_schema(template, {"a": str, "b": str} if "{b}" in template else {"a": str})

    @pytest.mark.parametrize(
        "template", ["t:{a:>5}", "t:{a!r}", "t:{a.x}", "t:{a[0]}", "t:{}", "t:{0}"]
    )
    def test_placeholder_must_be_a_plain_name(self, template: str) -> None:
        """Format specs, conversions, attribute/index access and positional fields are refused."""
        with pytest.raises(KeySchemaError):
            make_schema(template, {"a": str})

    @pytest.mark.parametrize(
        "template",
        ["t*:{a}", "t?:{a}", "t[x]:{a}", "t\\:{a}", "t:{{x}}:{a}", "t:}:{a}", "t:{:{a}", "t :{a}"],
    )
    def test_glob_brace_or_space_in_template_text(self, template: str) -> None:
        """The template's own text may not hold glob chars, braces or whitespace."""
        with pytest.raises(KeySchemaError):
            make_schema(template, {"a": str})

    def test_field_named_twice(self) -> None:
        """A field used twice would make rendering ambiguous."""
        with pytest.raises(KeySchemaError, match="twice"):
            make_schema("t:{a}:{a}", {"a": str})

    def test_deriving_from_keyschema_directly(self) -> None:
        """A schema needs a typed base (StringKey, HashKey, ...) to know its Redis type."""
        with pytest.raises(KeySchemaError, match="derive from"):

            class Bad(KeySchema):
                template = "t:{a}"
                a: str

    @pytest.mark.parametrize("ttl", [60, "api_response", None, 1.5])
    def test_ttl_must_be_a_ttl_member(self, ttl: Any) -> None:
        """``ttl`` is a row of the TTL table, never a bare number."""
        with pytest.raises(KeySchemaError, match="TTL member"):
            make_schema("t:{a}", {"a": str}, ttl=ttl)

    @pytest.mark.parametrize("version", [0, -1, True, 1.0, "2"])
    def test_schema_version_must_be_positive_int(self, version: Any) -> None:
        """``schema_version`` is a positive int (0, bools, floats and strs are refused)."""
        with pytest.raises(KeySchemaError, match="schema_version"):
            make_schema("t:{a}", {"a": str}, schema_version=version)

    def test_hash_tag_names_a_non_field(self) -> None:
        """``hash_tag`` must name one of the template's fields."""
        with pytest.raises(KeySchemaError, match="hash_tag"):

            class Bad(StringKey[int]):
                template = "t:{a}"
                hash_tag = "b"
                a: str

    @pytest.mark.parametrize(
        "base",
        [StringKey[int], HashKey[pydantic.BaseModel], ListKey[int], SetKey[str], SortedSetKey[str]],
        ids=str,
    )
    def test_good_schema_on_every_base(self, base: type[KeySchema]) -> None:
        """A well-formed schema is accepted on every typed base (the errors above are real)."""
        good = make_schema("t:{a}:x:{b}", {"a": str, "b": int}, base=base)
        assert good.model_validate({"a": "p", "b": 1}).render() == "t:p:x:1"


def test_model_copy_validates_updates() -> None:
    """A copied key is validated: a bad update cannot produce a key of the wrong shape."""
    key = KBEmbeddingKey(doc_id="d", chunk=1)
    assert key.model_copy(update={"chunk": 2}).render() == "kb:embedding:d:2"
    with pytest.raises(pydantic.ValidationError):
        key.model_copy(update={"chunk": "not-an-int"})
    assert UserProfileKey(user_id=1).model_copy().render() == "user:1:profile"


def test_render_cache_is_invisible() -> None:
    """A rendered (cached) key still equals, hashes and dumps like a fresh one."""
    used = KBEmbeddingKey(doc_id="d", chunk=1)
    assert used.render() == used.render() == "kb:embedding:d:1"
    fresh = KBEmbeddingKey(doc_id="d", chunk=1)
    assert used == fresh
    assert hash(used) == hash(fresh)
    assert dict(used) == {"doc_id": "d", "chunk": 1}
    assert used.model_dump() == fresh.model_dump()
    assert repr(used) == repr(fresh)
