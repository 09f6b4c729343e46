"""(I/O) ``LAKE_*`` environment variables read into settings data, one variable per setting.

Every variable must name a setting: ``LAKE_STORAGE__ROOT`` is ``storage.root`` (nested keys are
joined by ``__``, names are case-insensitive), and a variable naming nothing, such as
``LAKE_STORGE__ROOT``, is an error that names it rather than a value silently ignored.
``LAKE_CONFIG`` names the YAML file and is not a setting.

Values are text; pydantic converts them. Lists take commas (``BTCUSDT,ETHUSDT``) or JSON
(``["BTCUSDT","ETHUSDT"]``); a mapping or a whole section takes a JSON object, or one variable
per key below it (``LAKE_STORAGE__OPTIONS__AWS_REGION=eu-west-1``; keys below a mapping keep the
case they are written in).
"""

from __future__ import annotations

import difflib
import json
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

PREFIX = "LAKE_"
DELIMITER = "__"
NOT_SETTINGS = frozenset({"LAKE_CONFIG"})
"""``LAKE_*`` variables that are read elsewhere and name no setting."""

_LIST_EXAMPLES = {"symbols": "BTCUSDT,ETHUSDT", "streams": "trade,bookTicker"}

Loc = tuple[str, ...]


class EnvError(ValueError):
    """A variable that names no setting, or whose value does not have the setting's form."""


@dataclass
class EnvLayer:
    """The settings the environment gives, and the variable that gave each key path."""

    data: dict[str, Any] = field(default_factory=dict)
    names: dict[Loc, str] = field(default_factory=dict)


def read_environment(model: type[BaseModel], environ: Mapping[str, str]) -> EnvLayer:
    """Read every ``LAKE_*`` variable of ``environ`` as a setting of ``model``.

    Raises:
        EnvError: one line naming the variable: it names no setting (with the nearest that
            exists), or its value is not of the expected form.
    """
    layer = EnvLayer()
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(PREFIX) or upper in NOT_SETTINGS:
            continue
        loc, kind = _resolve(model, name)
        node = layer.data
        for key in loc[:-1]:  # a section set whole (JSON) merges with its keys set one by one
            node = node.setdefault(key, {})
        node[loc[-1]] = _decode(name, loc[-1], kind, environ[name])
        layer.names[loc] = name
    return layer


def _resolve(model: type[BaseModel], name: str) -> tuple[Loc, Any]:
    """The key path a variable names, and the type found there."""
    parts = name[len(PREFIX) :].split(DELIMITER)
    node: Any = model
    loc: list[str] = []
    for part in parts:
        if _is_model(node) and part.lower() in node.model_fields:
            loc.append(part.lower())
            node = _unwrap_optional(node.model_fields[part.lower()].annotation)
        elif get_origin(node) is dict and part:
            loc.append(part)
            node = get_args(node)[1]
        else:
            near = difflib.get_close_matches(name.upper(), list(_names(model)), n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise EnvError(f"{name}: no such setting{hint}")
    return tuple(loc), node


def _names(model: type[BaseModel], prefix: str = PREFIX) -> Iterator[str]:
    """Every variable name that sets a leaf of ``model``."""
    for key, info in model.model_fields.items():
        name = f"{prefix}{key.upper()}"
        inner = _unwrap_optional(info.annotation)
        if _is_model(inner):
            yield from _names(inner, name + DELIMITER)
        else:
            yield name


def _decode(name: str, key: str, kind: Any, raw: str) -> Any:
    origin = get_origin(kind)
    if origin in (tuple, list):
        text = raw.strip()
        if not text.startswith("["):
            return [p.strip() for p in text.split(",") if p.strip()]
        value = _json(text)
        if not isinstance(value, list):
            example = _LIST_EXAMPLES.get(key, "a,b")
            items = json.dumps(example.split(","), separators=(",", ":"))
            raise EnvError(f"{name}: expected a list such as {example} or {items}")
        return value
    if origin is dict or _is_model(kind):
        value = _json(raw)
        if not isinstance(value, dict):
            raise EnvError(
                f'{name}: expected a JSON object such as {{"key": "value"}}, or one variable '
                f"per key: {name}{DELIMITER}KEY=value"
            )
        return value
    return raw


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def _is_model(node: Any) -> bool:
    return isinstance(node, type) and issubclass(node, BaseModel)


def _unwrap_optional(annotation: Any) -> Any:
    """``X | None`` → ``X``; anything else unchanged."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation
