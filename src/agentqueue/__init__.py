"""agentqueue: background AI-agent work over the BullMQ protocol.

The public Python API: define job types on an `App`, enqueue them, wait for their results
(see README's "Python API").
"""

__version__ = "0.1.0"  # first: modules imported below read it

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
from agentqueue.handle import Job, JobEvent, JobUsage
from agentqueue.options import EnqueueOptions
from agentqueue.queues import Queue, QueueCounts, QueueEvent
from agentqueue.registry import JobRegistry

__all__ = [
    "App",
    "BulkEnqueueError",
    "Context",
    "EnqueueOptions",
    "InvalidJobInput",
    "Job",
    "JobContext",
    "JobEvent",
    "JobFailed",
    "JobNotFinished",
    "JobNotFound",
    "JobNotRetryable",
    "JobRegistry",
    "JobRequest",
    "JobUsage",
    "JobView",
    "Middleware",
    "Owner",
    "PermanentJobError",
    "Queue",
    "QueueCounts",
    "QueueEvent",
    "UnknownJobType",
    "__version__",
]
