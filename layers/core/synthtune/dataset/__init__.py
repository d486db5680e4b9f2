"""Assemble: the shards' answers become a verified, deduplicated, decontaminated fine-tuning dataset.

`assemble` runs the step; `gates` holds the per-answer checks and the names of every drop, `dedup` and
`contamination` the dataset-wide ones, `openai_format` the checks a file must pass before upload, `card`
the dataset card and `exports` the copies for other trainers. Import the module you need: this package
imports nothing, so a handler that needs one constant does not load the duplicate index.
"""
