"""Seed 001's `fine-tuning` and `model-training` job types, defined on a registry of their own as
a user defines a job type (listed by `handlers.builtin`).

- `fine-tuning`: chat examples uploaded to an OpenAI-compatible endpoint (OPENAI_API_KEY,
  OPENAI_BASE_URL), a fine-tuning job created there and followed to its end; the result names
  the fine-tuned model (pass it as `model` to other jobs). Cancelling our job cancels it there.
- `model-training`: a logistic-regression classifier over the offline sentence embeddings,
  cross-validated, stored per owner; `classify` with `modelId` uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    model_validator,
)

from agentqueue.ai import classifier as classifiers
from agentqueue.ai import fine_tuning as ft
from agentqueue.context import Context
from agentqueue.engine.queue import cancel_requests_key
from agentqueue.engine.worker import PermanentJobError
from agentqueue.handlers.ai_runtime import AiRuntime, guarded
from agentqueue.handlers.inputs import MAX_TEXT, JobInput
from agentqueue.records.trained_models import TrainedModels
from agentqueue.records.views import JobOwner
from agentqueue.registry import DEFAULT_QUEUE, JobRegistry

FINE_TUNING, MODEL_TRAINING = "fine-tuning", "model-training"
NEEDS_KEY = ("fine-tuning needs an OpenAI-compatible endpoint: set OPENAI_API_KEY (and "
             "OPENAI_BASE_URL for one other than OpenAI's)")
DEFAULT_BASE_MODEL = "gpt-4o-mini-2024-07-18"
MAX_TRAINING_EXAMPLES = 5_000
# How long our job may follow a remote fine-tune (they take minutes to hours).
FINE_TUNING_TIMEOUT_S = 48 * 3600
REMOTE_TTL_S = 30 * 24 * 3600

log = logging.getLogger("agentqueue.handlers")
jobs = JobRegistry()


# -- fine-tuning --------------------------------------------------------------------------------


class Hyperparameters(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    nEpochs: int | None = Field(None, ge=1, le=50)
    batchSize: int | None = Field(None, ge=1, le=256)
    learningRateMultiplier: float | None = Field(None, gt=0, le=10)

    def to_wire(self) -> dict[str, Any]:
        wire = {"n_epochs": self.nEpochs, "batch_size": self.batchSize,
                "learning_rate_multiplier": self.learningRateMultiplier}
        return {k: v for k, v in wire.items() if v is not None}


class FineTuningInput(JobInput):
    """Chat examples, as a list (`examples`) or as JSONL text (`trainingData`); at least 10."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["examples"]}, {"required": ["trainingData"]}]})

    examples: list[dict[str, Any]] | None = Field(
        None, max_length=ft.MAX_EXAMPLES,
        description='each {"messages": [{"role": "user", "content": …}, {"role": '
                    '"assistant", "content": …}]}; at least 10')
    trainingData: str | None = Field(None, max_length=50_000_000,
                                     description="the same examples as JSONL, one a line")
    suffix: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                               description="part of the fine-tuned model's name")
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    hyperparameters: Hyperparameters | None = None

    @model_validator(mode="after")
    def _trainable(self, info: ValidationInfo) -> FineTuningInput:
        if (self.examples is None) == (self.trainingData is None):
            raise ValueError("give exactly one of `examples` or `trainingData`")
        if self.provider is not None and self.provider.strip().lower() != "openai":
            raise ValueError("fine-tuning runs on the openai provider only")
        try:
            if self.examples is not None:
                ft.check_examples(self.examples)
            else:
                ft.check_examples(ft.parse_jsonl(self.trainingData or ""), "trainingData")
        except ft.TrainingDataError as exc:
            raise ValueError(str(exc)) from None
        settings = (info.context or {}).get("settings")
        if settings is not None and not settings.secret("openai_api_key"):
            raise ValueError(NEEDS_KEY)
        return self

    @property
    def all_examples(self) -> list[dict[str, Any]]:
        if self.examples is not None:
            return self.examples
        return ft.parse_jsonl(self.trainingData or "")


