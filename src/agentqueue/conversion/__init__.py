"""Streaming conversion between tabular data formats (CSV, JSON, JSONL), row by row in bounded
memory, and the files it reads and writes: uploads and outputs stored per owner under the data
directory, and paths confined to the operator's roots. Knows nothing of queues or HTTP."""
