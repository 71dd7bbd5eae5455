"""Background duties under a Redis lease, in every process kind: `duties` lists them (add one
there, in one line), `runner` makes sure one process at a time does each, `repair` mends
records after crashes. Schedules and cleanup come here too."""
