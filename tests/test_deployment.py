"""The deployment, checked without AWS: what `serverless package` makes of each configuration
(zip, CloudFormation template), and the stack that `serverless deploy` would build from it,
built in moto the way osls does it.

Four configurations, each packaged once by the real CLI in a temporary copy of the project:
  default   stage dev: no params (x86_64, bundled model, no concurrency settings, no API key)
  prod      stage prod: model from S3 (--param), its checksum, reserved concurrency, memory,
            /tmp size, API key with usage-plan throttling
  graviton  stage graviton: arm64, model from S3 given as env MODEL_S3_URI without checksum,
            provisioned and reserved concurrency
  http      stage web: an HTTP API (apiType=http) with a stage throttle instead of a REST API

moto 5 stands in for CloudFormation, S3, Lambda, API Gateway, IAM and CloudWatch Logs, with
known gaps; each is checked on the template instead, and a test pins the list so that a new
resource moto cannot create does not go unchecked (see MOTO_UNSUPPORTED and the notes there).
Only a real AWS account shows the rest: docs/DEPLOYMENT.md lists what these checks stand in for.
"""

import ast
import base64
import copy
import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.apigateway.models import Method
from moto.core import set_initial_no_auth_action_count

from handler import ROUTES
from model_source import S3Model, file_sha256, model_from_environment
from support import (
    PYTHON_TEXT,
    ROOT,
    SERVERLESS,
    ZIP_NAME,
    api_methods,
    cli_env,
    make_service,
    rest_event,
    run_cli,
    runtime_modules,
    static_files,
)

SERVICE = "fasttext-serverless"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
FUNCTION = "TagRecommendationsLambdaFunction"
# Dots in the bucket and the key: neither serverless.yml's lookups nor the ARN derivation may trip on them.
MODEL_BUCKET, MODEL_KEY = "tag-models.example", "models/v1.2/model.bin"
MODEL_URI = f"s3://{MODEL_BUCKET}/{MODEL_KEY}"
MODEL_ARN = f"arn:aws:s3:::{MODEL_BUCKET}/{MODEL_KEY}"
NAMED_PREFIX = f"s3://{MODEL_BUCKET}/named/v2"  # no trailing slash: serverless.params.js adds it
NAMED_S3_MODELS = ("forum", "news")
BINARIES = {"x86_64": "fasttext", "arm64": "fasttext-arm64"}
ELF_MACHINES = {"x86_64": 0x3E, "arm64": 0xB7}  # e_machine: EM_X86_64, EM_AARCH64
PIP_PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
LOG_ACTIONS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:TagResource"}
PSEUDO_PARAMETERS = {
    "AWS::Partition": "aws",
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
}

# Resource types in our templates that moto 5.2's CloudFormation does not create (it warns and
# skips them); each is asserted on the template in this file instead:
#   AWS::S3::BucketPolicy          the deployment bucket's TLS-only policy: test_deployment_bucket_*
#   AWS::ApiGateway::ApiKey        \
#   AWS::ApiGateway::UsagePlan      > apiKeyRequired: test_api_key_and_usage_plan_throttle
#   AWS::ApiGateway::UsagePlanKey  /
#   AWS::Lambda::Alias             provisioned concurrency: test_provisioned_concurrency_*; a stack
#                                  with it cannot come up in moto at all (the invoke permission
#                                  names the missing alias), so graviton is checked on its template.
# Created, but only in part:
#   AWS::Lambda::Function          Architectures and EphemeralStorage are dropped (moto reports
#                                  x86_64 and 512): asserted on the template.
#   AWS::ApiGateway::Method        a MOCK integration (the CORS preflight OPTIONS) makes moto fail
#                                  on the missing IntegrationHttpMethod/Uri; the shim below lets
#                                  moto create it; its responses (CORS headers) are template checks.
#   AWS::IAM::Role                 inline policies are stored as dicts, which moto's get_role_policy
#                                  and IAM evaluator cannot read; re-put unchanged as JSON after deploy.
#   change sets                    executing one does not compute the stack's Outputs: the
#                                  ServiceEndpoint output is evaluated from the template.
#   DescribeStackResource          fails for a resource listed after a skipped one: the deploy
#                                  steps use it (as osls does) only for the deployment bucket,
#                                  which comes first.
# moto 5.2 has an apigatewayv2 backend, but its CloudFormation creates none of the HTTP API's
# resources: the apiType=http stack comes up in moto without them (test_http_api_stack_in_moto),
# and the API, its routes, integration, stage and CORS are template checks (test_http_api_*).
MOTO_UNSUPPORTED_HTTP_API = {
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGatewayV2::Integration",
    "AWS::ApiGatewayV2::Route",
    "AWS::ApiGatewayV2::Stage",
}
MOTO_UNSUPPORTED = {
    "AWS::S3::BucketPolicy",
    "AWS::ApiGateway::ApiKey",
    "AWS::ApiGateway::UsagePlan",
    "AWS::ApiGateway::UsagePlanKey",
    "AWS::Lambda::Alias",
}


# moto warns about a resource it skips whenever it meets it again; deploy() records the
# warnings raised while it builds a stack, and a test compares them with MOTO_UNSUPPORTED.
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")


# --- packaging --------------------------------------------------------------------------------


@dataclass
class Config:
    name: str
    stage: str
    architecture: str
    model_in_s3: bool
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Packaged:
    config: Config
    service: Path

    def __post_init__(self):
        out = self.service / ".serverless"
        self.template = json.loads((out / "cloudformation-template-update-stack.json").read_text())
        self.create_template = json.loads((out / "cloudformation-template-create-stack.json").read_text())
        self.state = json.loads((out / "serverless-state.json").read_text())
        self.zip_path = out / ZIP_NAME
        self.zip = zipfile.ZipFile(self.zip_path)

    @property
    def resources(self) -> dict:
        return self.template["Resources"]

    def of_type(self, resource_type: str) -> dict:
        return {k: r for k, r in self.resources.items() if r["Type"] == resource_type}

    @property
    def function(self) -> dict:
        return self.resources[FUNCTION]["Properties"]

    @property
    def function_name(self) -> str:
        return f"{SERVICE}-{self.config.stage}-tagRecommendations"

    @property
    def stack_name(self) -> str:
        return f"{SERVICE}-{self.config.stage}"

    @property
    def binary(self) -> str:
        return BINARIES[self.config.architecture]

    def methods(self) -> dict[tuple[str, str], dict]:
        """(HTTP method, path such as /health) -> the method's properties."""
        return api_methods(self.resources)


