"""Nodes that return pydantic models, for the tests of output schemas across versions
(tests/unit/test_versions.py, test_versions_texts.py): a model, and the same model with an optional field."""

from __future__ import annotations

from pydantic import BaseModel


class Out(BaseModel):
    text: str


class OutOptional(BaseModel):
    text: str
    score: float = 0.0


def produce(x) -> Out:
    return Out(text="t")


def produce_optional(x) -> OutOptional:
    return OutOptional(text="t")
