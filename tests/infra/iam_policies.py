"""The IAM policies template.yaml gives each principal, as the SAM transform deploys them, and the one
question the least-privilege test asks of them: which grant allows this request?

A policy is read from the translated template (so SAM policy templates would count as what they expand to)
and cut into grants: one action on one resource under one value of each condition, tagged with its
statement's Sid. A grant's resource stays a template expression until it is resolved against the
environment of the stack a request was made in (its Region, bucket, table and secret).

Hand-written, about a hundred lines: moto's evaluator (moto.iam.access_control) says only whether a whole
policy allows a request, not which statement did, which the "no unused grant" half needs; it also turns
every character of a resource pattern but `*` into a regular expression. Only what these policies use is
understood (Allow statements; Action and Resource; StringEquals, StringLike, ArnEquals, ArnLike
conditions); anything else is an error, never a silent pass.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from synthtune_cli.offline import ACCOUNT_ID, STATE_MACHINE_NAME, OfflineStack
from tests.infra.aws_calls import IamRequest

CONDITION_OPERATORS = frozenset({"StringEquals", "StringLike", "ArnEquals", "ArnLike"})
ACTIONS_WITHOUT_RESOURCES = frozenset({"bedrock:ListFoundationModels"})
"""A function's actions that IAM authorises on Resource "*" only (their resource type is none), each the one
exception to the rule that no function is granted anything on "*"."""


class UnsupportedPolicy(ValueError):
    """A policy uses IAM syntax this module does not evaluate."""


@dataclass(frozen=True)
class StackEnvironment:
    """What template references stand for in one offline stack."""

    region: str
    references: dict[str, str]

    @classmethod
    def of(cls, stack: OfflineStack, template: dict[str, Any]) -> StackEnvironment:
        """Read from the functions' environment while `stack` runs: each Globals variable names the
        reference it holds (DATA_BUCKET_NAME: !Ref DataBucket), so the policy is resolved against the very
        names the code used."""
        references = {
            "AWS::Partition": "aws",
            "AWS::Region": stack.region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": STATE_MACHINE_NAME.removesuffix("-pipeline"),
        }
        variables = template["Globals"]["Function"]["Environment"]["Variables"]
        for name, value in variables.items():
            if isinstance(value, dict) and "Ref" in value:
                references[value["Ref"]] = os.environ[name]
            elif isinstance(value, dict) and "Fn::GetAtt" in value:
                references[".".join(value["Fn::GetAtt"])] = os.environ[name]
        for logical_id, resource in template["Resources"].items():
            kind = resource["Type"]
            if kind == "AWS::Serverless::Function":
                references[logical_id] = logical_id  # the offline runtime's function name
                references[f"{logical_id}.Arn"] = (
                    f"arn:aws:lambda:{stack.region}:{ACCOUNT_ID}:function:{logical_id}"
                )
            elif kind == "AWS::S3::Bucket" and logical_id in references:
                references[f"{logical_id}.Arn"] = f"arn:aws:s3:::{references[logical_id]}"
            elif kind == "AWS::DynamoDB::Table" and logical_id in references:
                references[f"{logical_id}.Arn"] = (
                    f"arn:aws:dynamodb:{stack.region}:{ACCOUNT_ID}:table/{references[logical_id]}"
                )
        return cls(stack.region, references)

    def resolve(self, node: Any) -> str:
        if isinstance(node, str):
            return node
        if isinstance(node, dict) and len(node) == 1:
            ((function, argument),) = node.items()
            if function == "Ref":
                return self._lookup(argument)
            if function == "Fn::GetAtt":
                return self._lookup(".".join(argument) if isinstance(argument, list) else argument)
            if function == "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument
                local = {name: self.resolve(value) for name, value in variables.items()}
                return re.sub(r"\$\{([^}!]+)\}", lambda m: local.get(m[1]) or self._lookup(m[1]), text)
            if function == "Fn::Join":
                delimiter, parts = argument
                return str(delimiter).join(self.resolve(part) for part in parts)
        raise UnsupportedPolicy(f"cannot resolve {node!r}")

    def _lookup(self, name: str) -> str:
        if name not in self.references:
            raise UnsupportedPolicy(f"no offline value for {name}: add it to StackEnvironment.of")
        return self.references[name]

    def template_form(self, value: str) -> str:
        """A concrete ARN written back as template.yaml would grant it (run ids as *)."""
        replacements = sorted(
            (
                (resolved, f"${{{name}}}")
                for name, resolved in self.references.items()
                if resolved.startswith("arn:")
            ),
            key=lambda pair: -len(pair[0]),
        )
        for resolved, expression in replacements:
            value = value.replace(resolved, expression)
        value = re.sub(r"^arn:aws:", "arn:${AWS::Partition}:", value)
        value = value.replace(f":{self.region}:", ":${AWS::Region}:").replace(
            f":{ACCOUNT_ID}:", ":${AWS::AccountId}:"
        )
        return re.sub(r"runs/[^/]+/", "runs/*/", value)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _wildcard(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    """IAM's pattern language: `*` any run of characters (including none), `?` any one character."""
    regex = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.compile(regex, re.IGNORECASE if ignore_case else 0)


