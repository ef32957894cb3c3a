"""Validate answers against the official OpenSearch API specification (tests/spec/, verbatim).

`validate(instance, "Task")` checks `instance` against `#/components/schemas/Task` of
`ml._common.yaml` (or another file's component), `$ref`s across files resolved by `referencing`.
The one adjustment: ML Commons' `MLTaskState` has `UNREACHABLE` ("task node unreachable"), which
the spec's `TaskState` enum lacks; it is allowed here, and nothing else is.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC = Path(__file__).resolve().parent / "spec" / "schemas"
BASE = "https://tasksim.invalid/spec/schemas/"


@cache
def _registry() -> Registry:
    resources = []
    for path in sorted(SPEC.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        if path.name == "ml._common.yaml":
            # ML Commons' MLTaskState has UNREACHABLE; the spec's TaskState enum does not (yet).
            doc["components"]["schemas"]["TaskState"]["enum"].append("UNREACHABLE")
        resources.append(
            (BASE + path.name, Resource.from_contents(doc, default_specification=DRAFT202012))
        )
    return Registry().with_resources(resources)


def validator(component: str, file: str = "ml._common.yaml") -> Draft202012Validator:
    schema = {"$ref": f"{BASE}{file}#/components/schemas/{component}"}
    return Draft202012Validator(schema, registry=_registry())


def validate(instance: Any, component: str, file: str = "ml._common.yaml") -> None:
    """Raise `jsonschema.ValidationError` when `instance` does not match the component."""
    validator(component, file).validate(instance)
