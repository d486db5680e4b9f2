"""Everything one emulated AWS account remembers of Bedrock in one region."""

from __future__ import annotations

from synthtune_cli.emulator.bedrock.custom_models import CustomModels
from synthtune_cli.emulator.bedrock.customization_jobs import CustomizationJobs
from synthtune_cli.emulator.bedrock.deployments import Deployments
from synthtune_cli.emulator.bedrock.protocol import Arns
from synthtune_cli.emulator.bedrock.provisioned_throughput import ProvisionedThroughputs
from synthtune_cli.emulator.bedrock.s3_objects import S3ClientFactory, S3Objects, default_factory
from synthtune_cli.emulator.draws import IdFactory
from synthtune_cli.emulator.knobs import EmulatorKnobs
from synthtune_cli.emulator.knowledge import Knowledge
from synthtune_cli.emulator.limits import RateLimiter


class BedrockAccount:
    """Jobs, custom models, deployments, Provisioned Throughputs, Converse's rate-limit windows and
    sample counts. Not thread-safe: the emulator's state lock guards it."""

    def __init__(
        self,
        region: str,
        ids: IdFactory,
        knowledge: Knowledge,
        seed: int,
        s3_client: S3ClientFactory | None = None,
    ) -> None:
        self.region = region
        self.ids = ids
        self.arns = Arns(region)
        self.s3 = S3Objects(s3_client or default_factory(region))
        self.custom_models = CustomModels()
        self.jobs = CustomizationJobs(self.arns, ids, knowledge, seed, self.s3, self.custom_models)
        self.deployments = Deployments(self.arns, ids, self.custom_models)
        self.provisioned = ProvisionedThroughputs(self.arns, ids, self.custom_models)
        # Bedrock's quotas are its own: Converse is limited in a window apart from OpenAI's chat.
        self.limiter = RateLimiter()
        self._samples: dict[tuple[str, str], int] = {}

    def next_sample(self, model: str, question: str) -> int:
        """How many sampling requests for (model, question) came before this one: Converse has no `n`, so
        separate requests are a model's successive samples."""
        sample = self._samples.get((model, question), 0)
        self._samples[(model, question)] = sample + 1
        return sample

    def refresh(self, now: float, knobs: EmulatorKnobs) -> None:
        self.jobs.refresh(now, knobs)
        self.deployments.refresh(now, knobs)
        self.provisioned.refresh(now, knobs)

    def clear(self) -> None:
        self.jobs.clear()
        self.custom_models.clear()
        self.deployments.clear()
        self.provisioned.clear()
        self.limiter.clear()
        self._samples.clear()
        self.s3.forget_client()

    def counts(self) -> dict[str, int]:
        return {
            "customization_jobs": len(self.jobs),
            "custom_models": len(self.custom_models),
            "custom_model_deployments": len(self.deployments),
            "provisioned_throughputs": len(self.provisioned),
        }
