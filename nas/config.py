"""Parse YAML once, at the edge, into frozen dataclasses; errors name the key path.

``load_yaml(path)`` reads a file safely (a ``yaml.SafeLoader`` that also reads
``1e-3`` and ``5e4`` as numbers, as YAML 1.2 does; PyYAML alone reads them as
strings). ``parse(cls, data)`` checks a plain mapping against a dataclass: unknown
keys (with a did-you-mean hint and the list of valid keys), missing required keys,
wrong types, values outside ``Literal`` choices, and numeric ranges declared in
field metadata (``field(metadata={"ge": 0})``). Numbers are accepted wherever a
number is: a float field takes ints and numeric strings, an int field takes
integral values (``5e4`` -> 50000). An error raised by a dataclass's own
``__post_init__`` (e.g. ``supernets.SupernetError``) becomes one
:class:`~nas.errors.ConfigError` naming the key path.

Field metadata understood here:

* ``ge`` / ``gt`` / ``le``: numeric bounds;
* ``omit``: keys of a nested dataclass that a file may not set (e.g. a nested
  ``seed`` that the experiment's top-level ``seed`` provides);
* ``path``: ``"file"`` for a path a file reads, ``"plugin"`` for plugin entries
  (module names stay, file paths resolve): :func:`resolve_paths` makes them
  absolute against the file's folder.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from nas.errors import ConfigError

__all__ = ["MAX_VALUES", "expand_env", "load_yaml", "parse", "redact", "resolve_paths", "to_dict"]

T = TypeVar("T")

_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


MAX_VALUES = 100_000
"""Values a file may hold once its aliases are expanded (a "billion laughs" file is refused)."""


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that reads ``1e-3`` and ``5e4`` (no dot) as floats, as YAML 1.2,
    and refuses duplicate keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, typing.Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {seen[key].line + 1})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789"))


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Values under ``node`` with every alias expanded, counted without expanding them."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a recursive alias counts once (the constructor refuses it later)
    size = 1
    if isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(v, memo) for v in node.value)
    memo[id(node)] = min(size, 10 * MAX_VALUES)
    return memo[id(node)]


def _text(path: Path) -> str:
    """The file as text: UTF-8, or UTF-16/32 with a byte-order mark; binary is refused."""
    raw = path.read_bytes()
    for bom, codec in ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
                       (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"), (b"\xef\xbb\xbf", "utf-8-sig")):
        if raw.startswith(bom):
            try:
                return raw.decode(codec)
            except UnicodeDecodeError:
                break
    if b"\x00" in raw:
        raise ConfigError(f"{path}: not a text file (it holds NUL bytes); expected YAML")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path} line {line}: not UTF-8 text (byte {raw[exc.start]:#04x}); "
                          "save the file as UTF-8") from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping safely; errors name the file (and line for syntax errors).

    Refused with one line: binary or undecodable files, duplicate keys, and aliases
    that expand to more than :data:`MAX_VALUES` values (a "billion laughs" file).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        text = _text(path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is not None and _expanded_size(node, {}) > MAX_VALUES:
                raise ConfigError(f"{path}: its aliases expand to more than {MAX_VALUES:,} "
                                  "values; refused (write the values out)")
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply (or a recursive alias)") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def parse(cls: type[T], data: Any, path: str = "", omit: tuple[str, ...] = ()) -> T:
    """Build dataclass ``cls`` from ``data``; raise :class:`ConfigError` naming the key path.

    Args:
        cls: a (frozen) dataclass; nested dataclasses, tuples, lists, dicts, unions and
            ``Literal`` fields are parsed recursively.
        data: plain data (e.g. from :func:`load_yaml`), or an instance of ``cls``.
        path: key path of ``data`` in the file, for messages (``""``: the top level).
        omit: field names of ``cls`` that ``data`` may not set.
    """
    where = path or "config"
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of keys for {cls.__name__}, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name not in omit}
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        hint = difflib.get_close_matches(str(key), list(fields), n=1)
        maybe = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ConfigError(
            f"{_join(path, key)}: unknown key{maybe}; valid keys: {', '.join(fields)}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, f in fields.items():
        key_path = _join(path, name)
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{key_path}: required key is missing")
            continue
        value = _convert(hints[name], data[name], key_path, tuple(f.metadata.get("omit", ())))
        _check_range(f, value, key_path)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # the dataclass's own checks (SupernetError, ...)
        raise ConfigError(_locate(str(exc), path, fields)) from None


def _locate(message: str, path: str, fields: Mapping[str, Any]) -> str:
    """Prefix a dataclass's own error with the key path: a message that starts with one of
    its field names (``"lr: must be > 0"``) continues the path, any other gets ``path: ``."""
    head = re.match(r"[A-Za-z_]\w*", message)
    if head and head.group(0) in fields and message[head.end():head.end() + 1] in (":", ".", "["):
        return _join(path, message)
    return f"{path or 'config'}: {message}"


def _check_range(f: dataclasses.Field, value: Any, path: str) -> None:
    meta = f.metadata
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    for key, ok, words in (("ge", value >= meta.get("ge", value), ">="),
                           ("gt", "gt" not in meta or value > meta["gt"], ">"),
                           ("le", value <= meta.get("le", value), "<=")):
        if key in meta and not ok:
            raise ConfigError(f"{path}: must be {words} {meta[key]}, got {value!r}")


def _number(value: Any) -> float | None:
    """``value`` as a float when it is a number or a numeric string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _convert(tp: Any, value: Any, path: str, omit: tuple[str, ...] = ()) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(option, value, path, omit)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else
                          f"{path}: {value!r} matches none of {', '.join(_type_name(a) for a in args)}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: {value!r} is not allowed; allowed values: "
                              f"{', '.join(repr(a) for a in args)}")
        return value
    if dataclasses.is_dataclass(tp):
        return parse(tp, value, path, omit)
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_convert(inner, v, _join(path, i)) for i, v in enumerate(value)]
        return tuple(items) if (origin or tp) is tuple else items
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        inner = args[1] if len(args) == 2 else Any
        return {str(k): _convert(inner, v, _join(path, str(k))) for k, v in value.items()}
    return _scalar(tp, value, path)


