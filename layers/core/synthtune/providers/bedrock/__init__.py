"""Amazon Bedrock: every port, over boto3 (`bedrock` for customisation and deployments, `bedrock-runtime`
for Converse). Clients are made on first use; boto3 itself is in the Lambda runtime."""

from __future__ import annotations

from typing import Any

from synthtune.contracts.errors import InvalidConfig
from synthtune.providers.bedrock.chat import BedrockChat
from synthtune.providers.bedrock.client import READ_TIMEOUT_SECONDS, BedrockEndpoint, bedrock_client
from synthtune.providers.bedrock.finetune import BedrockFineTuning, ListKeys, ReadText
from synthtune.providers.bedrock.models import BedrockModels
from synthtune.providers.bedrock.serving import BedrockServing


def _control(endpoint: BedrockEndpoint | None = None) -> Any:
    from botocore.exceptions import NoRegionError

    try:
        return bedrock_client("bedrock", endpoint=endpoint)
    except NoRegionError:
        raise InvalidConfig(
            "Amazon Bedrock needs an AWS Region: set AWS_REGION or AWS_DEFAULT_REGION (Nova fine-tunes in "
            "us-east-1)"
        ) from None


def _region() -> str | None:
    """The Region runs fine-tune in (the functions' own), without making a client."""
    import boto3

    region: str | None = boto3.session.Session().region_name
    return region


class BedrockProvider:
    name = "bedrock"
    batch_generation = False

    def __init__(
        self,
        *,
        role_arn: str | None,
        read_text: ReadText,
        list_keys: ListKeys,
        endpoint: BedrockEndpoint | None = None,
    ) -> None:
        self._role_arn = role_arn
        self._read_text = read_text
        self._list_keys = list_keys
        self._endpoint = endpoint

    def _control(self) -> Any:
        return _control(self._endpoint)

    def _region(self) -> str | None:
        return self._endpoint.region if self._endpoint is not None else _region()

    def chat(self, *, request_timeout_seconds: float | None = None) -> BedrockChat:
        # One attempt per call: each Converse attempt may be billed, so the engine retries, in the ledger.
        runtime = bedrock_client(
            "bedrock-runtime",
            read_timeout=request_timeout_seconds or READ_TIMEOUT_SECONDS,
            max_attempts=1,
            endpoint=self._endpoint,
        )
        return BedrockChat(runtime)

    def batches(self) -> Any:
        raise InvalidConfig(
            "generation.mode 'batch' needs an OpenAI teacher: synthtune does not use Bedrock batch "
            "inference yet"
        )

    def fine_tuning(self) -> BedrockFineTuning:
        return BedrockFineTuning(
            self._control, role_arn=self._role_arn, read_text=self._read_text, list_keys=self._list_keys
        )

    def serving(self) -> BedrockServing:
        return BedrockServing(self._control)

    def models(self) -> BedrockModels:
        return BedrockModels(self._control, self._region)
