"""Background duties under a lease: record repair (schedules and cleanup come here too)."""
