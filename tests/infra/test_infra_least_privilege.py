"""Least privilege, proven: each principal of the stack is granted exactly what its code asks AWS for.

The real state machine runs offline along every path that reaches AWS differently — Bedrock and OpenAI
models, a run started by an upload and one started by hand, batch mode, a fine-tune cancelled after the
longest wait, failures before and after a deployment exists, Provisioned Throughput — while
tests/infra/aws_calls.py records every call each function makes (and the state machine's, and the S3 reads
and writes Bedrock's jobs make with BedrockCustomizationRole). Each call becomes the IAM requests AWS would
authorise it with, and then, per principal:
- every request must be allowed by the principal's policy in template.yaml (no missing grant), and
- every grant in that policy must allow some request (no unused grant).
A grant only an untested path needs is listed, with the reason, under its resource's
`Metadata: UnexercisedGrants` (statement Sid: reason), beside the grant itself.

The other tests here state the rules that hold whatever the code does: no function may change the bucket's
configuration, only Prepare reads problem-sets/, nothing writes there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from synthtune.contracts.config import RunConfig
from synthtune.contracts.problems import parse_problem_set
from synthtune.money.estimate import worst_case_solve_usd
from synthtune_cli.clock import VirtualClock
from synthtune_cli.emulator import KnowledgeItem, OpenAIEmulator
from synthtune_cli.offline import OfflineStack
from synthtune_cli.template import load_template, resources_of_type
from tests.infra.aws_calls import (
    BEDROCK_SERVICE_ROLE,
    STATE_MACHINE,
    AwsCall,
    CallRecorder,
    IamRequest,
    UnmappedCall,
    iam_requests,
    record_aws_calls,
)
from tests.infra.iam_policies import (
    ACTIONS_WITHOUT_RESOURCES,
    Grant,
    StackEnvironment,
    grants_of,
    principal_role,
)
from tests.support import FAST_CONFIG, OPENAI_MODELS, SAMPLE_PROBLEM_SET, execute, sample_rows

SMALL_SET = sample_rows(per_category=8)
FUNCTIONS = sorted(resources_of_type(load_template(), "AWS::Serverless::Function"))
PRINCIPALS = [*FUNCTIONS, STATE_MACHINE, BEDROCK_SERVICE_ROLE]
UNEXERCISED = "UnexercisedGrants"

# What the Lambda runtime and X-Ray send for every function, outside the code's own calls (and so outside
# what the recorder sees): AWS's managed policies for exactly that, which SAM attaches.
MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "CloudWatch Logs: the runtime writes the function's log stream",
    "AWSXrayWriteOnlyAccess": "X-Ray: Tracing is Active, the runtime and Powertools send segments",
    "AWSXRayDaemonWriteAccess": "X-Ray: the state machine's Tracing sends segments",
}

WAITS_TOO_LONG = {"poll_interval_seconds": 300, "max_wait_seconds": 1200}
PROVISIONED_STUDENT = {
    "student_model": "bedrock/meta.llama3-1-8b-instruct-v1:0",
    "allow_provisioned_throughput": True,
    "budget_usd": 100.0,
}


def stopped_by_the_budget(config: dict[str, Any]) -> dict[str, Any]:
    """`config` with long answers allowed and a budget two and a half of whose worst cases fit: Prepare's
    estimate (short answers) passes it, and the first requests or batch the teacher is sent are refused."""
    longest = {**config, "max_output_tokens": 16_000}
    teacher = RunConfig.model_validate(longest).teacher_model
    question = max((row["question"] for row in SMALL_SET), key=len)
    return {**longest, "budget_usd": round(2.5 * worst_case_solve_usd(teacher, question, 16_000, 1), 4)}


@dataclass(frozen=True)
class Scenario:
    """One execution of the state machine, and how it must end (so a broken path fails here, loudly,
    instead of quietly covering less)."""

    name: str
    config: dict[str, Any]
    ends: str  # SUCCEEDED, or the error the execution fails with
    key: str = "problem-sets/least-privilege.jsonl"
    rows: list[dict[str, Any]] = field(default_factory=lambda: SMALL_SET)
    region: str = "us-east-1"
    emulator_setup: Callable[[OpenAIEmulator], object] = lambda emulator: None


SCENARIOS = [
    Scenario("bedrock-from-an-upload", FAST_CONFIG, "SUCCEEDED"),
    # Started by hand, from the prefix the README gives for that (an upload under problem-sets/ would start
    # a second run).
    Scenario(
        "openai-started-by-hand", {**FAST_CONFIG, **OPENAI_MODELS}, "SUCCEEDED", key="inputs/by-hand.jsonl"
    ),
    Scenario("openai-batch", {**FAST_CONFIG, **OPENAI_MODELS, "generation": {"mode": "batch"}}, "SUCCEEDED"),
    Scenario(
        "bedrock-cancelled",
        {**FAST_CONFIG, **WAITS_TOO_LONG},
        "FineTuneTimedOut",
        emulator_setup=lambda emulator: emulator.configure(min_training_seconds=10_000),
    ),
    Scenario(
        "openai-cancelled",
        {**FAST_CONFIG, **OPENAI_MODELS, **WAITS_TOO_LONG},
        "FineTuneTimedOut",
        emulator_setup=lambda emulator: emulator.configure(min_training_seconds=10_000),
    ),
    Scenario(
        "openai-fine-tune-fails",
        {**FAST_CONFIG, **OPENAI_MODELS},
        "FineTuneFailed",
        emulator_setup=lambda emulator: emulator.configure(fine_tune_failure="Simulated GPU failure"),
    ),
    Scenario(
        "bedrock-benchmark-fails-after-deployment",
        FAST_CONFIG,
        "ModelRequestRejected",
        emulator_setup=lambda emulator: emulator.inject_errors(
            count=1000, status=400, path_prefix="/model/arn:"
        ),
    ),
    # The fine-tuned student's third answer is billed and its reply lost, with one try per request: the
    # contestant fails, its failure records what its checkpoints hold, and its retry reads them back.
    Scenario(
        "bedrock-benchmark-resumes",
        {**FAST_CONFIG, "request_concurrency": 1, "generation": {"max_attempts": 1}},
        "SUCCEEDED",
        emulator_setup=lambda emulator: emulator.lose_fraction(0.3, seed=17, path_prefix="/model/arn:"),
    ),
    # The budget refuses the teacher's requests (online) and its batch: each says what the run has spent.
    Scenario("budget-stops-generation", stopped_by_the_budget(FAST_CONFIG), "BudgetExceeded"),
    Scenario(
        "budget-stops-a-batch",
        stopped_by_the_budget({**FAST_CONFIG, **OPENAI_MODELS, "generation": {"mode": "batch"}}),
        "BudgetExceeded",
    ),
    Scenario(
        "invalid-problem-set", FAST_CONFIG, "InvalidProblemSet", rows=[{"question": "2+2?", "anwser": "4"}]
    ),
    # A teacher Bedrock does not know: Prepare lists the models it does, to name the closest.
    Scenario(
        "unknown-model",
        {**FAST_CONFIG, "teacher_model": "bedrock/us.amazon.nova-3-lite-v1:0"},
        "InvalidConfig",
    ),
    # The teacher refuses every request: RecordFailure reads the shards' items to say why each failed.
    Scenario(
        "teacher-refuses",
        FAST_CONFIG,
        "GenerationIncomplete",
        emulator_setup=lambda emulator: emulator.inject_errors(
            count=10_000, status=400, path_prefix="/model/us."
        ),
    ),
    # Bedrock creates the job, then StartFineTune's lookup of it fails for good: RecordFailure finds the job
    # by the run's name and stops it.
    Scenario(
        "bedrock-job-left-running",
        {**FAST_CONFIG, **WAITS_TOO_LONG},
        "ModelRequestRejected",
        emulator_setup=lambda emulator: (
            emulator.configure(min_training_seconds=10_000),
            emulator.inject_errors(
                count=1, status=404, path_prefix="/model-customization-jobs/synthtune-job-"
            ),
            emulator.inject_errors(
                count=1, status=400, path_prefix="/model-customization-jobs/synthtune-job-"
            ),
        ),
    ),
    # Llama 3.1 fine-tunes answer only through Provisioned Throughput (us-west-2); failing the benchmark also
    # sends ReleaseAfterFailure looking for it by name.
    Scenario(
        "provisioned-throughput-benchmark-fails",
        {**FAST_CONFIG, **PROVISIONED_STUDENT},
        "ModelRequestRejected",
        region="us-west-2",
        emulator_setup=lambda emulator: emulator.inject_errors(
            count=1000, status=400, path_prefix="/model/arn:"
        ),
    ),
]


def _run(scenario: Scenario, recorder: CallRecorder, template: dict[str, Any]) -> StackEnvironment:
    recorder.scenario = scenario.name
    clock = VirtualClock(start=1_800_000_000.0)

    def service_role_s3() -> Any:
        return recorder.client_for(BEDROCK_SERVICE_ROLE, boto3.client("s3", region_name=scenario.region))

    emulator = OpenAIEmulator(clock=clock, region=scenario.region, s3_client=service_role_s3)
    problems = parse_problem_set(SAMPLE_PROBLEM_SET.read_bytes().splitlines(), "sample", "jsonl")
    emulator.add_knowledge(
        KnowledgeItem(question=p.question, answer=p.answer, category=p.category) for p in problems
    )
    scenario.emulator_setup(emulator)
    with (
        emulator.serve() as server,
        OfflineStack(
            openai_api_key="sk-test",
            parameters={"OpenAIBaseUrl": server.base_url},
            clock=clock,
            region=scenario.region,
            extra_environment={"OPENAI_MAX_RETRIES": "0", **server.bedrock_environment()},
        ) as stack,
    ):
        environment = StackEnvironment.of(stack, template)
        execution = execute(
            stack, scenario.rows, run_id=scenario.name, config=scenario.config, key=scenario.key
        )
    ended = execution.status if execution.status == "SUCCEEDED" else execution.description.get("error")
    assert ended == scenario.ends, f"{scenario.name} ended {ended}: {execution.description.get('cause')}"
    return environment


@dataclass
class Recording:
    calls: list[AwsCall]
    environments: dict[str, StackEnvironment]


@pytest.fixture(scope="module")
def recording(template: dict[str, Any]) -> Iterator[Recording]:
    with pytest.MonkeyPatch.context() as patch:
        # The autouse offline environment is function-scoped; this fixture runs before it.
        for name in ("AWS_PROFILE", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        with record_aws_calls() as recorder:
            environments = {scenario.name: _run(scenario, recorder, template) for scenario in SCENARIOS}
        yield Recording(recorder.calls, environments)


def _unexercised_allowed(template: dict[str, Any], principal: str) -> dict[str, str]:
    allowed: dict[str, str] = template["Resources"][principal].get("Metadata", {}).get(UNEXERCISED, {})
    return allowed


def test_each_principal_is_granted_exactly_what_its_code_uses(
    recording: Recording, template: dict[str, Any], translated_template: dict[str, Any]
) -> None:
    problems: list[str] = []
    requests: dict[str, list[tuple[IamRequest, AwsCall]]] = {principal: [] for principal in PRINCIPALS}
    for call in recording.calls:
        if call.principal not in requests:
            problems.append(f"{call.principal} made {call} but is not a principal this test knows")
            continue
        try:
            requests[call.principal] += [(request, call) for request in iam_requests(call)]
        except UnmappedCall:
            problems.append(
                f"{call.principal} calls {call}: map it to its IAM actions in tests/infra/aws_calls.py"
            )

    for principal in PRINCIPALS:
        grants = grants_of(translated_template, principal)
        if not requests[principal]:
            problems.append(f"{principal} made no AWS call in any scenario: add a scenario that runs it")
        problems += _missing_grants(principal, grants, requests[principal], recording.environments)
        problems += _unused_grants(
            principal,
            grants,
            requests[principal],
            recording.environments,
            _unexercised_allowed(template, principal),
        )
    assert not problems, "template.yaml's IAM does not match what the code does:\n  " + "\n  ".join(problems)


def _missing_grants(
    principal: str,
    grants: list[Grant],
    requests: list[tuple[IamRequest, AwsCall]],
    environments: dict[str, StackEnvironment],
) -> list[str]:
    missing: dict[str, str] = {}
    for request, call in requests:
        environment = environments[call.scenario]
        if any(grant.allows(request, environment) for grant in grants):
            continue
        wanted = IamRequest(
            request.action,
            environment.template_form(request.resource),
            tuple((key, environment.template_form(value)) for key, value in request.context),
        )
        missing.setdefault(
            str(wanted),
            f"{principal} needs {wanted} (for {call}): grant it in template.yaml, {principal}'s Policies",
        )
    return sorted(missing.values())


def _unused_grants(
    principal: str,
    grants: list[Grant],
    requests: list[tuple[IamRequest, AwsCall]],
    environments: dict[str, StackEnvironment],
    unexercised: dict[str, str],
) -> list[str]:
    unused = [
        grant
        for grant in grants
        if not any(grant.allows(request, environments[call.scenario]) for request, call in requests)
    ]
    problems = [
        f"{principal} is granted {grant}, which no tested path uses: remove it from template.yaml, add the "
        f"path that needs it to SCENARIOS, or give the reason under {principal}'s Metadata {UNEXERCISED}"
        for grant in unused
        if grant.sid not in unexercised
    ]
    sids = {grant.sid for grant in grants}
    unused_sids = {grant.sid for grant in unused}
    for sid, reason in unexercised.items():
        if sid not in sids:
            problems.append(f"{principal}'s Metadata {UNEXERCISED} names {sid}, which no statement has")
        elif sid not in unused_sids:
            problems.append(f"{principal}'s {sid} is used by a tested path: drop it from {UNEXERCISED}")
        elif len(reason.split()) < 5:
            problems.append(f"{principal}'s {UNEXERCISED} {sid}: say why the grant is needed")
    return problems


# ------------------------------------------------------------------------------- rules, whatever the code

BUCKET = "synthtune-rules-bucket"
RULES_ENVIRONMENT = StackEnvironment(
    "us-east-1",
    {
        "AWS::Partition": "aws",
        "AWS::Region": "us-east-1",
        "AWS::AccountId": "123456789012",
        "AWS::StackName": "rules",
        "DataBucket": BUCKET,
        "DataBucket.Arn": f"arn:aws:s3:::{BUCKET}",
    },
)
OBJECT_ACTIONS = {
    "s3:GetObject",
    "s3:PutObject",
    "s3:AbortMultipartUpload",
    "s3:DeleteObject",
    "s3:ListBucket",
}


def _s3_grants(translated: dict[str, Any], principal: str) -> list[Grant]:
    return [grant for grant in grants_of(translated, principal) if grant.action.lower().startswith("s3:")]


def _resolvable(grant: Grant) -> str | None:
    """The grant's resource in the rules' environment; None for one on something other than the bucket."""
    try:
        return RULES_ENVIRONMENT.resolve(grant.resource)
    except ValueError:
        return None


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_no_principal_may_change_the_bucket_or_use_a_wildcard(
    translated_template: dict[str, Any], principal: str
) -> None:
    for grant in grants_of(translated_template, principal):
        assert "*" not in grant.action and "?" not in grant.action, f"{principal}: {grant}"
        if grant.resource == "*":
            # Only actions that take no resource ARN: the log delivery Step Functions needs, and the list
            # of Bedrock's models Prepare names the closest from.
            assert (principal, grant.sid) == (STATE_MACHINE, "ExecutionLogDelivery") or (
                principal in FUNCTIONS and grant.action in ACTIONS_WITHOUT_RESOURCES
            ), f"{principal}: {grant}"
        if grant.action.lower().startswith("s3:"):
            # Lifecycle rules, the bucket policy, notifications, versioning: the stack's, never a function's.
            assert grant.action in OBJECT_ACTIONS, f"{principal}: {grant}"


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_only_prepare_reads_problem_sets_and_nothing_writes_there(
    translated_template: dict[str, Any], principal: str
) -> None:
    problem_set = IamRequest("s3:GetObject", f"arn:aws:s3:::{BUCKET}/problem-sets/set.jsonl")
    listing = IamRequest("s3:ListBucket", f"arn:aws:s3:::{BUCKET}", (("s3:prefix", "problem-sets/"),))
    reaching = {
        grant.action
        for grant in _s3_grants(translated_template, principal)
        if _resolvable(grant) is not None
        and any(
            grant.allows(dataclasses.replace(request, action=grant.action), RULES_ENVIRONMENT)
            for request in (problem_set, listing)
        )
    }
    assert reaching == ({"s3:GetObject"} if principal == "PrepareFunction" else set())


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_roles_carry_only_the_managed_policies_for_logs_and_traces(
    translated_template: dict[str, Any], principal: str
) -> None:
    role = principal_role(translated_template, principal)
    managed = {
        arn["Fn::Sub"].rsplit("/", 1)[-1] if isinstance(arn, dict) else str(arn).rsplit("/", 1)[-1]
        for arn in role["Properties"].get("ManagedPolicyArns", [])
    }
    assert managed <= set(MANAGED_POLICIES), f"{principal}: {managed - set(MANAGED_POLICIES)}"