def _runtime(ctx: Context) -> AiRuntime:
    resources = ctx.resources
    assert resources is not None  # a worker's context is bound to its resources
    return resources.runtime


def _remote_key(ctx: Context) -> str:
    return f"agentqueue:{_runtime(ctx).prefix}:{ctx.queue}:fine-tuning:{ctx.id}"


async def _cancel_requested(ctx: Context) -> bool:
    runtime = _runtime(ctx)
    return bool(await runtime.client.sismember(
        cancel_requests_key(runtime.prefix, ctx.queue), ctx.id))


@jobs.job(FINE_TUNING, queue=DEFAULT_QUEUE, timeout=FINE_TUNING_TIMEOUT_S)
async def fine_tuning(ctx: Context, data: FineTuningInput) -> dict[str, Any]:
    settings = ctx.settings
    key = settings.secret("openai_api_key")
    if not key:
        raise PermanentJobError(NEEDS_KEY)
    client = ft.FineTuningClient(api_key=key, base_url=settings.openai_base_url)
    try:
        return await _fine_tune(ctx, data, client)
    finally:
        await client.aclose()


async def _fine_tune(ctx: Context, data: FineTuningInput,
                     client: ft.FineTuningClient) -> dict[str, Any]:
    redis = _runtime(ctx).client
    state_key = _remote_key(ctx)
    # A retried job follows the fine-tune its first attempt started: never pays for two.
    # (The client decodes responses: these are str or None.)
    remote_id: str | None = await redis.hget(state_key, "job")  # type: ignore[assignment]
    examples = data.all_examples
    if remote_id is None:
        await ctx.progress(0, 100, f"Uploading {len(examples)} training examples")
        file_id: str | None = await redis.hget(state_key, "file")  # type: ignore[assignment]
        if file_id is None:
            file_id = await guarded(client.upload(examples, f"agentqueue-{ctx.id}.jsonl"))
            await redis.hset(state_key, "file", file_id)
            await redis.expire(state_key, REMOTE_TTL_S)
        created = await guarded(client.create(
            model=data.model or DEFAULT_BASE_MODEL, training_file=file_id, suffix=data.suffix,
            seed=data.seed,
            hyperparameters=data.hyperparameters.to_wire() if data.hyperparameters else None,
            metadata={"agentqueue_job": f"{ctx.queue}:{ctx.id}"}))
        remote_id = created.id
        await redis.hset(state_key, "job", remote_id)
        await ctx.log(f"fine-tuning job {remote_id} created on file {file_id}")
    steps = {"current": 0, "total": 0}

    async def on_status(job: ft.RemoteJob) -> None:
        await ctx.log(f"fine-tuning job {job.id}: {job.status}")
        await _report(f"Fine-tuning job {job.id} {job.status.replace('_', ' ')}")

    async def on_event(event: ft.RemoteEvent) -> None:
        step, total = event.data.get("step"), event.data.get("total_steps")
        if isinstance(step, int) and isinstance(total, int) and total > 0:
            steps.update(current=step, total=total)
        await _report(event.message)

    async def _report(message: str) -> None:
        if steps["total"]:
            await ctx.progress(steps["current"], steps["total"], message)
        else:
            await ctx.progress(0, 100, message)

    try:
        finished = await guarded(ft.follow(client, remote_id, on_event, on_status))
    except asyncio.CancelledError:
        if await _cancel_requested(ctx):  # not a worker shutting down: the user's cancel
            with contextlib.suppress(Exception):
                await asyncio.shield(asyncio.wait_for(client.cancel(remote_id), 30))
                await ctx.log(f"fine-tuning job {remote_id} cancelled")
                await redis.delete(state_key)
        raise
    # Done there: a retry from now on (the user's, of a failed job) starts a new fine-tune.
    await redis.delete(state_key)
    if finished.status != "succeeded":
        reason = finished.error or "no reason given"
        raise PermanentJobError(f"fine-tuning job {finished.id} {finished.status}: {reason}")
    if steps["total"]:
        await ctx.progress(steps["total"], steps["total"], "Fine-tuning succeeded")
    return {
        "fineTunedModel": finished.fine_tuned_model,
        "fineTuningJobId": finished.id,
        "baseModel": finished.model,
        "status": finished.status,
        "trainedTokens": finished.trained_tokens,
        "examples": len(examples),
        "provider": "openai",
    }


