"""Prometheus metrics, aggregated in Redis so that any API process shows every worker's.

Each process adds what it saw to in-memory sums (`MetricsRecorder`) and writes them to one Redis
hash about once a second; `GET /metrics` reads that hash, the queues' counts and the workers'
heartbeats, and renders the Prometheus text format. A counter survives a process's restart, and
several worker processes on several machines add up without Prometheus's multiprocess mode
(which works on one machine only).
"""
