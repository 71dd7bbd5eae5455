"""The dashboard's page and assets (`static/`), served by `agentqueue.api.dashboard`."""
