"""The settings and URLs that name a Redis deployment, read the way every connection reads them."""

from __future__ import annotations

import pytest

from agentqueue.config import Settings
from agentqueue.engine.topology import RedisTarget, hash_tag


def test_sentinel_settings_become_one_url_that_names_the_sentinels_and_the_primary() -> None:
    settings = Settings(  # type: ignore[call-arg]
        REDIS_URL=None,  # CI sets one in the environment
        REDIS_SENTINELS="10.0.0.1:26379, 10.0.0.2", REDIS_SENTINEL_MASTER="jobs",
        REDIS_PASSWORD="p@ss", REDIS_SENTINEL_PASSWORD="s/cret")
    target = RedisTarget.parse(settings.external_redis_url or "")
    assert (target.kind, target.nodes, target.master, target.password,
            target.sentinel_password) == (
        "sentinel", (("10.0.0.1", 26379), ("10.0.0.2", 26379)), "jobs", "p@ss", "s/cret")
    assert settings.queue_prefix == "bull"  # one primary: any prefix


def test_a_cluster_url_names_its_startup_nodes_and_tls() -> None:
    target = RedisTarget.parse("rediss+cluster://user:pw@a.internal:7000,b.internal:7001")
    assert (target.kind, target.nodes, target.ssl, target.username, target.password) == (
        "cluster", (("a.internal", 7000), ("b.internal", 7001)), True, "user", "pw")
    assert RedisTarget.parse("redis://127.0.0.1:6379/2").kind == "standalone"


def test_deployments_that_cannot_go_together_are_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        Settings(REDIS_URL="redis://x:1", REDIS_CLUSTER="true",  # type: ignore[call-arg]
                 REDIS_SENTINELS="s:26379")
    with pytest.raises(ValueError, match="leave REDIS_URL unset"):
        Settings(REDIS_URL="redis://x:1", REDIS_SENTINELS="s:26379")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="not for Redis Cluster"):
        Settings(REDIS_URL="redis://x:1", REDIS_CLUSTER="true",  # type: ignore[call-arg]
                 REDIS_WAIT_REPLICAS="1")
    with pytest.raises(ValueError, match="shorter than REDIS_REQUEST_TIMEOUT_SECONDS"):
        Settings(REDIS_URL=None, REDIS_SENTINELS="s:26379",  # type: ignore[call-arg]
                 REDIS_WAIT_REPLICAS="1", REDIS_WAIT_TIMEOUT_MS="1000")
    with pytest.raises(ValueError, match="a node of the cluster"):
        Settings(REDIS_URL=None, REDIS_CLUSTER="true")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="primary's name"):
        RedisTarget.parse("redis+sentinel://s:26379")


def test_the_hash_tag_is_what_redis_cluster_hashes() -> None:
    assert hash_tag("{bull}:agent-queue:wait") == "bull"
    assert hash_tag("agentqueue:{bull}:agent-queue:cancel") == "bull"
    assert hash_tag("bull:{q}:1") == "q"
    assert hash_tag("bull:q:1") is None
    assert hash_tag("{}bull:{q}") is None  # an empty first tag: the whole key is hashed
