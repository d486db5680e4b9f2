"""The serving port for OpenAI: a fine-tuned model answers under its own name, so there is nothing to do."""

from __future__ import annotations

from synthtune.contracts.workflow import FineTuneState, ServingState


class OpenAIServing:
    def prepare(self, run_id: str, job: FineTuneState, *, provisioned_throughput: bool) -> ServingState:
        if job.fine_tuned_model is None:
            return ServingState(
                provider="openai", kind="none", status="failed", model="", error="the job produced no model"
            )
        return ServingState(provider="openai", kind="none", status="active", model=job.fine_tuned_model)

    def status(self, serving: ServingState) -> ServingState:
        return serving

    def find(self, run_id: str) -> ServingState | None:
        return None

    def release(self, serving: ServingState) -> ServingState:
        return serving.model_copy(update={"status": "released"})
