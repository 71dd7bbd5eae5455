"""agentqueue: background AI-agent work over the BullMQ protocol.

The public Python API: define job types on an `App`, enqueue them, wait for their results
(see README's "Python API").
"""

__version__ = "0.1.0"  # first: modules imported below read it

from agentqueue.app import (
    App,
    InvalidJobInput,
    Job,
    JobFailed,
    JobNotFinished,
    JobNotFound,
    Owner,
    UnknownJobType,
)
from agentqueue.engine.worker import JobContext, PermanentJobError

__all__ = [
    "App",
    "InvalidJobInput",
    "Job",
    "JobContext",
    "JobFailed",
    "JobNotFinished",
    "JobNotFound",
    "Owner",
    "PermanentJobError",
    "UnknownJobType",
    "__version__",
]
