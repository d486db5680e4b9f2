"""Assemble: the shards' answers become a verified, deduplicated, decontaminated fine-tuning dataset."""

from synthtune.dataset.assemble import (
    MIN_TRAINING_EXAMPLES,
    ChatExample,
    ChatMessage,
    assemble_dataset,
    drop_reason,
    training_example,
)

__all__ = [
    "MIN_TRAINING_EXAMPLES",
    "ChatExample",
    "ChatMessage",
    "assemble_dataset",
    "drop_reason",
    "training_example",
]