@dataclass(frozen=True)
class Grant:
    """One action on one resource, under one value of each of its statement's conditions."""

    principal: str
    sid: str
    action: str
    resource: Any  # a template expression, resolved per stack
    conditions: tuple[tuple[str, str, str], ...]  # (operator, key, value)

    def allows(self, request: IamRequest, environment: StackEnvironment) -> bool:
        if not _wildcard(self.action, ignore_case=True).fullmatch(request.action):
            return False
        if not _wildcard(environment.resolve(self.resource)).fullmatch(request.resource):
            return False
        context = dict(request.context)
        for operator, key, value in self.conditions:
            if key not in context:
                return False
            if operator.endswith("Like"):
                if not _wildcard(value).fullmatch(context[key]):
                    return False
            elif context[key] != value:
                return False
        return True

    def __str__(self) -> str:
        where = "".join(f" when {key} {operator} {value!r}" for operator, key, value in self.conditions)
        return f"{self.sid or '(no Sid)'}: {self.action} on {template_text(self.resource)}{where}"


def template_text(node: Any) -> str:
    """A template expression as template.yaml writes it (`!GetAtt RunsTable.Arn`, `!Sub "..."`)."""
    if isinstance(node, dict) and len(node) == 1:
        ((function, argument),) = node.items()
        if function == "Ref":
            return f"!Ref {argument}"
        if function == "Fn::GetAtt":
            return f"!GetAtt {'.'.join(argument) if isinstance(argument, list) else argument}"
        if function == "Fn::Sub" and isinstance(argument, str):
            return f'!Sub "{argument}"'
    return str(node)


def _condition_choices(condition: dict[str, Any]) -> list[tuple[tuple[str, str, str], ...]]:
    choices: list[tuple[tuple[str, str, str], ...]] = [()]
    for operator, keys in condition.items():
        if operator not in CONDITION_OPERATORS:
            raise UnsupportedPolicy(f"condition operator {operator} is not evaluated here")
        for key, values in keys.items():
            choices = [
                (*choice, (operator, key, str(value))) for choice in choices for value in _as_list(values)
            ]
    return choices


def statement_grants(principal: str, statement: dict[str, Any]) -> list[Grant]:
    unsupported = {"NotAction", "NotResource", "NotPrincipal", "Principal"} & set(statement)
    if statement.get("Effect") != "Allow" or unsupported:
        raise UnsupportedPolicy(f"{principal}: only Allow statements with Action and Resource: {statement}")
    return [
        Grant(principal, statement.get("Sid", ""), action, resource, conditions)
        for action in _as_list(statement["Action"])
        for resource in _as_list(statement["Resource"])
        for conditions in _condition_choices(statement.get("Condition", {}))
    ]


def principal_role(translated: dict[str, Any], principal: str) -> dict[str, Any]:
    """The IAM role a principal acts with, in the translated template."""
    resources = translated["Resources"]
    resource = resources[principal]
    role_reference = {
        "AWS::IAM::Role": None,
        "AWS::Lambda::Function": resource["Properties"].get("Role"),
        "AWS::StepFunctions::StateMachine": resource["Properties"].get("RoleArn"),
    }[resource["Type"]]
    if role_reference is None:
        return dict(resource)
    (role_id, _) = role_reference["Fn::GetAtt"]
    return dict(resources[role_id])


def grants_of(translated: dict[str, Any], principal: str) -> list[Grant]:
    """Every grant of the principal's role's inline policies."""
    role = principal_role(translated, principal)
    return [
        grant
        for policy in role["Properties"].get("Policies", [])
        for statement in _as_list(policy["PolicyDocument"]["Statement"])
        for grant in statement_grants(principal, statement)
    ]
