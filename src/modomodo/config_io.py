"""Plain data to typed config dataclasses, and the checks the config sections share.

``from_dict`` rebuilds a dataclass from YAML or JSON data, rejecting unknown keys and wrong types
with an error that names the key path (``train.steps: expected int``); ``Literal`` fields accept
only their values, so a section names its allowed values once, in its type. Each section checks
the rest next to its fields (``validate``), with :func:`positive` and :func:`in_range`.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config value is unknown, mistyped or inconsistent; the message names the key."""


PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
"""Domain and benchmark names: they become folder names, metric labels and store key segments."""


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one ``dotted.key=value`` override to a raw config mapping."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r}: expected dotted.key=value")
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: {part!r} is not a mapping")
    try:
        node[parts[-1]] = yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise ConfigError(f"override {item!r}: the value is not valid YAML: {e}") from None


def from_dict(cls: type, data: Any, where: str = "") -> Any:
    """Build dataclass ``cls`` from plain data, rejecting unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where or 'config'}: unknown key(s) {unknown}; allowed: {sorted(names)}")
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin is typing.Literal:
        return one_of(where, value, typing.get_args(tp))
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        (item,) = typing.get_args(tp)
        return [_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        kt, vt = typing.get_args(tp)
        return {_coerce(kt, k, where): _coerce(vt, v, f"{where}.{k}") for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        # Only ``X | None`` (an optional value); other unions would make a value's meaning ambiguous.
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(members) != 1 or len(typing.get_args(tp)) != 2:
            raise ConfigError(f"{where}: union types other than 'X | None' are not supported in configs")
        return None if value is None else _coerce(members[0], value, where)
    return _scalar(tp, value, where)


def _scalar(tp: type, value: Any, where: str) -> Any:
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        # YAML 1.1 reads "1e-4" (no dot) as a string; accept numeric strings, reject anything else.
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected float, got str {value!r}") from None
    if tp is str and value is None:
        return ""
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
    return value


def one_of(key: str, value: Any, allowed: typing.Iterable[Any]) -> Any:
    """``value`` when it is one of ``allowed`` (a ``Literal``'s values or a registry's names)."""
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(f"{key}: must be one of {allowed}, got {value!r}")
    return value


def all_known(key: str, values: typing.Iterable[str], known: typing.Iterable[str], what: str = "") -> None:
    """Every one of ``values`` is among ``known`` (a registry's names)."""
    unknown, known = sorted(set(values) - set(known)), sorted(known)
    if unknown:
        raise ConfigError(f"{key}: unknown {what + ' ' if what else ''}{unknown}; known: {', '.join(known)}")


def positive(key: str, value: int) -> None:
    if value < 1:
        raise ConfigError(f"{key}: must be >= 1, got {value}")


def in_range(key: str, value: float, *, low: float, high: float = math.inf, low_open: bool = False) -> None:
    """``low <= value < high`` (``low < value`` with ``low_open``), and never NaN or infinite."""
    if not math.isfinite(value) or value < low or (low_open and value == low) or value >= high:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g})"
        raise ConfigError(f"{key}: must be a finite number in {interval}, got {value}")


def plain_name(key: str, name: object) -> None:
    if not isinstance(name, str) or not PLAIN_NAME.fullmatch(name):
        raise ConfigError(
            f"{key}: name {name!r} is not a plain identifier (a letter, then up to 63 letters, digits, "
            "'_' or '-'): it names folders and metric labels"
        )
