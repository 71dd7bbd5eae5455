"""Redis deployments a test starts itself with the machine's `redis-server`, on free loopback
ports in a temporary directory, and tears down after: a 3-master Redis Cluster, and a primary
with a replica watched by three Sentinels."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.support.processes import free_port

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
needs_redis_server = pytest.mark.skipif(
    REDIS_SERVER is None or REDIS_CLI is None,
    reason="redis-server and redis-cli (Redis >= 7) are needed to start a cluster or Sentinels")
SENTINEL_MASTER = "aqmaster"


def _until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Servers:
    """The `redis-server` processes of one deployment, by port."""

    directory: Path
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, port: int, *args: str) -> None:
        log = (self.directory / f"{port}.log").open("ab")
        self.processes[port] = subprocess.Popen(
            [str(REDIS_SERVER), *args, "--port", str(port), "--bind", "127.0.0.1",
             "--dir", str(self.directory), "--save", "", "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        _until(lambda: bool(redis.Redis(port=port, socket_timeout=1).ping()),
               f"redis-server on port {port}")

    def kill(self, port: int) -> None:
        process = self.processes.pop(port)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()


@contextmanager
def redis_cluster(directory: Path, masters: int = 3, replicas: int = 0) -> Iterator[list[int]]:
    """A Redis Cluster of `masters` primaries with `replicas` replicas each: the ports of its
    nodes (redis-cli assigns the roles; ask `CLUSTER SLOTS` which is which)."""
    servers = Servers(directory)
    ports = [free_port() for _ in range(masters * (1 + replicas))]
    try:
        for port in ports:
            servers.start(port, "--cluster-enabled", "yes", "--cluster-port", str(free_port()),
                          "--cluster-config-file", f"nodes-{port}.conf",
                          "--cluster-node-timeout", "2000", "--appendonly", "no")
        subprocess.run([str(REDIS_CLI), "--cluster", "create",
                        *(f"127.0.0.1:{port}" for port in ports),
                        "--cluster-replicas", str(replicas), "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)

        def ready() -> bool:
            return all(redis.Redis(port=port, socket_timeout=1, decode_responses=True)
                       .cluster("info")["cluster_state"] == "ok" for port in ports)

        _until(ready, "the cluster to be ok")
        yield ports
    finally:
        servers.stop_all()


def slot_primary(port: int, key: str) -> int:
    """The port of the primary serving `key`'s slot, as the node on `port` sees it."""
    node = redis.Redis(port=port, socket_timeout=1, decode_responses=True)
    slot = int(node.execute_command("CLUSTER KEYSLOT", key))
    for start, end, primary, *_ in node.execute_command("CLUSTER SLOTS"):
        if int(start) <= slot <= int(end):
            return int(primary[1])
    raise AssertionError(f"no node serves slot {slot}")


@dataclass
class SentinelSet:
    """A primary, its replica and three Sentinels watching them as `SENTINEL_MASTER`."""

    servers: Servers
    primary: int
    replica: int
    sentinels: list[int]

    @property
    def sentinels_setting(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinels)

    def current_primary(self) -> int:
        client = redis.Redis(port=self.sentinels[0], socket_timeout=1, decode_responses=True)
        return int(client.sentinel_get_master_addr_by_name(SENTINEL_MASTER)[1])

    def wait_watching(self) -> None:
        """Until every Sentinel knows the two others (they meet through the primary every 2 s):
        only then can a quorum of them fail it over."""
        def watching() -> bool:
            return all(int(redis.Redis(port=port, socket_timeout=1, decode_responses=True)
                           .sentinel_master(SENTINEL_MASTER)["num-other-sentinels"]) == 2
                       for port in self.sentinels)

        _until(watching, "the Sentinels to find each other")

    def kill_primary(self) -> None:
        self.wait_watching()
        self.servers.kill(self.primary)

    def wait_failover(self, timeout: float = 60.0) -> None:
        """Until the Sentinels have promoted the replica and it takes writes."""
        def promoted() -> bool:
            return (self.current_primary() == self.replica and redis.Redis(
                port=self.replica, socket_timeout=1, decode_responses=True)
                .info("replication")["role"] == "master")

        _until(promoted, "the Sentinels to promote the replica", timeout)


@contextmanager
def sentinel_set(directory: Path) -> Iterator[SentinelSet]:
    """AOF on with fsync on every write, so a server has what it acknowledged; a primary
    deemed down after 1 s without answers."""
    servers = Servers(directory)
    primary, replica = free_port(), free_port()
    durable = ("--appendonly", "yes", "--appendfsync", "always")
    try:
        servers.start(primary, *durable, "--appendfilename", f"primary-{primary}.aof",
                      "--appenddirname", f"aof-{primary}")
        servers.start(replica, *durable, "--appendfilename", f"replica-{replica}.aof",
                      "--appenddirname", f"aof-{replica}", "--replicaof", "127.0.0.1",
                      str(primary))
        _until(lambda: redis.Redis(port=replica, socket_timeout=1, decode_responses=True)
               .info("replication")["master_link_status"] == "up", "the replica to sync")
        sentinels = [free_port() for _ in range(3)]
        for port in sentinels:
            config = directory / f"sentinel-{port}.conf"
            config.write_text(
                f"sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {primary} 2\n"
                f"sentinel down-after-milliseconds {SENTINEL_MASTER} 1000\n"
                f"sentinel failover-timeout {SENTINEL_MASTER} 5000\n"
                f"sentinel parallel-syncs {SENTINEL_MASTER} 1\n")
            servers.start(port, str(config), "--sentinel")
        yield SentinelSet(servers, primary, replica, sentinels)
    finally:
        servers.stop_all()
