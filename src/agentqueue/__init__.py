"""agentqueue: background AI-agent work over the BullMQ protocol.

The public Python API: define job types on an `App`, enqueue them, wait for their results
(see README's "Python API").
"""

__version__ = "0.1.0"  # first: modules imported below read it

from agentqueue.app import App, JobRequest, Owner
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

__all__ = [
    "App",
    "BulkEnqueueError",
    "EnqueueOptions",
    "InvalidJobInput",
    "Job",
    "JobContext",
    "JobEvent",
    "JobFailed",
    "JobNotFinished",
    "JobNotFound",
    "JobNotRetryable",
    "JobRequest",
    "JobUsage",
    "Owner",
    "PermanentJobError",
    "UnknownJobType",
    "__version__",
]
