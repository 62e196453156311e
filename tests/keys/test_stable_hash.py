"""stable_hash: the same digest for the same value in every process and under every hash seed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pydantic
import pytest

from arketic_cache import InvalidInputError, stable_hash


class Query(pydantic.BaseModel):
    text: str
    filters: dict[str, Any]
    top_k: int = 5


class TaggedQuery(pydantic.BaseModel):
    text: str
    tags: set[str]


STRINGS = {f"item-{i}" for i in range(40)}


CROSS_PROCESS_VALUES = (
    "[STRINGS, {'b': 2, 'a': [1, 2.5, None, True], 'c': {'y': 'z'}}, frozenset(STRINGS)]"
)


CROSS_PROCESS_SCRIPT = f"""
import json
from arketic_cache import stable_hash
STRINGS = {{f"item-{{i}}" for i in range(40)}}
print(json.dumps([stable_hash(v) for v in {CROSS_PROCESS_VALUES}]))
"""


MODEL_SET_SCRIPT = """
import pydantic
from arketic_cache import stable_hash
class TaggedQuery(pydantic.BaseModel):
    text: str
    tags: set[str]
print(stable_hash(TaggedQuery(text="q", tags={f"item-{i}" for i in range(40)})))
"""


def hash_in_subprocess(script: str, seed: str) -> str:
    """Run ``script`` in a fresh interpreter with PYTHONHASHSEED=seed; return its stdout."""
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


class TestStableHash:
    """``stable_hash`` is a function of the logical value only."""

    def test_shape(self) -> None:
        """32 lower-case hex digits."""
        assert re.fullmatch(r"[0-9a-f]{32}", stable_hash({"q": "x"}))

    def test_dict_key_order_does_not_matter(self) -> None:
        """The same dict in another key order, at any depth, hashes alike."""
        one = {"a": 1, "b": {"x": [1, 2], "y": None}, "c": "z"}
        two = {"c": "z", "b": {"y": None, "x": [1, 2]}, "a": 1}
        assert stable_hash(one) == stable_hash(two)

    def test_set_order_does_not_matter(self) -> None:
        """A set hashes alike whatever order it was built in; a frozenset like a set."""
        forward = set()
        for s in sorted(STRINGS):
            forward.add(s)
        backward = set()
        for s in sorted(STRINGS, reverse=True):
            backward.add(s)
        assert stable_hash(forward) == stable_hash(backward) == stable_hash(frozenset(STRINGS))
        assert stable_hash({"tags": {3, 1, 2}}) == stable_hash({"tags": {2, 3, 1}})

    def test_model_hashes_like_its_dict(self) -> None:
        """A pydantic model hashes like its JSON dict, in any key order."""
        query = Query(text="redis", filters={"lang": "en", "year": 2024})
        as_dict = {"top_k": 5, "filters": {"year": 2024, "lang": "en"}, "text": "redis"}
        assert stable_hash(query) == stable_hash(as_dict)
        assert stable_hash([query]) == stable_hash([as_dict])

    @pytest.mark.parametrize(
        ("one", "two"),
        [
            ({"a": 1}, {"a": 2}),
            ({"a": 1}, {"b": 1}),
            ([1, 2], [2, 1]),
            ("1", 1),
            (1, 1.5),
            (1, True),
            (None, "null"),
            ({"a": None}, {}),
            ("ü", "u"),
            ({"a": [1]}, {"a": 1}),
        ],
        ids=repr,
    )
    def test_different_values_differ(self, one: Any, two: Any) -> None:
        """Different values hash differently."""
        assert stable_hash(one) != stable_hash(two)

    @pytest.mark.parametrize(
        "value",
        [
            float("nan"),
            [1.0, float("nan")],
            {"score": float("nan")},
            {float("nan")},
            Query(text="x", filters={"score": float("nan")}),
            object(),
            {"a": object()},
            b"\xff\xfe",
            {1: "a", "1": "b"},  # two keys that share a JSON name: one would be lost
        ],
        ids=repr,
    )
    def test_no_json_form_is_invalid_input(self, value: Any) -> None:
        """NaN, clashing keys and unserialisable objects raise InvalidInputError."""
        with pytest.raises(InvalidInputError):
            stable_hash(value)

    def test_same_across_processes(self) -> None:
        """The hash of a set of strs and of a dict is the same under any PYTHONHASHSEED."""
        here = [
            stable_hash(v)
            for v in [
                STRINGS,
                {"b": 2, "a": [1, 2.5, None, True], "c": {"y": "z"}},
                frozenset(STRINGS),
            ]
        ]
        assert json.loads(hash_in_subprocess(CROSS_PROCESS_SCRIPT, "0")) == here
        assert json.loads(hash_in_subprocess(CROSS_PROCESS_SCRIPT, "12345")) == here

    def test_model_with_a_set_is_same_across_processes(self) -> None:
        """A model holding a set hashes alike under any PYTHONHASHSEED (a set is unordered)."""
        here = stable_hash(TaggedQuery(text="q", tags=STRINGS))
        assert hash_in_subprocess(MODEL_SET_SCRIPT, "0") == here
        assert hash_in_subprocess(MODEL_SET_SCRIPT, "12345") == here

    def test_pinned_value(self) -> None:
        """Regression guard for cross-version stability: keys built from stable_hash live in
        Redis across deploys, so a changed algorithm (hash, JSON layout, set order) must fail."""
        value = {
            "query": "ünïcode search",
            "filters": {
                "tags": frozenset({"b", "a"}),
                "limit": 10,
                "score": 0.5,
                "deleted": None,
                "exact": True,
            },
        }
        # Pinned regression value, computed once (Python 3.11, pydantic 2.14); it must never
        # change across Python, pydantic or library versions.
        assert stable_hash(value) == "97a3db69d24c5fc9b090cbbc7bcdb899"
        # Pinned regression value for a bare str.
        assert stable_hash("hello") == "0c4cd6167b7a46960ef8a6c781e1fce8"