CONFIGS = {
    "default": Config("default", stage="dev", architecture="x86_64", model_in_s3=False),
    "prod": Config(
        "prod", stage="prod", architecture="x86_64", model_in_s3=True,
        args=[
            "--stage", "prod", f"--param=modelS3Uri={MODEL_URI}", "--param=reservedConcurrency=20",
            "--param=memorySize=2048", "--param=ephemeralStorageSize=1024", "--param=apiKeyRequired=true",
            "--param=throttleRateLimit=25", "--param=throttleBurstLimit=50",
        ],  # + --param=modelSha256=<the tiny model's>, known once it is trained
    ),
    "graviton": Config(
        "graviton", stage="graviton", architecture="arm64", model_in_s3=True,
        args=["--stage", "graviton", "--param=architecture=arm64", "--param=provisionedConcurrency=2",
              "--param=reservedConcurrency=5"],
        env={"MODEL_S3_URI": MODEL_URI},  # + MODEL_SHA256=<the tiny model's>, known once it is trained
    ),
    "http": Config(
        "http", stage="web", architecture="x86_64", model_in_s3=False,
        args=["--stage", "web", "--param=apiType=http", "--param=throttleRateLimit=25",
              "--param=throttleBurstLimit=50"],
    ),
    # A function URL signed with SigV4, and named models in S3 beside the bundled default.
    "url": Config(
        "url", stage="url", architecture="x86_64", model_in_s3=False,
        args=["--stage", "url", "--param=apiType=url", f"--param=modelsS3Prefix={NAMED_PREFIX}"],
        # + --param=modelsSha256=forum=<the tiny model's>,news=<the same>, known once it is trained
    ),
    # A public function URL, capped by its reserved concurrency.
    "public": Config(
        "public", stage="public", architecture="x86_64", model_in_s3=False,
        args=["--stage", "public", "--param=apiType=url", "--param=urlAuth=none", "--param=reservedConcurrency=10"],
    ),
}


def package_config(tmp_path_factory, model: Path, config: Config) -> Packaged:
    service = make_service(tmp_path_factory.mktemp(config.name) / SERVICE, model)
    # make_service puts a decoy in place of the arm64 binary; every configuration gets the real
    # one, so that only serverless.yml decides which binary ships.
    (service / "fasttext-arm64").unlink()
    shutil.copy2(ROOT / "fasttext-arm64", service / "fasttext-arm64")  # keeps the executable bit
    args = list(config.args)
    if config.name == "prod":
        args.append(f"--param=modelSha256={file_sha256(str(model))}")
    if config.name == "url":
        args.append("--param=modelsSha256=" + ",".join(f"{n}={file_sha256(str(model))}" for n in NAMED_S3_MODELS))
    env = {**config.env, "MODEL_SHA256": file_sha256(str(model))} if config.name == "graviton" else config.env
    run_cli(service, "package", *args, env=env)
    return Packaged(config, service)


@pytest.fixture(scope="module")
def packages(tmp_path_factory, serverless_cli, fasttext_binary, fasttext_arm64, tiny_model):
    """Each configuration packaged once, on first use."""
    cache: dict[str, Packaged] = {}

    def get(name: str) -> Packaged:
        if name not in cache:
            cache[name] = package_config(tmp_path_factory, tiny_model, CONFIGS[name])
        return cache[name]

    yield get
    for packaged in cache.values():
        packaged.zip.close()


@pytest.fixture(params=list(CONFIGS))
def packaged(request, packages) -> Packaged:
    return packages(request.param)


# --- reading templates --------------------------------------------------------------------------


def evaluate(node):
    """The value of a template fragment, for the intrinsic functions our templates use."""
    if isinstance(node, list):
        return [evaluate(item) for item in node]
    if not isinstance(node, dict):
        return node
    if len(node) != 1 or not next(iter(node)).startswith(("Ref", "Fn::")):
        return {k: evaluate(v) for k, v in node.items()}
    ((function, arg),) = node.items()
    if function == "Ref" and arg in PSEUDO_PARAMETERS:
        return PSEUDO_PARAMETERS[arg]
    if function == "Fn::Join":
        return arg[0].join(evaluate(arg[1]))
    if function == "Fn::Split":
        return evaluate(arg[1]).split(arg[0])
    if function == "Fn::Select":
        return evaluate(arg[1])[int(arg[0])]
    if function == "Fn::Sub":
        text, variables = (arg, {}) if isinstance(arg, str) else arg
        values = {**PSEUDO_PARAMETERS, **{k: evaluate(v) for k, v in variables.items()}}
        return re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], text)
    raise AssertionError(f"not evaluated here: {node}")


def with_refs(node, **values):
    """`node` with {"Ref": name} replaced by values[name]: the physical names of resources."""
    if isinstance(node, list):
        return [with_refs(item, **values) for item in node]
    if isinstance(node, dict):
        if set(node) == {"Ref"} and node["Ref"] in values:
            return values[node["Ref"]]
        return {k: with_refs(v, **values) for k, v in node.items()}
    return node


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def role_statements(packaged: Packaged) -> list[dict]:
    """The Lambda role's policy statements, intrinsic functions evaluated."""
    iam = {k: r for k, r in packaged.resources.items() if r["Type"].startswith("AWS::IAM::")}
    assert list(iam) == ["IamRoleLambdaExecution"], "the function's role must be the only IAM resource"
    role = iam["IamRoleLambdaExecution"]["Properties"]
    assert "ManagedPolicyArns" not in role and "PermissionsBoundary" not in role
    assert packaged.function["Role"] == {"Fn::GetAtt": ["IamRoleLambdaExecution", "Arn"]}
    assert len(role["Policies"]) == 1
    return normalized_statements(evaluate(role["Policies"][0]["PolicyDocument"]["Statement"]))


def normalized_statements(statements: list[dict]) -> list[dict]:
    return [
        {"Effect": s["Effect"], "Action": sorted(as_list(s["Action"])), "Resource": sorted(as_list(s["Resource"]))}
        for s in statements
    ]


