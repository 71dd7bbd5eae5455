"""The App of the dead-letter CLI test (`--app tests.cli.dead_letter_app:app`)."""

from agentqueue.config import Settings
from tests.api.test_dead_letters import make_app

app = make_app(Settings())
