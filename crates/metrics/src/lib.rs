//! M3trics: ingestion, storage, queries and reports.
