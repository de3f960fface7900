"""Shared pieces of the policy models."""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from ..names import check_name


def typo_of_required(model: type[BaseModel], data: Any) -> Any:
    """A misspelt required key (`nmae:`) is one mistake: report the unknown key
    (with its did-you-mean), not also the required one as missing."""
    if isinstance(data, dict):
        fields = model.model_fields
        unknown = [k for k in data if isinstance(k, str) and k not in fields]
        for name, info in fields.items() if unknown else ():
            if info.is_required() and name not in data:
                close = difflib.get_close_matches(name, unknown, n=1)
                if close:
                    refuse_unknown_key(close, ())
    return data


def one_or_many(value: Any) -> Any:
    """`key: x` is read as `key: [x]`."""
    return [value] if isinstance(value, str) else value


OneOrMany = BeforeValidator(one_or_many)


# The `default_factory` of list and dict fields.  Not the builtins `list` and `dict`:
# pydantic reads each factory's signature when it builds a schema, and a builtin's is
# parsed from its text by the tokenizer, which every `validate` run paid for.
def empty_list() -> list[Any]:
    return []


def empty_dict() -> dict[Any, Any]:
    return {}


Strings = Annotated[list[str], OneOrMany]


class _Strict(BaseModel):
    # defer_build: the schema is built on first use, once for the whole Policy
    # (nested models inline), not a validator per model class at import.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _typo_of_required(cls, data: Any) -> Any:
        return typo_of_required(cls, data)


def refuse_unknown_key(keys: Iterable[object], known: Iterable[str]) -> None:
    """Raise the unknown-key error (the loader adds the key to the path and a
    did-you-mean) for the first key not in `known`: for checks that would
    otherwise report a consequence of the typo (`polcy:` -> missing `policy`)."""
    unknown = next((k for k in keys if k not in set(known)), None)
    if unknown is not None:
        raise PydanticCustomError("unknown_key", "unknown key {key}", {"key": unknown})


def check_text(value: str, what: str) -> str:
    """Free text (a sender's name, a reason) is shown in terminals and Markdown
    tables: control characters and bidirectional overrides would rewrite what
    the reader sees, so they are refused at load."""
    bad = next((c for c in value if unicodedata.category(c) in {"Cc", "Cf"}), None)
    if bad is not None:
        raise ValueError(
            f"{what} contains the control character U+{ord(bad):04X}: write it on one line "
            "of plain text"
        )
    return value


def check_hostname(value: str, what: str) -> str:
    """A name-typed field: normalised, A-labels; InvalidName (a ValueError,
    which pydantic reports at the key) says what is wrong."""
    return check_name(value, what, service_labels=True)