# -- model-training ----------------------------------------------------------------------------

Label = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"\S",
                                         strip_whitespace=True)]


class LabelledExample(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    text: str = Field(min_length=1, max_length=MAX_TEXT)
    label: Label


class ModelTrainingInput(JobInput):
    """Labelled texts: at least 2 labels, each with at least `folds` examples."""

    examples: list[LabelledExample] = Field(min_length=4, max_length=MAX_TRAINING_EXAMPLES)
    name: str | None = Field(None, min_length=1, max_length=200)
    folds: int = Field(classifiers.DEFAULT_FOLDS, ge=classifiers.MIN_FOLDS,
                       le=classifiers.MAX_FOLDS, description="k of k-fold cross-validation")
    regularization: float = Field(10.0, gt=0, le=1e6,
                                  description="logistic regression's C (higher: less)")
    algorithm: Literal["logistic-regression"] = "logistic-regression"

    @model_validator(mode="after")
    def _enough_per_label(self) -> ModelTrainingInput:
        try:
            classifiers.check_counts([e.label for e in self.examples], self.folds)
        except classifiers.TrainingError as exc:
            raise ValueError(str(exc)) from None
        return self


def trained_models(runtime: AiRuntime) -> TrainedModels:
    if runtime.records is None:
        raise PermanentJobError("trained models are kept in the records database, which this "
                                "worker was started without")
    return TrainedModels(runtime.records.engine)


async def _owner(ctx: Context) -> JobOwner:
    # Never from the job's data: the record's owner (nobody, for a job added to Redis directly).
    return await ctx.owner() or JobOwner(user_id="", org_id=None)


@jobs.job(MODEL_TRAINING, queue=DEFAULT_QUEUE, timeout=1800)
async def model_training(ctx: Context, data: ModelTrainingInput) -> dict[str, Any]:
    store = trained_models(_runtime(ctx))
    folds = data.folds
    await ctx.progress(0, folds, f"Embedding {len(data.examples)} examples")

    async def on_fold(done: int, total: int, accuracy: float) -> None:
        await ctx.progress(done, total, f"Fold {done} of {total}: accuracy {accuracy:.2%}")

    try:
        training = await classifiers.train(
            [e.text for e in data.examples], [e.label for e in data.examples], folds=folds,
            c=data.regularization, on_fold=on_fold)
    except classifiers.TrainingError as exc:
        raise PermanentJobError(str(exc)) from exc
    metrics = {"accuracy": training.accuracy, "foldAccuracies": training.fold_accuracies,
               "folds": training.folds, "counts": training.counts,
               "examples": len(data.examples)}
    saved = await store.save(
        await _owner(ctx), source_job=f"{ctx.queue}:{ctx.id}", kind=classifiers.KIND,
        labels=training.classifier.labels, params=training.classifier.to_json(),
        metrics=metrics, name=data.name)
    await ctx.progress(folds, folds, f"Trained model {saved.id}")
    return {"modelId": saved.id, "name": saved.name, "labels": saved.labels, **metrics,
            "method": classifiers.METHOD, "provider": "builtin",
            "model": training.classifier.embedding_model}


async def classify_with_model(ctx: Context, model_id: str, text: str) -> dict[str, Any]:
    """`classify` by a trained model of the job's owner: offline, no provider call."""
    found = await trained_models(_runtime(ctx)).get(await _owner(ctx), model_id)
    if found is None:
        raise PermanentJobError(f"unknown model {model_id!r}")
    model = classifiers.Classifier.from_json(found.params)
    label, scores = await model.classify(text)
    return {"label": label, "scores": scores, "labels": model.labels, "modelId": found.id,
            "method": f"trained {classifiers.METHOD}", "provider": "builtin",
            "model": model.embedding_model}

