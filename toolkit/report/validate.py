"""Check a JSON document against podtriage's schemas (toolkit.report.schemas) without a
third-party validator: the image stays lean, and the schemas use a small subset of Draft
2020-12 that this module implements fully: ``type``, ``properties``, ``required``,
``additionalProperties`` (a schema), ``items``, ``enum``, ``const``, ``minimum``,
``maximum``, ``pattern``, ``anyOf``, ``if``/``then``/``else`` and local ``$ref``
(``#/$defs/NAME``). A schema using anything else is refused when it is compiled (a test runs
every schema through it and through the ``jsonschema`` reference implementation).

Schemas are compiled once into nested closures; a check walks only what the schema
describes (unknown keys are not visited), so its depth is the schema's, whatever the
document's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

# Any: documents are foreign JSON, schemas are JSON objects.
Check = Callable[[Any, str], str | None]     # (value, where) -> the first problem, or None

_IGNORED = frozenset({"$schema", "$id", "title", "description", "$defs", "$comment"})
_KNOWN = _IGNORED | {"type", "properties", "required", "additionalProperties", "items", "enum", "const",
                     "minimum", "maximum", "pattern", "anyOf", "if", "then", "else", "$ref"}


class SchemaError(ValueError):
    """A schema uses a keyword this validator does not implement."""


def _is_type(value: Any, name: str) -> bool:  # Any: a JSON value
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if isinstance(value, bool):
        return False
    if name == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if name == "number":
        return isinstance(value, (int, float))
    raise SchemaError(f"unknown type {name!r}")


def _json_equal(a: Any, b: Any) -> bool:  # Any: JSON values
    """JSON equality: booleans are not numbers (True != 1), 1 == 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    return bool(a == b)


def _show(value: Any) -> str:  # Any: a JSON value
    text = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


