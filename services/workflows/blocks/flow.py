"""Continue-if: the steps it names run only where its condition holds (elsewhere they, and what depends on
them, answer null)."""

from __future__ import annotations

from typing import Any

from services.workflows import kinds, operations
from services.workflows.blocks.base import Block, Item, Param, RunContext
from services.workflows.definition import InvalidWorkflow, is_selector, selector

GATE = "_gate"  # the internal output the gated steps read


class ContinueIf(Block):
    id = "roboflow_core/continue_if@v1"
    aliases = ("ContinueIf",)
    summary = ("Runs next_steps only where condition_statement holds over evaluation_parameters; they must be at "
               "the same level (images or crops) as this step.")
    params = {
        "condition_statement": Param("A statement (StatementGroup, BinaryStatement, UnaryStatement).",
                                     literal=(dict,), required=True),
        "evaluation_parameters": Param("Named values the statement uses.", kinds=(kinds.ANY,),
                                       literal=(str, int, float, bool, list), shape="mapping", default={}),
        "next_steps": Param("The steps to run where the condition holds ($steps.<name>).", literal=(list,),
                            required=True),
    }
    image_free = True  # predictions and values only
    outputs = {GATE: kinds.BOOLEAN}

    def check(self, step: str, literals: dict[str, Any]) -> Any:
        where = f"step {step!r}: next_steps"
        targets = literals.get("next_steps")
        if not isinstance(targets, list) or not targets:
            raise InvalidWorkflow(f"{where} must list at least one $steps.<name>")
        names = []
        for target in targets:
            if not is_selector(target) or not str(target).startswith("$steps."):
                raise InvalidWorkflow(f"{where}: {target!r} is not a step ($steps.<name>)")
            names.append(selector(target if target.count(".") == 2 else target + ".*", where).step)
        return operations.statement(literals.get("condition_statement"), f"step {step!r}: condition_statement"), names

    async def run(self, ctx: RunContext, config: Any, items: list[Item]) -> list[Item]:
        predicate, _ = config
        out = []
        for item in items:
            try:
                holds = bool(predicate(dict(item.get("evaluation_parameters") or {})))
            except (TypeError, KeyError, ValueError, AttributeError) as exc:
                raise InvalidWorkflow(f"condition_statement does not apply to its values ({type(exc).__name__}: "
                                      f"{exc})") from None
            out.append({GATE: holds})
        return out
