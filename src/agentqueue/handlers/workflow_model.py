"""A workflow's definition: named steps, each a job type with its input, run in the order their
dependencies say (a DAG), checked whole before anything is queued.

A step's input may take values from the workflow's own `input` or from earlier steps' results
with a reference, an object whose only key is `$ref`, anywhere in the step's input:

    {"$ref": "input.text"}                   the workflow's input, field `text`
    {"$ref": "steps.fetch.result.text"}      step `fetch`'s result, field `text`
    {"$ref": "steps.split.result.parts.0"}   …a list's first item (a number indexes a list)
    {"$ref": "steps.fetch.result"}           the whole result

A reference to a step makes the step a dependency (as if listed in `dependsOn`); `dependsOn`
adds dependencies for order alone. Refused at submission: duplicate ids, an unknown step or
job type, a cycle, a reference to a step that is not a dependency, input a step's job type can
never accept (its fields other than those a reference fills are checked against the type's
input model, with `input.` references filled in first).
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from agentqueue.definition import describe_errors

WORKFLOW_EXECUTION = "workflow-execution"
BULK_OPERATION = "bulk-operation"
# Types a step cannot be: a workflow inside a workflow would need its own waiting, and a
# bulk operation's items are better run by a bulk-operation job of their own.
NOT_A_STEP = (WORKFLOW_EXECUTION,)
MAX_STEPS = 100
REF = "$ref"

StepId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class MissingValue(LookupError):
    """A reference whose path leads nowhere."""


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: StepId = Field(description="unique within the workflow; letters, digits, _ and -")
    type: str = Field(min_length=1, max_length=200, description="a job type agentqueue runs")
    input: dict[str, Any] = Field(
        default_factory=dict,
        description='the job\'s data; {"$ref": "steps.<id>.result.<path>"} or '
                    '{"$ref": "input.<path>"} takes a value from an earlier step or the '
                    "workflow's input")
    dependsOn: list[StepId] = Field(default_factory=list, max_length=MAX_STEPS)
    onFailure: Literal["fail", "skip"] = Field(
        "fail", description="fail: the workflow fails when this step fails; skip: the "
                            "workflow goes on without it (steps that need it are skipped)")

    def needs(self) -> list[str]:
        """Every step this one waits for: its `dependsOn` and the steps its input refers to."""
        referred = [path[1] for path in refs(self.input) if path[0] == "steps"]
        return list(dict.fromkeys([*self.dependsOn, *referred]))


class WorkflowDefinition(BaseModel):
    """A named workflow: its steps."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)

    @model_validator(mode="after")
    def _a_dag(self) -> WorkflowDefinition:
        ids = [step.id for step in self.steps]
        doubled = sorted({i for i in ids if ids.count(i) > 1})
        if doubled:
            raise ValueError(f"step ids must be unique: {', '.join(doubled)}")
        known = set(ids)
        for step in self.steps:
            for path in refs(step.input):
                if path[0] not in ("steps", "input") or (path[0] == "steps" and (
                        len(path) < 3 or path[2] != "result")):
                    raise ValueError(f"step {step.id!r}: reference {'.'.join(path)!r} is "
                                     "neither input.<path> nor steps.<id>.result[.<path>]")
            unknown = [n for n in step.needs() if n not in known]
            if unknown:
                raise ValueError(f"step {step.id!r} depends on unknown step(s) "
                                 f"{', '.join(unknown)}")
            if step.id in step.needs():
                raise ValueError(f"step {step.id!r} depends on itself")
        try:
            self.order()
        except graphlib.CycleError as exc:
            cycle = " -> ".join(exc.args[1])
            raise ValueError(f"the steps' dependencies form a cycle: {cycle}") from None
        return self

    def order(self) -> list[Step]:
        """The steps, each after those it needs (graphlib's topological order)."""
        by_id = {step.id: step for step in self.steps}
        sorter = graphlib.TopologicalSorter({s.id: s.needs() for s in self.steps})
        return [by_id[i] for i in sorter.static_order()]


