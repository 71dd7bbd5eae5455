"""agentqueue: background AI-agent work over the BullMQ protocol.

The public Python API: define job types on an `App`, enqueue them, wait for their results
(see README's "Python API").
"""

__version__ = "0.1.0"  # first: modules imported below read it

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentqueue.app import App, JobRequest, Owner
    from agentqueue.context import Context
    from agentqueue.engine.jobs import JobView
    from agentqueue.engine.middleware import Middleware
    from agentqueue.engine.worker import JobContext, PermanentJobError
    from agentqueue.errors import (
        BulkEnqueueError,
        InvalidJobInput,
        JobFailed,
        JobNotFinished,
        JobNotFound,
        JobNotRetryable,
        UnknownJobType,
    )
    from agentqueue.flows import Flow, FlowRun
    from agentqueue.handle import Job, JobEvent, RecordedUsage
    from agentqueue.options import EnqueueOptions
    from agentqueue.queues import Queue, QueueCounts, QueueEvent
    from agentqueue.registry import JobRegistry
    from agentqueue.scheduling import InvalidSchedule, Schedule, ScheduleNotFound

# Where each public name lives: imported on first use (PEP 562), so a process that only needs a
# part of agentqueue (the worker, `agentqueue keys`) does not load all of it at start.
_LOCATIONS = {
    "App": "agentqueue.app", "JobRequest": "agentqueue.app", "Owner": "agentqueue.app",
    "Context": "agentqueue.context",
    "JobView": "agentqueue.engine.jobs",
    "Middleware": "agentqueue.engine.middleware",
    "JobContext": "agentqueue.engine.worker", "PermanentJobError": "agentqueue.engine.worker",
    "BulkEnqueueError": "agentqueue.errors", "InvalidJobInput": "agentqueue.errors",
    "JobFailed": "agentqueue.errors", "JobNotFinished": "agentqueue.errors",
    "JobNotFound": "agentqueue.errors", "JobNotRetryable": "agentqueue.errors",
    "UnknownJobType": "agentqueue.errors",
    "Flow": "agentqueue.flows", "FlowRun": "agentqueue.flows",
    "Job": "agentqueue.handle", "JobEvent": "agentqueue.handle",
    "RecordedUsage": "agentqueue.handle",
    "EnqueueOptions": "agentqueue.options",
    "Queue": "agentqueue.queues", "QueueCounts": "agentqueue.queues",
    "QueueEvent": "agentqueue.queues",
    "JobRegistry": "agentqueue.registry",
    "InvalidSchedule": "agentqueue.scheduling", "Schedule": "agentqueue.scheduling",
    "ScheduleNotFound": "agentqueue.scheduling",
}


def __getattr__(name: str) -> Any:
    module = _LOCATIONS.get(name)
    if module is None:
        raise AttributeError(f"module 'agentqueue' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "App",
    "BulkEnqueueError",
    "Context",
    "EnqueueOptions",
    "Flow",
    "FlowRun",
    "InvalidJobInput",
    "InvalidSchedule",
    "Job",
    "JobContext",
    "JobEvent",
    "JobFailed",
    "JobNotFinished",
    "JobNotFound",
    "JobNotRetryable",
    "JobRegistry",
    "JobRequest",
    "RecordedUsage",
    "JobView",
    "Middleware",
    "Owner",
    "PermanentJobError",
    "Queue",
    "QueueCounts",
    "QueueEvent",
    "Schedule",
    "ScheduleNotFound",
    "UnknownJobType",
    "__version__",
]
