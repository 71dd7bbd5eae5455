"""Each served job type's input model in the OpenAPI schema: `POST /api/jobs` documents its
`data` per `type` (a oneOf of `CreateJob.<type>`, discriminated by `type`), so a user's
registered type shows its own model beside the built-in ones."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from agentqueue.registry import JobRegistry

PREFIX = "JobData."  # input models' components: JobData.ChatInput, JobData.WordCountInput, …
_BODY_OF = ("/api/jobs", "post")


def add_job_types(schema: dict[str, Any], registry: JobRegistry) -> None:
    """Add every type's input model (and the models it uses) to `schema`'s components, and
    make `POST /api/jobs`'s body a oneOf over the types."""
    types = list(registry)
    if not types:
        return
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    refs, defs = models_json_schema(
        [(model, "validation") for model in dict.fromkeys(t.input for t in types)],
        ref_template=f"#/components/schemas/{PREFIX}{{model}}",
    )
    for name, model_schema in defs.get("$defs", {}).items():
        components[f"{PREFIX}{name}"] = model_schema
    variants: dict[str, str] = {}
    for job_type in types:
        data_ref = refs[(job_type.input, "validation")]
        name = f"CreateJob.{job_type.name}"
        components[name] = {
            "title": f"CreateJob ({job_type.name})",
            "allOf": [
                {"$ref": "#/components/schemas/CreateJob"},
                {"type": "object", "required": ["type"],
                 "properties": {"type": {"const": job_type.name}, "data": data_ref}},
            ],
        }
        variants[job_type.name] = f"#/components/schemas/{name}"
    path, method = _BODY_OF
    operation = schema.get("paths", {}).get(path, {}).get(method)
    if operation is None:
        return
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is not None:
        content["schema"] = {
            "oneOf": [{"$ref": ref} for ref in variants.values()],
            "discriminator": {"propertyName": "type", "mapping": variants},
        }
