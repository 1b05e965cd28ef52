"""The operations language of Roboflow's filter, property and condition blocks (the supported subset).

Statements: ``StatementGroup`` (``operator`` "and"/"or", ``statements``), ``BinaryStatement``
(``left_operand``, ``comparator``, ``right_operand``, ``negate``), ``UnaryStatement`` (``operand``,
``operator``, ``negate``). Operands: ``StaticOperand`` (``value``), ``DynamicOperand`` (``operand_name``,
``operations``). Operations: see ``OPERATIONS``. Everything is compiled once into closures; a mistake is an
``InvalidWorkflow`` naming the step and field.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from services.workflows.data import Classification, Detections, xyxy
from services.workflows.definition import InvalidWorkflow

Env = dict[str, Any]
Fn = Callable[[Any], Any]


def _detection_property(name: str, where: str) -> Fn:
    getters: dict[str, Fn] = {
        "class_name": lambda p: p["class"], "class_id": lambda p: p["class_id"],
        "confidence": lambda p: p["confidence"], "detection_id": lambda p: p.get("detection_id", ""),
        "x_min": lambda p: xyxy(p)[0], "y_min": lambda p: xyxy(p)[1], "x_max": lambda p: xyxy(p)[2],
        "y_max": lambda p: xyxy(p)[3], "center_x": lambda p: p["x"], "center_y": lambda p: p["y"],
        "width": lambda p: p["width"], "height": lambda p: p["height"], "size": lambda p: p["width"] * p["height"],
    }
    if name not in getters:
        raise InvalidWorkflow(f"{where}: property_name {name!r} is not supported; supported: {', '.join(getters)}")
    return getters[name]


def _classification_property(name: str, where: str) -> Fn:
    def top(c: Classification) -> tuple[str, float]:
        body = c.body
        if "top" in body:
            return body["top"], body["confidence"]
        best = max(body["predictions"].items(), key=lambda kv: kv[1]["confidence"], default=("", {"confidence": 0.0}))
        return best[0], best[1]["confidence"]

    def classes(c: Classification) -> list[str]:
        preds = c.body["predictions"]
        return c.body.get("predicted_classes", []) if isinstance(preds, dict) else [p["class"] for p in preds]

    def confidences(c: Classification) -> list[float]:
        preds = c.body["predictions"]
        values = preds.values() if isinstance(preds, dict) else preds
        return [v["confidence"] for v in values]

    getters: dict[str, Fn] = {"top_class": lambda c: top(c)[0], "top_class_confidence": lambda c: top(c)[1],
                              "all_classes": classes, "all_confidences": confidences}
    if name not in getters:
        raise InvalidWorkflow(f"{where}: property_name {name!r} is not supported; supported: {', '.join(getters)}")
    return getters[name]


def _need(value: Any, kind: type, op: str) -> Any:
    if not isinstance(value, kind):
        raise InvalidWorkflow(f"operation {op} needs {kind.__name__}, got {type(value).__name__}")
    return value


def _operation(raw: Any, where: str) -> Fn:
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise InvalidWorkflow(f"{where}: each operation is an object with a type")
    kind = raw["type"]
    if kind == "DetectionsPropertyExtract":
        get = _detection_property(raw.get("property_name", ""), where)
        return lambda v: [get(p) for p in _need(v, Detections, kind).predictions]
    if kind == "ExtractDetectionProperty":
        get = _detection_property(raw.get("property_name", ""), where)
        return lambda v: get(_need(v, dict, kind))
    if kind == "ClassificationPropertyExtract":
        get = _classification_property(raw.get("property_name", ""), where)
        return lambda v: get(_need(v, Classification, kind))
    if kind == "SequenceLength":
        return lambda v: len(v.predictions) if isinstance(v, Detections) else len(_need(v, list, kind))
    if kind == "DetectionsFilter":
        keep = statement(raw.get("filter_operation"), f"{where}.filter_operation")

        def filtered(v: Any, env: Env | None = None) -> Detections:
            d = _need(v, Detections, kind)
            return d.replace([p for p in d.predictions if keep({**(env or {}), "_": p})])

        filtered.wants_env = True  # type: ignore[attr-defined]
        return filtered
    raise InvalidWorkflow(f"{where}: operation {kind!r} is not supported; supported: {', '.join(OPERATIONS)}")


OPERATIONS = ("DetectionsPropertyExtract", "ExtractDetectionProperty", "ClassificationPropertyExtract",
              "SequenceLength", "DetectionsFilter")


def operations(raw: Any, where: str) -> Callable[[Any, Env], Any]:
    """A chain of operations, applied in order."""
    if not isinstance(raw, list):
        raise InvalidWorkflow(f"{where}: operations must be a list")
    chain = [_operation(op, f"{where}[{i}]") for i, op in enumerate(raw)]

    def apply(value: Any, env: Env) -> Any:
        try:
            for fn in chain:
                value = fn(value, env) if getattr(fn, "wants_env", False) else fn(value)
        except (TypeError, KeyError, ValueError, AttributeError) as exc:  # the caller's operations, not a bug here
            raise InvalidWorkflow(f"{where}: the operations do not apply to the value "
                                  f"({type(exc).__name__}: {exc})") from None
        return value

    return apply


def _operand(raw: Any, where: str) -> Callable[[Env], Any]:
    if not isinstance(raw, dict):
        raise InvalidWorkflow(f"{where}: an operand is an object (StaticOperand or DynamicOperand)")
    if raw.get("type") == "StaticOperand":
        value = raw.get("value")
        return lambda env: value
    if raw.get("type") == "DynamicOperand":
        name = raw.get("operand_name", "_")
        chain = operations(raw.get("operations", []), f"{where}.operations")

        def dynamic(env: Env) -> Any:
            if name not in env:
                raise InvalidWorkflow(f"{where}: operand_name {name!r} names no parameter; known: {', '.join(env)}")
            return chain(env[name], env)

        return dynamic
    raise InvalidWorkflow(f"{where}: operand type {raw.get('type')!r} is not supported; supported: StaticOperand, "
                          "DynamicOperand")


def _number(fn: Callable[[float, float], bool]) -> Callable[[Any, Any], bool]:
    return lambda a, b: isinstance(a, int | float) and isinstance(b, int | float) and fn(a, b)


COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne,
    "(Number) ==": _number(operator.eq), "(Number) !=": _number(operator.ne),
    "(Number) >": _number(operator.gt), "(Number) >=": _number(operator.ge),
    "(Number) <": _number(operator.lt), "(Number) <=": _number(operator.le),
    "in (Sequence)": lambda a, b: isinstance(b, list | tuple | set) and a in b,
    "(Sequence) contains": lambda a, b: isinstance(a, list | tuple | set) and b in a,
    "(String) startsWith": lambda a, b: isinstance(a, str) and isinstance(b, str) and a.startswith(b),
    "(String) endsWith": lambda a, b: isinstance(a, str) and isinstance(b, str) and a.endswith(b),
    "(String) contains": lambda a, b: isinstance(a, str) and isinstance(b, str) and b in a,
}
UNARY: dict[str, Callable[[Any], bool]] = {
    "Exists": lambda a: a is not None, "DoesNotExist": lambda a: a is None,
    "(Boolean) is True": lambda a: a is True, "(Boolean) is False": lambda a: a is False,
    "(Sequence) is empty": lambda a: len(a) == 0 if isinstance(a, list) else False,
    "(Sequence) is not empty": lambda a: len(a) > 0 if isinstance(a, list) else False,
}


def statement(raw: Any, where: str) -> Callable[[Env], bool]:
    """A statement (group, binary or unary) as a predicate over the named values."""
    if not isinstance(raw, dict):
        raise InvalidWorkflow(f"{where}: a statement is an object (StatementGroup, BinaryStatement, UnaryStatement)")
    kind, negate = raw.get("type"), bool(raw.get("negate", False))
    if kind == "StatementGroup":
        op = raw.get("operator", "and")
        if op not in ("and", "or"):
            raise InvalidWorkflow(f"{where}: operator {op!r} is not supported; supported: and, or")
        listed = raw.get("statements")
        if not isinstance(listed, list):
            raise InvalidWorkflow(f"{where}: a StatementGroup needs statements (a list)")
        parts = [statement(s, f"{where}.statements[{i}]") for i, s in enumerate(listed)]
        if not parts:
            raise InvalidWorkflow(f"{where}: a StatementGroup needs statements")
        combine = all if op == "and" else any
        return lambda env: combine(p(env) for p in parts) != negate
    if kind == "BinaryStatement":
        comparator = raw.get("comparator")
        name = comparator.get("type") if isinstance(comparator, dict) else comparator
        if not isinstance(name, str) or name not in COMPARATORS:
            raise InvalidWorkflow(f"{where}: comparator {name!r} is not supported; supported: {', '.join(COMPARATORS)}")
        left = _operand(raw.get("left_operand"), f"{where}.left_operand")
        right = _operand(raw.get("right_operand"), f"{where}.right_operand")
        compare = COMPARATORS[name]
        return lambda env: compare(left(env), right(env)) != negate
    if kind == "UnaryStatement":
        operator_ = raw.get("operator")
        name = operator_.get("type") if isinstance(operator_, dict) else operator_
        if not isinstance(name, str) or name not in UNARY:
            raise InvalidWorkflow(f"{where}: operator {name!r} is not supported; supported: {', '.join(UNARY)}")
        operand, test = _operand(raw.get("operand"), f"{where}.operand"), UNARY[name]
        return lambda env: test(operand(env)) != negate
    raise InvalidWorkflow(f"{where}: statement type {kind!r} is not supported; supported: StatementGroup, "
                          "BinaryStatement, UnaryStatement")
