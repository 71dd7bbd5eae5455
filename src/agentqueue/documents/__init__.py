"""Documents to search: their text (`extract`), cut into chunks (`chunks`), and the ranking of
stored chunk vectors against a query (`ranking`). Knows nothing of queues, SQL or HTTP: the
`document-processing` job (handlers.documents) and the index (records.documents) use it."""
