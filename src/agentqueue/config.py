"""Settings from the environment (and a `.env` file), in one place."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agentqueue.engine.topology import (
    CLUSTER_SCHEMES,
    SENTINEL_SCHEMES,
    hash_tag,
    require_hash_tag,
)
from agentqueue.limit_rules import Budget, JobRate, ModelRate
from agentqueue.net.destinations import parse_networks

# On a cluster, the prefix QUEUE_PREFIX's default becomes: one slot for all of a queue's keys.
CLUSTER_DEFAULT_PREFIX = "{bull}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # HTTP
    host: str = Field("127.0.0.1", validation_alias="HOST")
    port: int = Field(3000, validation_alias="PORT")
    # Seed 001's WebSocket gateway (Socket.IO `/jobs`, plain WebSocket `/jobs`) is served on
    # PORT; set this to serve it (the whole app) on a port of its own too (the seed's: 3001).
    gateway_port: int | None = Field(None, ge=1, le=65535, validation_alias="GATEWAY_PORT")
    # Browser origins (comma-separated, or *) whose pages may open the gateway's sockets with
    # the page's credentials, beyond the API's own origin. Non-browser clients send none.
    push_allowed_origins: str = Field("", validation_alias="PUSH_ALLOWED_ORIGINS")

    @property
    def push_origins(self) -> list[str]:
        return [o.strip() for o in self.push_allowed_origins.split(",") if o.strip()]

    # Redis / Valkey. REDIS_URL wins; the seed's REDIS_HOST/PORT/PASSWORD are honoured too.
    # With neither set, `agentqueue serve` starts an embedded Valkey under the data directory.
    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    redis_host: str | None = Field(None, validation_alias="REDIS_HOST")
    redis_port: int = Field(6379, validation_alias="REDIS_PORT")
    redis_password: SecretStr | None = Field(None, validation_alias="REDIS_PASSWORD")
    # Redis Cluster: REDIS_URL (or REDIS_HOST) names any node; the rest are discovered.
    redis_cluster: bool = Field(False, validation_alias="REDIS_CLUSTER")
    # Redis Sentinel: "host:port,host:port" of the sentinels, and the name of the primary they
    # watch; REDIS_PASSWORD is the primary's, REDIS_SENTINEL_PASSWORD the sentinels' own.
    redis_sentinels: str | None = Field(None, validation_alias="REDIS_SENTINELS")
    redis_sentinel_master: str = Field("mymaster", validation_alias="REDIS_SENTINEL_MASTER")
    redis_sentinel_password: SecretStr | None = Field(
        None, validation_alias="REDIS_SENTINEL_PASSWORD")
    # A job is accepted only once this many replicas have it (WAIT), so a failover right after
    # cannot lose it; each submission then waits for a replica's acknowledgement, up to the
    # timeout (shorter than REDIS_REQUEST_TIMEOUT_SECONDS). 0: off.
    redis_wait_replicas: int = Field(0, ge=0, validation_alias="REDIS_WAIT_REPLICAS")
    redis_wait_timeout_ms: int = Field(500, ge=1, validation_alias="REDIS_WAIT_TIMEOUT_MS")
    data_dir: Path = Field(Path(".agentqueue"), validation_alias="AGENTQUEUE_DATA_DIR")
    # 0 picks a free port at start; set it to reach the embedded server from Node BullMQ.
    embedded_port: int = Field(0, ge=0, le=65535, validation_alias="AGENTQUEUE_EMBEDDED_PORT")
    # fsync policy of the embedded server's AOF: "always" loses no accepted job on a crash.
    embedded_appendfsync: str = Field("always", validation_alias="AGENTQUEUE_EMBEDDED_APPENDFSYNC")

    # Records (SQL). Default: SQLite file in the data directory.
    database_url: str | None = Field(None, validation_alias="DATABASE_URL")
    # Connections per process, and how long a request waits for one before answering 503.
    database_pool_size: int = Field(10, ge=1, validation_alias="DATABASE_POOL_SIZE")
    database_pool_overflow: int = Field(10, ge=0, validation_alias="DATABASE_POOL_OVERFLOW")
    database_pool_timeout_s: float = Field(5.0, gt=0,
                                           validation_alias="DATABASE_POOL_TIMEOUT_SECONDS")
    # Auth: JWT for the seeds' admin endpoints; per-key rate limit; request limits.
    jwt_secret: SecretStr | None = Field(None, validation_alias="JWT_SECRET")
    webhook_secret: SecretStr | None = Field(None, validation_alias="WEBHOOK_SECRET")
    # Networks webhooks may reach though not public (e.g. "10.0.0.0/8,127.0.0.1"); empty: none.
    webhook_allowed_networks: str = Field("", validation_alias="WEBHOOK_ALLOWED_NETWORKS")
    rate_limit_per_minute: int = Field(600, ge=0, validation_alias="RATE_LIMIT_PER_MINUTE")
    # Failed authentications per client address per minute before it gets 429 (0: off).
    auth_failures_per_minute: int = Field(30, ge=0, validation_alias="AUTH_FAILURES_PER_MINUTE")
    max_body_bytes: int = Field(1_000_000, ge=1024, validation_alias="MAX_BODY_BYTES")
    max_page_size: int = Field(100, ge=1, validation_alias="MAX_PAGE_SIZE")
    # Maintenance duties (record repair, …) in this process, each done by one process at a time
    # under a Redis lease that a dead holder loses after MAINTENANCE_LEASE_SECONDS.
    maintenance_enabled: bool = Field(True, validation_alias="MAINTENANCE_ENABLED")
    maintenance_lease_s: float = Field(30.0, gt=0, validation_alias="MAINTENANCE_LEASE_SECONDS")
    repair_interval_s: float = Field(30.0, gt=0, validation_alias="REPAIR_INTERVAL_SECONDS")
    # Records untouched for less than this are left to their writers.
    repair_settle_s: float = Field(5.0, ge=0, validation_alias="REPAIR_SETTLE_SECONDS")
    # A submission holds its record this long at most; repair leaves it alone meanwhile.
    submit_lease_s: float = Field(30.0, gt=0, validation_alias="SUBMIT_LEASE_SECONDS")
    # Bound on each Redis command of an API request (connect, write, read).
    redis_request_timeout_s: float = Field(
        1.0, gt=0, le=30, validation_alias="REDIS_REQUEST_TIMEOUT_SECONDS")

    # Queue
    queue_prefix: str = Field("bull", validation_alias="QUEUE_PREFIX")
    agent_queue_name: str = Field("agent-queue", validation_alias="AGENT_QUEUE_NAME")
    ai_jobs_queue_name: str = Field("ai-jobs", validation_alias="AI_JOBS_QUEUE_NAME")
    ai_tasks_queue_name: str = Field("ai-tasks", validation_alias="AI_TASKS_QUEUE_NAME")
    webhooks_queue_name: str = Field("webhooks", validation_alias="WEBHOOKS_QUEUE_NAME")
    agent_tasks_queue_name: str = Field("agent-tasks", validation_alias="AGENT_TASKS_QUEUE_NAME")
    # Seed 001's generic queue: its job types (data-conversion, …) run here.
    jobs_queue_name: str = Field("jobs", validation_alias="JOBS_QUEUE_NAME")
    queue_concurrency: int = Field(5, ge=1, le=10_000, validation_alias="QUEUE_CONCURRENCY")
    job_attempts: int = Field(3, ge=1, validation_alias="QUEUE_ATTEMPTS")
    job_backoff_ms: int = Field(2000, ge=0, validation_alias="QUEUE_BACKOFF_MS")
    keep_completed: int = Field(100, ge=0, validation_alias="QUEUE_KEEP_COMPLETED")
    keep_failed: int = Field(100, ge=0, validation_alias="QUEUE_KEEP_FAILED")
    # Per-minute counts of finished jobs kept in Redis, as BullMQ's `metrics` worker option:
    # the dashboard's throughput and Bull Board's metrics read them. A day by default.
    metrics_minutes: int = Field(1440, ge=0, le=525_600, validation_alias="QUEUE_METRICS_MINUTES")
    job_timeout_s: float = Field(300.0, gt=0, validation_alias="JOB_TIMEOUT_SECONDS")
    lock_duration_ms: int = Field(30_000, ge=100, validation_alias="QUEUE_LOCK_DURATION_MS")
    stalled_interval_ms: int = Field(30_000, ge=100, validation_alias="QUEUE_STALLED_INTERVAL_MS")
    # A job whose worker stops mid-run is run again, spending one of its attempts; this also
    # fails it after more such stops than this, attempts left or not (0: attempts alone limit).
    max_stalled_count: int = Field(0, ge=0, validation_alias="QUEUE_MAX_STALLED_COUNT")
    shutdown_grace_s: float = Field(30.0, ge=0, validation_alias="SHUTDOWN_GRACE_SECONDS")
    # `agentqueue worker` processes under one supervisor; unset: one per CPU core.
    worker_processes: int | None = Field(None, ge=1, validation_alias="WORKER_PROCESSES")
    max_message_chars: int = Field(16_000, ge=1, validation_alias="MAX_MESSAGE_CHARS")
    max_batch_messages: int = Field(100, ge=1, validation_alias="MAX_BATCH_MESSAGES")
    # Back-pressure: a submission is answered 429 while its queue has this many jobs not yet
    # taken by a worker, or its tenant (organization, or user without one) this many
    # unfinished jobs. 0: unlimited.
    max_queue_backlog: int = Field(10_000, ge=0, validation_alias="MAX_QUEUE_BACKLOG")
    max_tenant_backlog: int = Field(1_000, ge=0, validation_alias="MAX_TENANT_BACKLOG")
    backlog_retry_after_s: int = Field(5, ge=1, validation_alias="BACKLOG_RETRY_AFTER_SECONDS")
    max_history_messages: int = Field(100, ge=0, validation_alias="MAX_HISTORY_MESSAGES")

    # Rate limits, tenant caps and budgets (README "Rate limits, fairness and budgets"); JSON
    # where a value has parts. Run-time changes (HTTP /api/admin/limits, Python) override these.
    # {"agent-tasks": {"max": 100, "duration": 60000}}: BullMQ's global rate limit per queue.
    queue_rate_limits: dict[str, JobRate] = Field({}, validation_alias="QUEUE_RATE_LIMITS")
    job_type_rate_limits: dict[str, JobRate] = Field({},
                                                    validation_alias="JOB_TYPE_RATE_LIMITS")
    owner_rate_limit: JobRate | None = Field(None, validation_alias="OWNER_RATE_LIMIT")
    # {"openai/gpt-4o-mini": {"rpm": 500, "tpm": 200000}}
    model_rate_limits: dict[str, ModelRate] = Field({}, validation_alias="MODEL_RATE_LIMITS")
    tenant_max_active_per_org: int = Field(0, ge=0, validation_alias="TENANT_MAX_ACTIVE_PER_ORG")
    tenant_max_active_per_user: int = Field(0, ge=0,
                                            validation_alias="TENANT_MAX_ACTIVE_PER_USER")
    # A job of a tenant at its cap goes back to the queue (delayed, no attempt spent) until one
    # of the tenant's jobs on its queue ends, or for this long at most.
    tenant_defer_ms: int = Field(10_000, ge=1, validation_alias="TENANT_DEFER_MS")
    # Every organization's budget unless the run-time limits give it its own.
    org_budget: Budget = Field(Budget(), validation_alias="ORG_BUDGET")
    # How often workers and APIs re-read the run-time limits from Redis.
    limits_refresh_s: float = Field(1.0, gt=0, validation_alias="LIMITS_REFRESH_SECONDS")

    # AI
    ai_provider: str = Field("auto", validation_alias="AI_PROVIDER")
    openai_api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, validation_alias="OPENAI_BASE_URL")
    # false: ask an OpenAI-compatible server for whole answers, never streams. For servers whose
    # streams carry no token usage (llama-cpp-python's): their tokens are then counted exactly,
    # and a job's streamed text arrives in one piece.
    openai_stream: bool = Field(True, validation_alias="OPENAI_STREAM")
    openai_model: str = Field("gpt-4o-mini", validation_alias="OPENAI_MODEL")
    anthropic_api_key: SecretStr | None = Field(None, validation_alias="ANTHROPIC_API_KEY")
    anthropic_base_url: str | None = Field(None, validation_alias="ANTHROPIC_BASE_URL")
    anthropic_model: str = Field("claude-3-5-haiku-latest", validation_alias="ANTHROPIC_MODEL")
    # The HTTP client under the provider SDKs: aiohttp (much cheaper at high concurrency) or
    # httpx (the SDKs' own default); see agentqueue.ai.providers.http_client.
    ai_http_client: Literal["aiohttp", "httpx"] = Field("aiohttp",
                                                        validation_alias="AI_HTTP_CLIENT")
    # Each provider call's timeout, and the SDK's own retries before a call fails (and a
    # fallback chain moves on to its next model).
    ai_timeout_s: float = Field(60.0, gt=0, validation_alias="AI_TIMEOUT_SECONDS")
    ai_max_retries: int = Field(2, ge=0, le=10, validation_alias="AI_MAX_RETRIES")
    # How long a model of a fallback chain (not its last) waits for a rate limit or a 429's
    # Retry-After before the chain asks its next model.
    model_fallback_max_wait_s: float = Field(5.0, ge=0,
                                             validation_alias="MODEL_FALLBACK_MAX_WAIT_SECONDS")
    prices_file: Path | None = Field(None, validation_alias="AGENTQUEUE_PRICES_FILE")
    prices_inline: str | None = Field(None, validation_alias="AGENTQUEUE_PRICES")
    agents_file: Path | None = Field(None, validation_alias="AGENTQUEUE_AGENTS_FILE")
    agent_dataset: Path | None = Field(None, validation_alias="AGENT_DATASET")
    agent_max_steps: int = Field(6, ge=1, validation_alias="AGENT_MAX_STEPS")

    # Email (the `email` queue, and email notifications): sent over SMTP; unset SMTP_HOST
    # or SMTP_FROM, email jobs are refused at submission, naming the setting.
    email_queue_name: str = Field("email", validation_alias="EMAIL_QUEUE_NAME")
    smtp_host: str | None = Field(None, validation_alias="SMTP_HOST")
    smtp_port: int = Field(587, ge=1, le=65535, validation_alias="SMTP_PORT")
    smtp_username: str | None = Field(None, validation_alias="SMTP_USERNAME")
    smtp_password: SecretStr | None = Field(None, validation_alias="SMTP_PASSWORD")
    # true: STARTTLS required; false: never; unset: used when the server offers it.
    smtp_starttls: bool | None = Field(None, validation_alias="SMTP_STARTTLS")
    # TLS from the first byte (port 465) instead of STARTTLS.
    smtp_tls: bool = Field(False, validation_alias="SMTP_TLS")
    smtp_timeout_s: float = Field(30.0, gt=0, le=600, validation_alias="SMTP_TIMEOUT_SECONDS")
    smtp_from: str | None = Field(None, validation_alias="SMTP_FROM")
    # A directory of templates of your own (`welcome.html`, …): each file found there is used
    # instead of the built-in one of that name.
    email_templates_dir: Path | None = Field(None, validation_alias="EMAIL_TEMPLATES_DIR")
    # The product name the built-in templates sign with.
    email_app_name: str = Field("agentqueue", validation_alias="EMAIL_APP_NAME")

    # data-conversion (seed 001): the directories a job may read by path (comma-separated,
    # absolute; empty: by upload only), the largest upload, and how long uploads and outputs
    # are kept (deleted when their owner next uploads or converts).
    data_conversion_roots: str = Field("", validation_alias="DATA_CONVERSION_ROOTS")
    data_conversion_max_upload_bytes: int = Field(
        2 * 1024**3, ge=1024, validation_alias="DATA_CONVERSION_MAX_UPLOAD_BYTES")
    data_conversion_retention_hours: float = Field(
        168.0, gt=0, validation_alias="DATA_CONVERSION_RETENTION_HOURS")

    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    # "text" for people, "json" for log pipelines: one object per line, with the job's id,
    # queue and type on job lines and the trace id where a trace is current.
    log_format: Literal["text", "json"] = Field("text", validation_alias="LOG_FORMAT")

    @model_validator(mode="after")
    def _redis_deployment(self) -> Settings:
        if self.redis_cluster and self.redis_sentinels:
            raise ValueError("set REDIS_CLUSTER or REDIS_SENTINELS, not both")
        if self.redis_cluster and not (self.redis_url or self.redis_host):
            raise ValueError("REDIS_CLUSTER needs REDIS_URL (or REDIS_HOST): a node of the cluster")
        if self.redis_wait_replicas and (
                self.redis_wait_timeout_ms >= self.redis_request_timeout_s * 1000):
            raise ValueError("REDIS_WAIT_TIMEOUT_MS must be shorter than "
                             "REDIS_REQUEST_TIMEOUT_SECONDS: the request would time out first")
        if self.redis_sentinels and self.redis_url:
            raise ValueError("REDIS_SENTINELS names the Redis to use: leave REDIS_URL unset")
        if self.on_cluster:
            if "queue_prefix" not in self.model_fields_set:
                self.queue_prefix = CLUSTER_DEFAULT_PREFIX
            require_hash_tag(self.queue_prefix)
            if self.redis_wait_replicas:
                raise ValueError("REDIS_WAIT_REPLICAS is for one primary (standalone or "
                                 "Sentinel), not for Redis Cluster")
        return self

    @property
    def on_cluster(self) -> bool:
        """Whether the queue's Redis is a Redis Cluster (REDIS_CLUSTER or a cluster URL)."""
        return self.redis_cluster or (self.redis_url or "").split("://")[0] in CLUSTER_SCHEMES

    @property
    def prefix_is_tagged(self) -> bool:
        return hash_tag(self.queue_prefix) is not None

    @field_validator("data_conversion_roots")
    @classmethod
    def _roots(cls, text: str) -> str:
        from agentqueue.conversion.paths import parse_roots

        parse_roots(text)  # a relative root stops the process at start
        return text

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, text: str) -> str:
        parse_networks(text)  # a typo stops the process at start, not at the first delivery
        return text

    def secret(self, name: str) -> str | None:
        value: SecretStr | None = getattr(self, name)
        return value.get_secret_value() if value else None

    @property
    def records_url(self) -> str:
        """The records database, for every process kind and command: DATABASE_URL, or the
        SQLite file beside the embedded server's data (its directory is made on connect)."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir.expanduser().resolve() / 'agentqueue.db'}"

    @property
    def external_redis_url(self) -> str | None:
        """The Redis the user pointed us at, or None when the embedded server should run.

        A cluster or Sentinel deployment comes back as a `redis+cluster://` or
        `redis+sentinel://` URL (see `agentqueue.engine.connection.RedisTarget`): the one
        string every connection of the service is built from.
        """
        auth = ""
        if self.redis_password and self.redis_password.get_secret_value():
            auth = f":{quote(self.redis_password.get_secret_value(), safe='')}@"
        if self.redis_sentinels:
            sentinel = (f"redis+sentinel://{auth}{self.redis_sentinels.replace(' ', '')}/"
                   f"{quote(self.redis_sentinel_master, safe='')}")
            if self.redis_sentinel_password:
                password = self.redis_sentinel_password.get_secret_value()
                sentinel += f"?sentinel_password={quote(password, safe='')}"
            return sentinel
        url: str | None = self.redis_url
        if not url and self.redis_host:
            url = f"redis://{auth}{self.redis_host}:{self.redis_port}/0"
        if url and self.redis_cluster:
            scheme, _, rest = url.partition("://")
            if scheme not in CLUSTER_SCHEMES and scheme not in SENTINEL_SCHEMES:
                url = f"{scheme}+cluster://{rest.split('/')[0]}"  # a cluster has no db number
        return url


@lru_cache
def get_settings() -> Settings:
    return Settings()
