"""agentqueue: background AI-agent work over the BullMQ protocol."""

__version__ = "0.1.0"
