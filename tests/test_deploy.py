"""The production compose file (deploy/compose.yaml) parses, and every setting it gives the
agentqueue processes is one agentqueue reads: a misspelt variable would be silently ignored."""

from __future__ import annotations

from pathlib import Path

import yaml

from agentqueue.config import Settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def test_the_compose_file_sets_only_settings_agentqueue_reads() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    known = {field.validation_alias for field in Settings.model_fields.values()
             if isinstance(field.validation_alias, str)}
    ours = {name: service for name, service in compose["services"].items()
            if service.get("image") == "agentqueue:latest"}
    assert {"api-1", "api-2", "worker"} <= set(ours)
    for name, service in ours.items():
        unknown = set(service["environment"]) - known
        assert not unknown, f"{name}: {unknown}"
    redis = compose["services"]["redis"]["command"]
    assert "--appendonly yes" in redis and "--maxmemory-policy noeviction" in redis
    assert (DEPLOY / "Dockerfile").read_text().count("agentqueue") >= 2
