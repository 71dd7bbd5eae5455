"""The core under every API: the mappings (status and priority) every router translates through."""