def _scalar(tp: Any, value: Any, path: str) -> Any:
    if tp is float:
        number = _number(value)
        if number is not None:
            if not math.isfinite(number):
                raise ConfigError(f"{path}: must be a finite number, got {value!r}")
            return number
    elif tp is int:
        number = _number(value)
        if number is not None and number.is_integer():
            return value if isinstance(value, int) else int(number)  # "5e4" -> 50000
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is str:
        if isinstance(value, str):
            return value
    elif isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"{path}: expected {_type_name(tp)}, got {value!r}")


def to_dict(obj: Any) -> Any:
    """A config dataclass back to plain YAML/JSON data (tuples become lists), which
    :func:`parse` reads back to an equal dataclass."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in dataclasses.fields(obj):
            value = to_dict(getattr(obj, f.name))
            omit = f.metadata.get("omit", ())
            if omit and isinstance(value, dict):  # keys a file may not set stay out
                value = {k: v for k, v in value.items() if k not in omit}
            out[f.name] = value
        return out
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def _is_file_spec(text: str) -> bool:
    return text.endswith(".py") or "/" in text or "\\" in text


def _absolute(value: str, base: Path, kind: str) -> str:
    if "://" in value or (kind == "plugin" and not _is_file_spec(value)):
        return value  # a URL, or a plugin module name
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def resolve_paths(obj: T, base: str | Path) -> T:
    """Make the paths a config reads absolute, relative to ``base`` (the file's folder).

    Walks nested dataclasses (and tuples of them); a field marked
    ``metadata={"path": "file"}`` (a string, or a tuple of strings) is resolved
    unless it is absolute or a URL; ``"plugin"`` entries are resolved only when they
    name a ``.py`` file or contain a slash (module names stay).
    """
    base = Path(base)
    if isinstance(obj, tuple):
        return type(obj)(resolve_paths(v, base) for v in obj)  # type: ignore[return-value]
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        return obj
    changes = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        kind = f.metadata.get("path")
        if kind and isinstance(value, str):
            changes[f.name] = _absolute(value, base, kind)
        elif kind and isinstance(value, tuple):
            changes[f.name] = tuple(_absolute(v, base, kind) for v in value)
        elif dataclasses.is_dataclass(value) or isinstance(value, tuple):
            changes[f.name] = resolve_paths(value, base)
    return dataclasses.replace(obj, **changes) if changes else obj


_SECRET = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)(?P<secret>[^@\s/]+)(?P<tail>@)")
_ENV = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}")


def redact(value: T) -> T:
    """``value`` (text, or plain data holding text) with the password of every URL
    (``scheme://user:PASSWORD@host``) replaced by ``***``: what is written to run
    folders, reports and logs. A ``${VAR}`` reference is not a secret and stays."""
    if isinstance(value, str):
        return _SECRET.sub(lambda m: m["head"] + (m["secret"] if _ENV.fullmatch(m["secret"])
                                                  else "***") + m["tail"], value)  # type: ignore[return-value]
    if isinstance(value, Mapping):
        return {k: redact(v) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v) for v in value)  # type: ignore[return-value]
    return value


def expand_env(text: str, where: str = "value") -> str:
    """Replace each ``${VAR}`` in ``text`` by the environment variable's value, at the
    moment it is used (so a password given as ``${PGPASSWORD}`` is never written to a
    file); an unset variable is one :class:`ConfigError` naming ``where``."""
    import os

    def value(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in os.environ:
            raise ConfigError(f"{where}: environment variable {name} is not set")
        return os.environ[name]

    return _ENV.sub(value, text)
