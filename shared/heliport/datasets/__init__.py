"""Datasets: curated logged requests, exported for fine-tuning and analysis.

The API over the stored datasets is ``heliport.api.datasets``; this package holds what does not touch
the database: turning a logged request and its answer into OpenAI's fine-tuning messages
(:mod:`heliport.datasets.messages`) and writing the JSONL and CSV exports (:mod:`heliport.datasets.export`).
"""
