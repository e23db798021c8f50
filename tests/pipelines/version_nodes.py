"""Nodes the version checks are tested on (tests/unit/test_versions.py, test_versions_texts.py): three
Team members, and nodes that return a pydantic model and the same model with an optional field."""

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


def m1(x):
    return 1


def m2(x):
    return 2


def m3(x):
    return 3
