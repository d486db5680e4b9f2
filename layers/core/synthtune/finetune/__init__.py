"""Fine-tuning: one interface (`FineTuneBackend`), one implementation per provider.

OpenAI is the first backend; Amazon Bedrock model customisation is meant to be the next, behind the
same interface, chosen by `RunConfig.fine_tune_backend`.
"""
