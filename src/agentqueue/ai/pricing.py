"""What a model's tokens cost: a price table shipped as data that users can extend.

Prices are USD per million tokens. The shipped table (`agentqueue/data/prices.json`) is overlaid
by a file (`AGENTQUEUE_PRICES_FILE`) and then by inline JSON (`AGENTQUEUE_PRICES`); the caller
passes those in, this module reads no environment.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from agentqueue.ai.types import Usage


class Price(BaseModel):
    input: float = Field(ge=0, description="USD per million input tokens")
    output: float = Field(ge=0, description="USD per million output tokens")


class Cost(BaseModel):
    usd: float
    priced: bool  # False when the model is not in the table: usd is then 0
    model: str


class PriceTableError(ValueError):
    pass


class PriceTable:
    def __init__(self, prices: dict[str, Price]) -> None:
        self.prices = prices

    @classmethod
    def load(cls, *, file: Path | None = None, inline: str | None = None) -> PriceTable:
        shipped = resources.files("agentqueue").joinpath("data/prices.json").read_text()
        table = _parse(json.loads(shipped), "the shipped price table")
        if file is not None:
            try:
                table.update(_parse(json.loads(Path(file).read_text()), str(file)))
            except (OSError, json.JSONDecodeError) as exc:
                raise PriceTableError(f"cannot read price file {file}: {exc}") from exc
        if inline:
            try:
                table.update(_parse(json.loads(inline), "AGENTQUEUE_PRICES"))
            except json.JSONDecodeError as exc:
                raise PriceTableError(f"AGENTQUEUE_PRICES is not valid JSON: {exc}") from exc
        return cls(table)

    def price_of(self, model: str) -> Price | None:
        if model in self.prices:
            return self.prices[model]
        # Providers answer with dated snapshots ("gpt-4o-mini-2024-07-18"): use the base price.
        base = max((m for m in self.prices if model.startswith(m + "-")), key=len, default=None)
        return self.prices[base] if base else None

    def cost(self, model: str, usage: Usage) -> Cost:
        price = self.price_of(model)
        if price is None:
            return Cost(usd=0.0, priced=False, model=model)
        usd = (usage.input_tokens * price.input + usage.output_tokens * price.output) / 1e6
        return Cost(usd=usd, priced=True, model=model)


def _parse(raw: Any, where: str) -> dict[str, Price]:
    if not isinstance(raw, dict):
        raise PriceTableError(f"{where}: expected an object of model -> {{input, output}}")
    try:
        return {
            model: Price.model_validate(price)
            for model, price in raw.items()
            if not model.startswith("_")
        }
    except ValidationError as exc:
        raise PriceTableError(f"{where}: {exc}") from exc