def split_log_statements(statements: list[dict], stage: str) -> tuple[list[dict], list[dict]]:
    """(the CloudWatch Logs statements, the rest); the former must cover only the function's logs."""
    logs = [s for s in statements if all(a.startswith("logs:") for a in s["Action"])]
    log_groups = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{SERVICE}-{stage}"
    for statement in logs:
        assert statement["Effect"] == "Allow"
        assert set(statement["Action"]) <= LOG_ACTIONS, statement
        assert all(r.startswith(log_groups) for r in statement["Resource"]), statement
    actions = {a for s in logs for a in s["Action"]}
    assert {"logs:CreateLogStream", "logs:PutLogEvents"} <= actions, "the function could not write its logs"
    return logs, [s for s in statements if s not in logs]


def expected_environment(packaged: Packaged, model_sha256: str) -> dict:
    env = {"FASTTEXT_BINARY": packaged.binary, "PREDICT_TIMEOUT_SECONDS": "5"}
    if not packaged.config.model_in_s3:
        env["MODEL_PATH"] = "model.bin"
    else:
        env.update(MODEL_S3_URI=MODEL_URI, MODEL_SHA256=model_sha256)
    if packaged.config.name == "url":
        env.update(MODELS_S3_PREFIX=NAMED_PREFIX + "/",
                   MODELS_SHA256=",".join(f"{n}={model_sha256}" for n in NAMED_S3_MODELS))
    return env


def elf_machine(header: bytes) -> int:
    assert header[:4] == b"\x7fELF", "not an ELF file"
    assert header[4] == 2 and header[5] == 1, "not a 64-bit little-endian ELF file"
    return int.from_bytes(header[18:20], "little")


# --- the package ----------------------------------------------------------------------------------


def test_zip_ships_the_runtime_the_binary_for_the_architecture_and_the_model_when_bundled(packaged):
    zf, service = packaged.zip, packaged.service
    runtime = runtime_modules(service) | static_files()
    expected = runtime | {packaged.binary} | (set() if packaged.config.model_in_s3 else {"model.bin"})
    assert sorted(zf.namelist()) == sorted(expected)
    for name in runtime:
        assert zf.read(name) == (service / name).read_bytes(), name
    if not packaged.config.model_in_s3:
        shipped = hashlib.sha256(zf.read("model.bin")).hexdigest()
        assert shipped == file_sha256(str(service / "model.bin")), "model.bin differs from the model packaged"
    assert zf.testzip() is None


def test_binary_in_the_zip_is_executable_and_built_for_the_architecture(packaged):
    info = packaged.zip.getinfo(packaged.binary)
    mode = info.external_attr >> 16
    assert stat.S_ISREG(mode) and mode & 0o111 == 0o111, f"{packaged.binary} lost its executable bit: {oct(mode)}"
    content = packaged.zip.read(packaged.binary)
    assert content == (ROOT / packaged.binary).read_bytes()
    assert elf_machine(content[:20]) == ELF_MACHINES[packaged.config.architecture]


def test_function_runs_the_binary_it_ships_on_its_architecture(packaged, tiny_model):
    function = packaged.function
    assert function["Architectures"] == [packaged.config.architecture]
    env = function["Environment"]["Variables"]
    assert env == expected_environment(packaged, file_sha256(str(tiny_model)))
    # The runtime resolves FASTTEXT_BINARY (and MODEL_PATH) against the package root.
    assert env["FASTTEXT_BINARY"] in packaged.zip.namelist()
    if "MODEL_PATH" in env:
        assert env["MODEL_PATH"] in packaged.zip.namelist()
    assert function["Handler"] == "handler.tagRecommendations"
    assert function["Runtime"] == "python3.12"
    assert function["Timeout"] == 10


def test_pip_fetches_wheels_for_the_architecture(packaged):
    args = packaged.state["service"]["custom"]["pythonRequirements"]["pipCmdExtraArgs"]
    platform = PIP_PLATFORMS[packaged.config.architecture]
    assert [a for a in args if a.startswith("--platform")] == [f"--platform {platform}"]


def test_unknown_architecture_is_refused(tmp_path, serverless_cli, tiny_model):
    service = make_service(tmp_path / SERVICE, tiny_model)
    result = subprocess.run(
        [str(SERVERLESS), "package", "--param=architecture=aarch64"],
        cwd=service, env=cli_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode != 0
    assert "architecture must be x86_64 or arm64, not 'aarch64'" in result.stdout + result.stderr
    assert not (service / ".serverless" / ZIP_NAME).exists()


# cfn-lint (installed with moto[cloudformation]) knows CloudFormation's resource specification:
# property names, types, allowed values, references. One warning comes from osls itself: the
# provisioned-concurrency alias has a DependsOn on the function it already references.
CFN_LINT_ACCEPTED = {"W3005"}


def test_templates_pass_cfn_lint(packaged):
    from cfnlint.api import ManualArgs, lint

    for template in [packaged.template, packaged.create_template]:
        matches = lint(json.dumps(template), config=ManualArgs(regions=[REGION]))
        problems = [f"{m.rule.id} {m.message}" for m in matches if m.rule.id not in CFN_LINT_ACCEPTED]
        assert problems == []


# --- IAM --------------------------------------------------------------------------------------------


def test_role_of_a_bundled_model_only_writes_its_logs(packages):
    default = packages("default")
    statements = role_statements(default)
    logs, rest = split_log_statements(statements, "dev")
    assert rest == []


@pytest.mark.parametrize("name", ["prod", "graviton"])
def test_role_of_a_model_in_s3_may_only_get_that_object(packages, name):
    packaged = packages(name)
    logs, rest = split_log_statements(role_statements(packaged), packaged.config.stage)
    assert rest == [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [MODEL_ARN]}]
    # The same logging rights as the default configuration's (its stage's log groups).
    default_logs, _ = split_log_statements(role_statements(packages("default")), "dev")
    assert json.dumps(logs) == json.dumps(default_logs).replace(f"{SERVICE}-dev", f"{SERVICE}-{packaged.config.stage}")


# --- concurrency, memory, API access ------------------------------------------------------------------


