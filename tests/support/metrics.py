"""Reading a Prometheus text in tests."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: bytes) -> Samples:
    """Every sample of a Prometheus text, by name and labels."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text.decode())
            for s in family.samples}


def of(found: Samples, name: str, **labels: str) -> float | None:
    """The value of the sample `name` with exactly these labels (None: no such sample)."""
    return found.get((name, tuple(sorted(labels.items()))))