class _Compiler:
    """Compiles one root schema (its $defs resolved lazily, recursion allowed)."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self._root = root
        self._refs: dict[str, Check] = {}

    def ref(self, target: str) -> Check:
        if not target.startswith("#/$defs/"):
            raise SchemaError(f"only local #/$defs references: {target!r}")
        name = target[len("#/$defs/"):]
        if name not in self._refs:
            self._refs[name] = _unset
            compiled = self.compile(self._root["$defs"][name])
            self._refs[name] = compiled
        return lambda value, where: self._refs[name](value, where)

    def compile(self, schema: Mapping[str, Any]) -> Check:
        unknown = set(schema) - _KNOWN
        if unknown:
            raise SchemaError(f"unsupported keywords {sorted(unknown)}")
        checks: list[Check] = []
        if "$ref" in schema:
            checks.append(self.ref(schema["$ref"]))
        if "type" in schema:
            checks.append(_type_check(schema["type"]))
        if "enum" in schema:
            checks.append(_enum_check(list(schema["enum"])))
        if "const" in schema:
            checks.append(_enum_check([schema["const"]]))
        if "minimum" in schema or "maximum" in schema:
            checks.append(_range_check(schema.get("minimum"), schema.get("maximum")))
        if "pattern" in schema:
            checks.append(_pattern_check(re.compile(schema["pattern"])))
        if "properties" in schema or "required" in schema or "additionalProperties" in schema:
            checks.append(self._object(schema))
        if "items" in schema:
            checks.append(self._items(schema["items"]))
        if "anyOf" in schema:
            checks.append(self._any_of(schema["anyOf"]))
        if "if" in schema:
            checks.append(self._if(schema))
        return _all(checks)

    def _object(self, schema: Mapping[str, Any]) -> Check:
        props = {k: self.compile(v) for k, v in schema.get("properties", {}).items()}
        required = tuple(schema.get("required", ()))
        extra = schema.get("additionalProperties")
        rest = self.compile(extra) if isinstance(extra, Mapping) else None

        def check(value: Any, where: str) -> str | None:  # Any: a JSON value
            if not isinstance(value, dict):
                return None
            for key in required:
                if key not in value:
                    return f"{where}: required key {key!r} is missing"
            for key, sub in value.items():
                inner = props.get(key, rest)
                if inner is not None:
                    problem = inner(sub, f"{where}.{key}")
                    if problem:
                        return problem
            return None
        return check

    def _items(self, schema: Mapping[str, Any]) -> Check:
        if not schema:
            return _nothing
        item = self.compile(schema)

        def check(value: Any, where: str) -> str | None:  # Any: a JSON value
            if not isinstance(value, list):
                return None
            for i, sub in enumerate(value):
                problem = item(sub, f"{where}[{i}]")
                if problem:
                    return problem
            return None
        return check

    def _any_of(self, schemas: list[Mapping[str, Any]]) -> Check:
        options = [self.compile(s) for s in schemas]

        def check(value: Any, where: str) -> str | None:  # Any: a JSON value
            problems = [option(value, where) for option in options]
            return None if any(p is None for p in problems) else problems[0]
        return check

    def _if(self, schema: Mapping[str, Any]) -> Check:
        cond = self.compile(schema["if"])
        then = self.compile(schema.get("then", {}))
        other = self.compile(schema.get("else", {}))

        def check(value: Any, where: str) -> str | None:  # Any: a JSON value
            return then(value, where) if cond(value, where) is None else other(value, where)
        return check


def _unset(_value: Any, where: str) -> str | None:  # Any: a JSON value
    raise SchemaError(f"reference used while it is compiled, at {where}")


def _nothing(_value: Any, _where: str) -> str | None:  # Any: a JSON value
    return None


def _all(checks: list[Check]) -> Check:
    if not checks:
        return _nothing
    if len(checks) == 1:
        return checks[0]

    def check(value: Any, where: str) -> str | None:  # Any: a JSON value
        for c in checks:
            problem = c(value, where)
            if problem:
                return problem
        return None
    return check


_PY_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,), "null": (type(None),),
    "number": (int, float), "integer": (int,),
}


def _type_check(spec: str | list[str]) -> Check:
    names = (spec,) if isinstance(spec, str) else tuple(spec)
    for name in names:
        _is_type(None, name)      # raises SchemaError on an unknown type name
    # Exact types: json gives exactly these, and type(True) is bool, never int.
    exact = frozenset(t for name in names for t in _PY_TYPES[name])
    whole_floats = "integer" in names and "number" not in names
    expected = " or ".join(names)

    def check(value: Any, where: str) -> str | None:  # Any: a JSON value
        kind = type(value)
        if kind in exact or (whole_floats and kind is float and value.is_integer()):
            return None
        return f"{where}: {_show(value)} is not {expected}"
    return check


def _enum_check(allowed: list[Any]) -> Check:  # Any: JSON values
    if all(isinstance(a, str) for a in allowed):
        words = frozenset(allowed)

        def check_words(value: Any, where: str) -> str | None:  # Any: a JSON value
            if type(value) is str and value in words:
                return None
            return f"{where}: {_show(value)} is not one of {allowed}"
        return check_words

    def check(value: Any, where: str) -> str | None:  # Any: a JSON value
        if any(_json_equal(value, a) for a in allowed):
            return None
        return f"{where}: {_show(value)} is not one of {allowed}"
    return check


def _range_check(low: float | None, high: float | None) -> Check:
    def check(value: Any, where: str) -> str | None:  # Any: a JSON value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if low is not None and value < low:
            return f"{where}: {_show(value)} is below {low}"
        if high is not None and value > high:
            return f"{where}: {_show(value)} is above {high}"
        return None
    return check


def _pattern_check(pattern: re.Pattern[str]) -> Check:
    def check(value: Any, where: str) -> str | None:  # Any: a JSON value
        if isinstance(value, str) and not pattern.search(value):
            return f"{where}: {_show(value)} does not match {pattern.pattern}"
        return None
    return check


def compile_schema(schema: Mapping[str, Any]) -> Check:
    """A checker for SCHEMA: ``check(document, "$")`` is the first problem or None."""
    return _Compiler(schema).compile(schema)


@cache
def _checker(command: str) -> Check:
    from toolkit.report.schemas import schema_for

    return compile_schema(schema_for(command))


def problem(document: Any) -> str | None:  # Any: a decoded JSON value
    """Why DOCUMENT is not a podtriage document matching its command's schema, or None."""
    if not isinstance(document, dict):
        return f"not a JSON object but {_show(document)}"
    command = document.get("command")
    # A known command's schema holds the shared head too; any other: the head alone.
    return _checker(command if isinstance(command, str) else "")(document, "$")