class WorkflowInput(BaseModel):
    """A `workflow-execution` job: a workflow (inline) and the input its steps may refer to."""

    model_config = ConfigDict(extra="forbid", strict=True)

    workflow: WorkflowDefinition
    input: dict[str, Any] = Field(default_factory=dict,
                                  description='values the steps take with {"$ref": "input.…"}')
    userId: str | None = Field(None, max_length=200)
    organizationId: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _steps_fit_their_types(self, info: ValidationInfo) -> WorkflowInput:
        check_steps(self.workflow, self.input, info.context)
        return self


def check_steps(workflow: WorkflowDefinition, given: dict[str, Any] | None,
                context: dict[str, Any] | None) -> None:
    """ValueError naming the first step whose type is unknown or refuses its input (`given`:
    the workflow's input, its references filled in; None: not known yet, left aside)."""
    from agentqueue.serving import served

    types = served()
    for step in workflow.steps:
        definition = types.get(step.type)
        if definition is None or step.type in NOT_A_STEP:
            known = ", ".join(n for n in types.names() if n not in NOT_A_STEP)
            raise ValueError(f"step {step.id!r}: unknown job type {step.type!r}; "
                             f"known: {known}")
        data = step.input
        if given is not None:
            try:
                data = resolve(step.input, {"input": given}, keep_steps=True)
            except MissingValue as exc:
                raise ValueError(f"step {step.id!r}: {exc}") from None
        problem = check_fit(definition.input, data, context)
        if problem:
            raise ValueError(f"step {step.id!r} ({step.type}): {problem}")


def refs(value: Any, _path: tuple[str | int, ...] = ()) -> Iterator[list[str]]:
    """The paths of every reference in `value` (`steps.fetch.result.text` → its parts)."""
    for _where, path in _refs_at(value):
        yield path


def _refs_at(value: Any, where: tuple[str | int, ...] = ()
             ) -> Iterator[tuple[tuple[str | int, ...], list[str]]]:
    if isinstance(value, dict):
        if set(value) == {REF}:
            target = value[REF]
            if not isinstance(target, str) or not target:
                raise ValueError(f"{REF} at {'.'.join(map(str, where)) or 'input'} is a "
                                 "dotted path such as steps.<id>.result.<field>")
            yield where, target.split(".")
            return
        for key, item in value.items():
            yield from _refs_at(item, (*where, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _refs_at(item, (*where, index))


def follow(root: Any, path: list[str], shown: str) -> Any:
    """The value at `path` within `root` (a number indexes a list); MissingValue if none."""
    value = root
    for part in path:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and \
                -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            raise MissingValue(f"reference {shown!r}: nothing at {part!r}")
    return value


def resolve(value: Any, scope: dict[str, Any], *, keep_steps: bool = False) -> Any:
    """`value` with its references replaced by what they point at in `scope` (`{"input": …,
    "steps": {id: {"result": …}}}`); with `keep_steps`, step references stay as they are."""
    if isinstance(value, dict):
        if set(value) == {REF} and isinstance(value[REF], str):
            path = value[REF].split(".")
            if keep_steps and path[0] == "steps":
                return value
            return follow(scope, path, value[REF])
        return {k: resolve(v, scope, keep_steps=keep_steps) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, scope, keep_steps=keep_steps) for v in value]
    return value


def check_fit(model: type[BaseModel], data: dict[str, Any],
              context: dict[str, Any] | None) -> str | None:
    """What makes `data` unfit for `model`, leaving aside the fields a step reference fills
    (known only when the step runs); None if nothing does."""
    holes = [where for where, _ in _refs_at(data)]
    try:
        model.model_validate(data, context=context)
    except ValidationError as exc:
        errors = [e for e in exc.errors()
                  if not any(tuple(e.get("loc", ()))[:len(h)] == h for h in holes)
                  and not (holes and e.get("type") in ("model_type", "value_error")
                           and not e.get("loc"))]
        if errors:
            return describe_errors(errors)
    return None
