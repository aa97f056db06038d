"""Telemetry intake: validate client event batches, buffer them, fold them into aggregates.

`schema` (pure) validates a batch; `buffer` stores it durably (Redis, or the database in the
embedded mode) with deduplication; `fold` (pure) turns batches into per-bucket deltas that
`aggregates` applies to MetricBucket exactly once; `exposure` counts server-side exposures.
"""
