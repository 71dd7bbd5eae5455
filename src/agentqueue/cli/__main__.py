"""`python -m agentqueue.cli`: the `agentqueue` command, run from whatever is on PYTHONPATH."""

from agentqueue.cli import app

app()