def test_defaults_reserve_nothing_provision_nothing_and_need_no_api_key(packages):
    default = packages("default")
    function = default.function
    assert "ReservedConcurrentExecutions" not in function
    assert function["MemorySize"] == 1769
    assert function["EphemeralStorage"] == {"Size": 512}
    assert default.of_type("AWS::Lambda::Alias") == {}
    assert "ProvisionedConcurrencyConfig" not in json.dumps(default.template)
    for resource_type in ["AWS::ApiGateway::ApiKey", "AWS::ApiGateway::UsagePlan", "AWS::ApiGateway::UsagePlanKey"]:
        assert default.of_type(resource_type) == {}, resource_type
    methods = default.methods()
    assert set(methods) == {(method, path) for path in ROUTES for method in ("ANY", "OPTIONS")}
    assert default.of_type("AWS::ApiGatewayV2::Api") == {}, "a REST API unless apiType=http"
    assert {key: m.get("ApiKeyRequired", False) for key, m in methods.items()} == dict.fromkeys(methods, False)


def test_params_set_reserved_concurrency_memory_and_tmp(packages):
    prod = packages("prod")
    assert prod.function["ReservedConcurrentExecutions"] == 20
    assert prod.function["MemorySize"] == 2048
    assert prod.function["EphemeralStorage"] == {"Size": 1024}
    assert prod.of_type("AWS::Lambda::Alias") == {}, "provisioned concurrency is off unless asked for"


def test_api_key_and_usage_plan_throttle(packages):
    prod = packages("prod")
    methods = prod.methods()
    # The API's routes need the key; a browser's CORS preflight carries none, and a browser
    # opening the page (which then sends the key it is given) or the contract cannot send one.
    assert {key: m.get("ApiKeyRequired", False) for key, m in methods.items()} == {
        (method, path): method == "ANY" and path in ("/recommendations", "/health")
        for path in ROUTES for method in ("ANY", "OPTIONS")
    }
    (key_id, key), = prod.of_type("AWS::ApiGateway::ApiKey").items()
    assert key["Properties"]["Enabled"] is True
    assert key["Properties"]["StageKeys"] == [{"RestApiId": {"Ref": "ApiGatewayRestApi"}, "StageName": "prod"}]
    (plan_id, plan), = prod.of_type("AWS::ApiGateway::UsagePlan").items()
    assert plan["Properties"]["Throttle"] == {"RateLimit": 25, "BurstLimit": 50}
    assert plan["Properties"]["ApiStages"] == [{"ApiId": {"Ref": "ApiGatewayRestApi"}, "Stage": "prod"}]
    assert "Quota" not in plan["Properties"]
    (link,) = prod.of_type("AWS::ApiGateway::UsagePlanKey").values()
    assert link["Properties"] == {"KeyId": {"Ref": key_id}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": plan_id}}
    # Browsers may send the key: the preflight allows the header.
    options = methods[("OPTIONS", "/recommendations")]["Integration"]["IntegrationResponses"][0]
    assert "X-Api-Key" in options["ResponseParameters"]["method.response.header.Access-Control-Allow-Headers"]


def test_provisioned_concurrency_on_an_alias_that_the_api_invokes(packages):
    graviton = packages("graviton")
    assert graviton.function["ReservedConcurrentExecutions"] == 5
    (alias_id, alias), = graviton.of_type("AWS::Lambda::Alias").items()
    (version_id,) = graviton.of_type("AWS::Lambda::Version")
    assert alias["Properties"]["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 2}
    assert alias["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [version_id, "Version"]}
    name = alias["Properties"]["Name"]
    # Requests go to the alias: to the unqualified function they would not use the warm instances.
    for (method, _), props in graviton.methods().items():
        if method != "OPTIONS":
            uri = props["Integration"]["Uri"]["Fn::Join"][1]
            assert uri[-3:] == [":", name, "/invocations"], uri
    (permission,) = graviton.of_type("AWS::Lambda::Permission").values()
    assert permission["Properties"]["FunctionName"] == {
        "Fn::Join": [":", [{"Fn::GetAtt": [FUNCTION, "Arn"]}, name]]
    }
    assert alias_id in as_list(permission["DependsOn"])


def test_deployment_bucket_only_accepts_tls(packages):
    """AWS::S3::BucketPolicy is not created by moto: checked here."""
    template = packages("default").create_template
    (policy,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::S3::BucketPolicy"]
    assert policy["Properties"]["Bucket"] == {"Ref": "ServerlessDeploymentBucket"}
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Action"] == "s3:*" and statement["Principal"] == "*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": False}}
    resources = evaluate(with_refs(statement["Resource"], ServerlessDeploymentBucket="the-bucket"))
    assert sorted(resources) == ["arn:aws:s3:::the-bucket", "arn:aws:s3:::the-bucket/*"]


def test_http_api_replaces_the_rest_api(packages):
    """apiType=http: an HTTP API with the same routes, every method sent to the function as payload
    v2 events, CORS answered by API Gateway, and a stage-wide throttle in place of a usage plan."""
    http = packages("http")
    assert [r for r in http.resources.values() if r["Type"].startswith("AWS::ApiGateway::")] == []
    (api_id, api), = http.of_type("AWS::ApiGatewayV2::Api").items()
    assert api["Properties"]["ProtocolType"] == "HTTP"
    cors = api["Properties"]["CorsConfiguration"]
    assert cors["AllowOrigins"] == ["*"]
    assert {"GET", "POST", "OPTIONS"} <= set(cors["AllowMethods"])
    assert "Content-Type" in cors["AllowHeaders"]
    (integration_id, integration), = http.of_type("AWS::ApiGatewayV2::Integration").items()
    assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"
    assert integration["Properties"]["IntegrationUri"] == {"Fn::GetAtt": [FUNCTION, "Arn"]}
    routes = [r["Properties"] for r in http.of_type("AWS::ApiGatewayV2::Route").values()]
    assert sorted(r["RouteKey"] for r in routes) == sorted(f"ANY {path}" for path in ROUTES)
    for route in routes:
        assert route["ApiId"] == {"Ref": api_id}
        assert route["Target"] == {"Fn::Join": ["/", ["integrations", {"Ref": integration_id}]]}
        assert route.get("AuthorizationType", "NONE") == "NONE"
    (stage,) = http.of_type("AWS::ApiGatewayV2::Stage").values()
    assert stage["Properties"]["StageName"] == "$default" and stage["Properties"]["AutoDeploy"] is True
    # --param values arrive as strings, which CloudFormation takes for numbers (cfn-lint agrees).
    throttle = {k: float(v) for k, v in stage["Properties"]["DefaultRouteSettings"].items()}
    assert throttle == {"ThrottlingRateLimit": 25, "ThrottlingBurstLimit": 50}
    (permission,) = http.of_type("AWS::Lambda::Permission").values()
    source = evaluate(with_refs(permission["Properties"]["SourceArn"], HttpApi="abc123"))
    assert source == f"arn:aws:execute-api:{REGION}:{ACCOUNT}:abc123/*"
    assert permission["Properties"]["Principal"] == "apigateway.amazonaws.com"
    url = evaluate(with_refs(http.template["Outputs"]["HttpApiUrl"]["Value"], HttpApi="abc123"))
    assert url == f"https://abc123.execute-api.{REGION}.amazonaws.com"


def test_default_throttle_params_set_the_http_api_stage_throttle(tmp_path, serverless_cli, tiny_model):
    service = make_service(tmp_path / SERVICE, tiny_model)
    run_cli(service, "package", "--param=apiType=http")
    template = json.loads((service / ".serverless" / "cloudformation-template-update-stack.json").read_text())
    (stage,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Stage"]
    assert stage["Properties"]["DefaultRouteSettings"] == {"ThrottlingRateLimit": 50, "ThrottlingBurstLimit": 100}


def refused_package(service: Path, *args: str) -> str:
    """Run `serverless package` that must fail; returns its output. Nothing may be packaged."""
    result = subprocess.run(
        [str(SERVERLESS), "package", *args],
        cwd=service, env=cli_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode != 0
    assert not (service / ".serverless" / ZIP_NAME).exists()
    return result.stdout + result.stderr


def test_http_api_with_api_keys_is_refused_not_silently_open(tmp_path, serverless_cli, tiny_model):
    service = make_service(tmp_path / SERVICE, tiny_model)
    output = refused_package(service, "--param=apiType=http", "--param=apiKeyRequired=true")
    assert "apiKeyRequired=true needs apiType=rest" in output
    assert "HTTP APIs have no API keys or usage plans" in output


def test_unknown_api_type_is_refused(tmp_path, serverless_cli, tiny_model):
    service = make_service(tmp_path / SERVICE, tiny_model)
    output = refused_package(service, "--param=apiType=websocket")
    assert "apiType must be rest, http or url, not 'websocket'" in output


@pytest.mark.slow
@pytest.mark.parametrize("name, auth", [("url", "AWS_IAM"), ("public", "NONE")])
def test_function_url_replaces_api_gateway(packages, name, auth):
    """apiType=url: no API Gateway resource at all, one function URL to the function (payload 2.0,
    buffered), IAM-signed by default; public with urlAuth=none, with CORS and the permissions that
    let anyone invoke it through the URL only, capped by reserved concurrency."""
    packaged = packages(name)
    assert [k for k, r in packaged.resources.items() if r["Type"].startswith("AWS::ApiGateway")] == []
    assert packaged.function.get("ReservedConcurrentExecutions") == (10 if name == "public" else None)
    (url,) = packaged.of_type("AWS::Lambda::Url").values()
    props = url["Properties"]
    assert props["AuthType"] == auth
    assert props["TargetFunctionArn"] == {"Fn::GetAtt": [FUNCTION, "Arn"]}
    assert "InvokeMode" not in props  # BUFFERED: the function answers with one response
    permissions = [r["Properties"] for r in packaged.of_type("AWS::Lambda::Permission").values()]
    if auth == "AWS_IAM":
        assert "Cors" not in props and permissions == []  # only IAM identities allowed to invoke it
    else:
        assert props["Cors"]["AllowOrigins"] == ["*"] and props["Cors"]["AllowMethods"] == ["*"]
        assert "Content-Type" in props["Cors"]["AllowHeaders"]
        function = {"Fn::GetAtt": [FUNCTION, "Arn"]}
        assert sorted(permissions, key=lambda p: p["Action"]) == [
            {"FunctionName": function, "Action": "lambda:InvokeFunction", "Principal": "*", "InvokedViaFunctionUrl": True},
            {"FunctionName": function, "Action": "lambda:InvokeFunctionUrl", "Principal": "*", "FunctionUrlAuthType": "NONE"},
        ]
    assert packaged.template["Outputs"]["TagRecommendationsLambdaFunctionUrl"]["Value"] == {
        "Fn::GetAtt": ["TagRecommendationsLambdaFunctionUrl", "FunctionUrl"]}


@pytest.mark.slow
def test_role_of_named_models_in_s3_may_only_get_those_objects(packages):
    packaged = packages("url")
    _, rest = split_log_statements(role_statements(packaged), "url")
    assert rest == [{"Effect": "Allow", "Action": ["s3:GetObject"],
                     "Resource": [f"arn:aws:s3:::{MODEL_BUCKET}/named/v2/{name}.bin" for name in NAMED_S3_MODELS]}]


@pytest.mark.slow
def test_function_url_with_api_keys_or_an_unknown_auth_is_refused(tmp_path, serverless_cli, tiny_model):
    service = make_service(tmp_path / SERVICE, tiny_model)
    output = refused_package(service, "--param=apiType=url", "--param=apiKeyRequired=true")
    assert "apiKeyRequired=true needs apiType=rest: function URLs have no API keys or usage plans" in output
    output = refused_package(service, "--param=apiType=url", "--param=urlAuth=public")
    assert "urlAuth must be iam or none, not 'public'" in output


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["--param=modelsS3Prefix=s3://tag-models/named/"], "modelsS3Prefix needs modelsSha256"),
    (["--param=modelsS3Prefix=s3://tag-models/named/", "--param=modelsSha256=forum=abc"],
     "modelsSha256 entries are NAME=SHA256"),
    (["--param=modelsS3Prefix=s3://tag-models/named/", f"--param=modelsSha256=for um={'a' * 64}"],
     "modelsSha256 entries are NAME=SHA256"),
    ([f"--param=modelsSha256=forum={'a' * 64}"], "modelsS3Prefix must look like s3://bucket/prefix/"),
    (["--param=modelsS3Prefix=https://tag-models/named/", f"--param=modelsSha256=forum={'a' * 64}"],
     "modelsS3Prefix must look like s3://bucket/prefix/"),
    ([f"--param=modelS3Uri={MODEL_URI}"], "modelS3Uri needs modelSha256"),
    (["--param=memorySize=128", "--param=model=big.bin"], "raise memorySize to at least"),
], ids=["no_checksums", "short_checksum", "bad_name", "no_prefix", "not_s3", "s3_model_unchecked", "too_little_memory"])
def test_packaging_refuses_models_unchecked_or_too_big_for_the_memory(tmp_path, serverless_cli, tiny_model, args, message):
    service = make_service(tmp_path / SERVICE, tiny_model)
    # big.bin: a model whose three processes (about 40 MiB each) need more than half of 128 MB.
    (service / "big.bin").write_bytes(tiny_model.read_bytes()[:100] + bytes(40 * 1024 * 1024))
    assert message in refused_package(service, *args)


@pytest.mark.slow
def test_packaging_refuses_a_named_model_that_is_not_a_fasttext_model(tmp_path, serverless_cli, tiny_model):
    service = make_service(tmp_path / SERVICE, tiny_model)
    (service / "models").mkdir(exist_ok=True)
    (service / "models" / "forum.bin").write_bytes(b"not a model at all")
    assert "model 'models/forum.bin' is not a fastText model (.bin or .ftz)" in refused_package(service)


# --- the stack, in moto -----------------------------------------------------------------------------


def _create_method_allowing_mock_integrations(cls, resource_name, cloudformation_json, account_id, region_name, **kw):
    """moto reads IntegrationHttpMethod and Uri unconditionally; a MOCK integration has neither."""
    integration = cloudformation_json["Properties"].get("Integration", {})
    if integration.get("Type") == "MOCK":
        cloudformation_json = copy.deepcopy(cloudformation_json)
        cloudformation_json["Properties"]["Integration"].setdefault("IntegrationHttpMethod", None)
        cloudformation_json["Properties"]["Integration"].setdefault("Uri", None)
    return _moto_create_method(cls, resource_name, cloudformation_json, account_id, region_name, **kw)


_moto_create_method = Method.create_from_cloudformation_json.__func__


@pytest.fixture(scope="module")
def aws():
    """A moto account in us-east-1, with dummy credentials and nothing from the real environment."""
    with pytest.MonkeyPatch.context() as mp:
        for name in [n for n in os.environ if n.startswith("AWS_")]:
            mp.delenv(name)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", REGION)
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        mp.setattr(boto3, "DEFAULT_SESSION", None)
        mp.setattr(Method, "create_from_cloudformation_json", classmethod(_create_method_allowing_mock_integrations))
        with mock_aws():
            yield boto3.Session(region_name=REGION)


@dataclass
class Deployed:
    packaged: Packaged
    session: boto3.Session
    bucket: str
    skipped: set[str]  # resource types moto warned it does not support

    def client(self, name: str):
        return self.session.client(name)

    @property
    def function_config(self) -> dict:
        return self.client("lambda").get_function(FunctionName=self.packaged.function_name)["Configuration"]

    @property
    def rest_api(self) -> dict:
        name = f"{self.packaged.config.stage}-{SERVICE}"
        (api,) = [a for a in self.client("apigateway").get_rest_apis()["items"] if a["name"] == name]
        return api


def run_change_set(cf, change_set_type: str, **params) -> None:
    """What osls does by default (deploymentMethod: changesets): create, then execute, a change set."""
    name = f"{params['StackName']}-change-set"
    cf.create_change_set(ChangeSetName=name, ChangeSetType=change_set_type, **params)
    assert cf.describe_change_set(StackName=params["StackName"], ChangeSetName=name)["Status"] == "CREATE_COMPLETE"
    cf.execute_change_set(StackName=params["StackName"], ChangeSetName=name)
    (stack,) = cf.describe_stacks(StackName=params["StackName"])["Stacks"]
    assert stack["StackStatus"] == f"{change_set_type}_COMPLETE"


def deploy(session: boto3.Session, packaged: Packaged) -> Deployed:
    """The steps of `serverless deploy` for an already packaged service, in moto."""
    cf, s3 = session.client("cloudformation"), session.client("s3")
    shared = dict(
        StackName=packaged.stack_name,
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        Parameters=[],
        NotificationARNs=[],
        Tags=[{"Key": "STAGE", "Value": packaged.config.stage}],
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # 1. A stack holding only the deployment bucket (and its policy).
        run_change_set(cf, "CREATE", TemplateBody=json.dumps(packaged.create_template), **shared)
        # osls finds the bucket this way, not from the stack's outputs.
        bucket = cf.describe_stack_resource(
            StackName=packaged.stack_name, LogicalResourceId="ServerlessDeploymentBucket"
        )["StackResourceDetail"]["PhysicalResourceId"]
        # 2. The artifacts, under the directory the CLI generated (a timestamp) and the update
        #    template names in the function's Code.
        key = packaged.function["Code"]["S3Key"]
        directory, zip_name = key.rsplit("/", 1)
        assert zip_name == ZIP_NAME
        assert directory == packaged.state["package"]["artifactDirectoryName"]
        assert packaged.function["Code"]["S3Bucket"] == {"Ref": "ServerlessDeploymentBucket"}
        s3.upload_file(str(packaged.zip_path), bucket, key)
        template_key = f"{directory}/compiled-cloudformation-template.json"
        s3.put_object(Bucket=bucket, Key=template_key, Body=json.dumps(packaged.template).encode())
        # 3. Everything else, from the update template, by URL as osls passes it.
        run_change_set(cf, "UPDATE", TemplateURL=f"https://s3.amazonaws.com/{bucket}/{template_key}", **shared)
    skipped = set()
    for warning in caught:
        match = re.search(r"Tried to parse (\S+) but it's not supported", str(warning.message))
        if match:
            skipped.add(match.group(1))
    normalize_role_policies(session, packaged)
    return Deployed(packaged, session, bucket, skipped)


def normalize_role_policies(session: boto3.Session, packaged: Packaged) -> None:
    """moto keeps the inline policies of a role made by CloudFormation as dicts, so get_role_policy
    returns their repr and its IAM evaluator fails on them; put them back, unchanged, as JSON."""
    iam = session.client("iam")
    role = role_name(session, packaged)
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        if isinstance(document, str):
            document = ast.literal_eval(document)
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))


def role_name(session: boto3.Session, packaged: Packaged) -> str:
    # Not describe_stack_resource: moto's fails on any resource listed after one it skipped.
    summaries = session.client("cloudformation").list_stack_resources(StackName=packaged.stack_name)
    (role,) = [r for r in summaries["StackResourceSummaries"] if r["LogicalResourceId"] == "IamRoleLambdaExecution"]
    return role["PhysicalResourceId"]


@pytest.fixture(scope="module")
def stacks(aws, packages):
    """Stacks deployed into the one moto account, on first use (like stages of one real account)."""
    cache: dict[str, Deployed] = {}

    def get(name: str) -> Deployed:
        if name not in cache:
            cache[name] = deploy(aws, packages(name))
        return cache[name]

    return get


@pytest.fixture(params=["default", "prod"])
def deployed(request, stacks) -> Deployed:
    return stacks(request.param)


def test_stack_has_every_resource_moto_supports(deployed):
    packaged = deployed.packaged
    cf = deployed.client("cloudformation")
    created = {
        r["LogicalResourceId"]: r
        for r in cf.list_stack_resources(StackName=packaged.stack_name)["StackResourceSummaries"]
        if r["LogicalResourceId"]
    }
    wanted = {**packaged.create_template["Resources"], **packaged.resources}
    missing = {wanted[k]["Type"] for k in set(wanted) - set(created)}
    # Exactly the types moto warned about, all known: each is checked on the template above.
    assert missing == deployed.skipped
    assert missing <= MOTO_UNSUPPORTED
    assert all(r["ResourceStatus"].endswith("_COMPLETE") for r in created.values())
    assert {created[k]["ResourceType"] for k in created} == {wanted[k]["Type"] for k in created}


def test_http_api_stack_in_moto(stacks):
    """The apiType=http stack deploys in moto with everything but the HTTP API's own resources,
    which moto's CloudFormation skips (MOTO_UNSUPPORTED_HTTP_API); no REST API is created."""
    deployed = stacks("http")
    packaged = deployed.packaged
    cf = deployed.client("cloudformation")
    created = {r["LogicalResourceId"] for r in cf.list_stack_resources(StackName=packaged.stack_name)["StackResourceSummaries"]}
    wanted = {**packaged.create_template["Resources"], **packaged.resources}
    missing = {wanted[k]["Type"] for k in set(wanted) - created}
    assert missing == deployed.skipped
    assert missing - MOTO_UNSUPPORTED == MOTO_UNSUPPORTED_HTTP_API
    config = deployed.function_config
    assert config["Handler"] == "handler.tagRecommendations"
    assert config["MemorySize"] == packaged.function["MemorySize"]
    assert config["Environment"]["Variables"] == packaged.function["Environment"]["Variables"]
    names = [a["name"] for a in deployed.client("apigateway").get_rest_apis()["items"]]
    assert f"web-{SERVICE}" not in names


def test_function_deployed_with_its_configuration_and_code(deployed):
    packaged = deployed.packaged
    config = deployed.function_config
    template = packaged.function
    assert config["Handler"] == "handler.tagRecommendations"
    assert config["Runtime"] == template["Runtime"] == "python3.12"
    assert config["MemorySize"] == template["MemorySize"]
    assert config["Timeout"] == 10
    assert config["PackageType"] == "Zip"
    assert config["Environment"]["Variables"] == template["Environment"]["Variables"]
    # moto drops Architectures and EphemeralStorage from AWS::Lambda::Function (it reports x86_64
    # and 512 whatever the template says): test_function_runs_the_binary_* checks the template.
    assert template["Architectures"] == [packaged.config.architecture]
    # The code is the packaged zip, as uploaded by the deploy steps.
    zip_bytes = packaged.zip_path.read_bytes()
    assert config["CodeSize"] == len(zip_bytes) > 0
    (version,) = packaged.of_type("AWS::Lambda::Version").values()
    zip_sha256 = base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()
    assert config["CodeSha256"] == version["Properties"]["CodeSha256"] == zip_sha256
    role = deployed.client("iam").get_role(RoleName=role_name(deployed.session, packaged))["Role"]
    assert config["Role"] == role["Arn"]
    concurrency = deployed.client("lambda").get_function_concurrency(FunctionName=packaged.function_name)
    assert concurrency.get("ReservedConcurrentExecutions") == template.get("ReservedConcurrentExecutions")
    assert concurrency.get("ReservedConcurrentExecutions") == {"default": None, "prod": 20}[packaged.config.name]


def test_rest_api_routes_to_the_function(deployed):
    packaged = deployed.packaged
    apigw = deployed.client("apigateway")
    api = deployed.rest_api
    resources = {r["path"]: r for r in apigw.get_resources(restApiId=api["id"])["items"]}
    assert set(resources) == set(ROUTES)
    function_arn = deployed.function_config["FunctionArn"]
    key_required = packaged.config.name == "prod"
    for path in ROUTES:
        # ANY: every method reaches the function, which answers a wrong one with a JSON 405.
        method = apigw.get_method(restApiId=api["id"], resourceId=resources[path]["id"], httpMethod="ANY")
        assert method["authorizationType"] == "NONE"
        assert method["apiKeyRequired"] is (key_required and path in ("/recommendations", "/health"))
        integration = method["methodIntegration"]
        assert integration["type"] == "AWS_PROXY" and integration["httpMethod"] == "POST"
        assert integration["uri"] == (
            f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{function_arn}/invocations"
        )
        # An explicit OPTIONS method outranks ANY: API Gateway answers the CORS preflight itself.
        preflight = apigw.get_method(restApiId=api["id"], resourceId=resources[path]["id"], httpMethod="OPTIONS")
        assert preflight["methodIntegration"]["type"] == "MOCK" and preflight["apiKeyRequired"] is False
        assert set(resources[path]["resourceMethods"]) == {"ANY", "OPTIONS"}
    stage = apigw.get_stage(restApiId=api["id"], stageName=packaged.config.stage)
    assert stage["deploymentId"]
    # Outputs are not computed for change sets in moto: the endpoint from the template, resolved.
    endpoint = with_refs(packaged.template["Outputs"]["ServiceEndpoint"]["Value"], ApiGatewayRestApi=api["id"])
    assert evaluate(endpoint) == f"https://{api['id']}.execute-api.{REGION}.amazonaws.com/{packaged.config.stage}"


def test_api_gateway_may_invoke_the_function_and_nothing_else_may(deployed):
    policy = json.loads(deployed.client("lambda").get_policy(FunctionName=deployed.packaged.function_name)["Policy"])
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "lambda:InvokeFunction"
    assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert statement["Resource"] == deployed.function_config["FunctionArn"]
    api_id = deployed.rest_api["id"]
    source = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/*/*"  # any stage, method and path of this API
    assert statement["Condition"] == {"ArnLike": {"AWS:SourceArn": source}}


def test_log_group_exists_for_the_function(deployed):
    name = f"/aws/lambda/{deployed.packaged.function_name}"
    groups = deployed.client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    assert [g["logGroupName"] for g in groups] == [name]


def test_deployed_role_policy_is_the_templates_resolved(deployed):
    packaged = deployed.packaged
    iam = deployed.client("iam")
    role = role_name(deployed.session, packaged)
    (name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    assert normalized_statements(document["Statement"]) == role_statements(packaged)
    trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": ["lambda.amazonaws.com"]}]


# --- the deployed artifacts at work (as far as moto and this machine can show) -----------------


@pytest.fixture(scope="module")
def model_object(aws, tiny_model) -> str:
    """The tiny model uploaded where the S3 configurations expect it; returns its sha256."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=MODEL_BUCKET)
    s3.put_object(Bucket=MODEL_BUCKET, Key=MODEL_KEY, Body=tiny_model.read_bytes())
    s3.put_object(Bucket=MODEL_BUCKET, Key="models/another.bin", Body=b"not for this function")
    return file_sha256(str(tiny_model))


def assume_function_role(deployed: Deployed) -> dict:
    arn = deployed.function_config["Role"]
    return deployed.client("sts").assume_role(RoleArn=arn, RoleSessionName="tagRecommendations")["Credentials"]


def denied(call) -> bool:
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"] in {"AccessDenied", "403"}
    return False


def test_model_in_s3_downloads_with_the_functions_role_and_nothing_more(stacks, model_object, monkeypatch, tmp_path):
    """With moto enforcing IAM, the runtime's own download code, configured by the deployed
    environment and holding the deployed role's credentials, fetches and verifies the model;
    other reads and any write are denied."""
    deployed = stacks("prod")
    credentials = assume_function_role(deployed)
    for name, value in deployed.function_config["Environment"]["Variables"].items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MODEL_DOWNLOAD_DIR", str(tmp_path))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", credentials["SessionToken"])
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    as_function = boto3.Session(region_name=REGION).client("s3")

    @set_initial_no_auth_action_count(0)
    def with_iam_enforced():
        model = model_from_environment("/var/task/model.bin")
        assert isinstance(model, S3Model) and model.expected_sha256 == model_object
        path = model.local_path()  # HeadObject + GetObject, then the checksum
        assert file_sha256(path) == model_object
        assert denied(lambda: as_function.get_object(Bucket=MODEL_BUCKET, Key="models/another.bin"))
        assert denied(lambda: as_function.put_object(Bucket=MODEL_BUCKET, Key=MODEL_KEY, Body=b"x"))
        assert denied(lambda: as_function.list_objects_v2(Bucket=MODEL_BUCKET))
        assert denied(lambda: as_function.list_buckets())

    with_iam_enforced()


def test_role_of_a_bundled_model_reads_nothing_from_s3(stacks, model_object):
    credentials = assume_function_role(stacks("default"))
    as_function = boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    ).client("s3")

    @set_initial_no_auth_action_count(0)
    def with_iam_enforced():
        assert denied(lambda: as_function.get_object(Bucket=MODEL_BUCKET, Key=MODEL_KEY))

    with_iam_enforced()


RUN_HANDLER = """
import importlib, json, sys
module, function = sys.argv[1].rsplit(".", 1)
handler = getattr(importlib.import_module(module), function)
for event in json.load(sys.stdin):
    print("RESPONSE " + json.dumps(handler(event, None)), flush=True)
"""


def test_deployed_package_answers_with_the_deployed_environment(stacks, tmp_path, tiny_model):
    """The zip as the function got it (from the deployment bucket), unpacked as Lambda does into a
    task root, run by Python here with the deployed handler and environment. Stands in for the
    invocation moto cannot do without Docker; this is x86_64 Linux, not Lambda's Amazon Linux."""
    deployed = stacks("default")
    config = deployed.function_config
    code = deployed.client("s3").get_object(Bucket=deployed.bucket, Key=deployed.packaged.function["Code"]["S3Key"])
    task_root = tmp_path / "task"
    with zipfile.ZipFile(io.BytesIO(code["Body"].read())) as zf:
        for info in zf.infolist():
            path = Path(zf.extract(info, task_root))
            os.chmod(path, (info.external_attr >> 16) & 0o777)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(task_root),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": str(task_root),
        **config["Environment"]["Variables"],
    }
    events = [rest_event({"text": PYTHON_TEXT}), rest_event(None, method="GET", path="/health"),
              rest_event(None, method="GET", path="/openapi.json"), rest_event(None, method="GET", path="/")]
    result = subprocess.run(
        [sys.executable, "-c", RUN_HANDLER, config["Handler"]],
        input=json.dumps(events), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    responses = [json.loads(line.removeprefix("RESPONSE ")) for line in result.stdout.splitlines()
                 if line.startswith("RESPONSE ")]
    assert [r["statusCode"] for r in responses] == [200, 200, 200, 200], result.stdout
    assert json.loads(responses[2]["body"]) == json.loads((ROOT / "openapi.json").read_text())
    assert responses[3]["body"] == (ROOT / "try_it.html").read_text()
    assert json.loads(responses[0]["body"])["hashtags_recommended"][0]["hashtag"] == "#python"
    health = json.loads(responses[1]["body"])
    assert health["models"][0]["sha256"] == file_sha256(str(tiny_model))  # the file the request loaded
    assert health["status"] == "ok", health
