"""template.yaml as local mode sees it: the one source of resource names, function
settings, state machine substitutions, event rules and HTTP routes.

``load_template`` reads the YAML with CloudFormation short tags (``!Ref``, ``!Sub``, ...);
``Stack`` resolves Parameters (Default + overrides, like ``sam --parameter-overrides``),
Conditions, SAM Globals and intrinsic functions, and gives every resource a local physical
name derived from its logical id, in account 123456789012 / us-east-1.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .dockerfile import read_image_layout

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"
STACK_NAME = "local"

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
SERVERLESS_STATE_MACHINE = "AWS::Serverless::StateMachine"
SERVERLESS_HTTP_API = "AWS::Serverless::HttpApi"
SERVERLESS_LAYER = "AWS::Serverless::LayerVersion"
# SAM's implicit API, created when an HttpApi event names no ApiId.
IMPLICIT_HTTP_API = "ServerlessHttpApi"


class TemplateError(ValueError):
    """The template uses something local mode cannot resolve, or a parameter is invalid."""


class _NoValue:
    """``AWS::NoValue``: the property (or list item) disappears."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


# --- loading ------------------------------------------------------------------------------


class CfnLoader(yaml.SafeLoader):
    """A YAML loader that turns CloudFormation short tags into their long forms."""


_SHORT_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    "GetAtt": "Fn::GetAtt",
    "Sub": "Fn::Sub",
    "If": "Fn::If",
    "Select": "Fn::Select",
    "Split": "Fn::Split",
    "Join": "Fn::Join",
    "Not": "Fn::Not",
    "Equals": "Fn::Equals",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "FindInMap": "Fn::FindInMap",
    "Base64": "Fn::Base64",
    "GetAZs": "Fn::GetAZs",
    "ImportValue": "Fn::ImportValue",
    "Cidr": "Fn::Cidr",
    "ToJsonString": "Fn::ToJsonString",
    "Length": "Fn::Length",
}


def _construct_short_tag(long_name: str):
    def construct(loader: CfnLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if long_name == "Fn::GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {long_name: value}

    return construct


for _short, _long in _SHORT_TAGS.items():
    CfnLoader.add_constructor(f"!{_short}", _construct_short_tag(_long))


def load_template(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as stream:
        document = yaml.load(stream, Loader=CfnLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(document, dict) or "Resources" not in document:
        raise TemplateError(f"{path} is not a CloudFormation template")
    return document


# --- resolved views ---------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionConfig:
    """A Lambda function as local mode runs it (SAM Globals merged, intrinsics resolved)."""

    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    runtime: str
    package_type: str
    timeout: int
    memory_size: int
    environment: dict[str, str]  # the template's (Globals merged)
    # Import roots besides code_dir: the layers' content, or for an image, the folders its
    # Dockerfile copies into the task root.
    python_path: tuple[Path, ...]
    # An image's Dockerfile ENV, paths copied into the image mapped to their local source.
    image_environment: dict[str, str] = field(default_factory=dict)
    tracing: bool = False  # Tracing: Active (X-Ray)


@dataclass(frozen=True)
class HttpRoute:
    """One HttpApi event of a function: ``route_key`` is API Gateway's ``"METHOD /path"``."""

    api_id: str
    method: str  # upper case, or "ANY"
    path: str  # "/jobs/{jobId}", or "$default"
    function: str  # logical id
    authorizer: str | None  # "AWS_IAM", or None for an open route

    @property
    def route_key(self) -> str:
        return self.path if self.path == "$default" else f"{self.method} {self.path}"


@dataclass(frozen=True)
class EventRule:
    """An EventBridgeRule event of a state machine or function (default bus)."""

    name: str
    target: str  # logical id of the target
    target_type: str
    pattern: dict[str, Any]
    retry_policy: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StateMachineConfig:
    logical_id: str
    name: str
    arn: str
    type: str
    definition: str  # the ASL JSON with DefinitionSubstitutions filled in
    role_arn: str
    tracing: bool


def _merge_globals(global_props: Mapping[str, Any], props: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's Globals rule: maps merge, lists add up (globals first), scalars are overridden."""
    merged = copy.deepcopy(dict(global_props))
    for key, value in props.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict) and not _is_intrinsic(value):
            merged[key] = _merge_globals(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            merged[key] = current + copy.deepcopy(value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _is_intrinsic(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and len(value) == 1
        and next(iter(value)) in {"Ref", "Condition", *_SHORT_TAGS.values()}
    )


_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_GLOBAL_SECTIONS = {
    SERVERLESS_FUNCTION: "Function",
    SERVERLESS_STATE_MACHINE: "StateMachine",
    SERVERLESS_HTTP_API: "HttpApi",
    "AWS::Serverless::Api": "Api",
    "AWS::Serverless::SimpleTable": "SimpleTable",
    SERVERLESS_LAYER: "LayerVersion",
}


class Stack:
    """template.yaml resolved for local mode.

    ``physical_ids`` replaces the derived ``Ref``/``Arn`` of resources whose real ids are
    only known after they exist (a Secrets Manager ARN ends in a random suffix), e.g.
    ``{"WebhookMasterKey": {"Ref": arn, "Arn": arn}}``.
    """

    def __init__(
        self,
        template_path: Path,
        parameter_overrides: Mapping[str, Any] | None = None,
        physical_ids: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.template_path = template_path.resolve()
        self.base_dir = self.template_path.parent
        self.template = load_template(self.template_path)
        self.parameter_overrides = {k: str(v) for k, v in (parameter_overrides or {}).items()}
        self.physical_ids = {k: dict(v) for k, v in (physical_ids or {}).items()}
        self.parameters = self._resolve_parameters()
        self.resources: dict[str, dict[str, Any]] = {}
        self.conditions: dict[str, bool] = {}
        for name in self.template.get("Conditions", {}):
            self._condition(name)
        globals_ = self.template.get("Globals", {})
        for logical_id, resource in self.template["Resources"].items():
            if "Condition" in resource and not self._condition(resource["Condition"]):
                continue
            merged = copy.deepcopy(resource)
            section = _GLOBAL_SECTIONS.get(merged.get("Type", ""))
            if section and section in globals_:
                merged["Properties"] = _merge_globals(globals_[section], merged.get("Properties", {}))
            self.resources[logical_id] = merged

    def with_physical_ids(self, physical_ids: Mapping[str, Mapping[str, str]]) -> Stack:
        merged = {**self.physical_ids, **{k: dict(v) for k, v in physical_ids.items()}}
        return Stack(self.template_path, self.parameter_overrides, merged)

    # --- parameters and conditions ------------------------------------------------------

    def _resolve_parameters(self) -> dict[str, str]:
        declared = self.template.get("Parameters", {})
        unknown = sorted(set(self.parameter_overrides) - set(declared))
        if unknown:
            raise TemplateError(f"parameter overrides not declared in the template: {', '.join(unknown)}")
        values: dict[str, str] = {}
        for name, spec in declared.items():
            if name in self.parameter_overrides:
                value = self.parameter_overrides[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise TemplateError(f"parameter {name} has no Default and no override")
            values[name] = _check_parameter(name, spec, value)
        return values

    def _condition(self, name: str) -> bool:
        if name not in self.conditions:
            definitions = self.template.get("Conditions", {})
            if name not in definitions:
                raise TemplateError(f"unknown condition {name}")
            self.conditions[name] = bool(self.resolve(definitions[name]))
        return self.conditions[name]

    # --- names --------------------------------------------------------------------------

    def resource_type(self, logical_id: str) -> str:
        if logical_id not in self.resources:
            raise TemplateError(f"unknown (or conditioned-out) resource {logical_id}")
        return self.resources[logical_id]["Type"]

    def resources_of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {lid: res for lid, res in self.resources.items() if res["Type"] == resource_type}

    def _property(self, logical_id: str, name: str) -> Any:
        value = self.resources[logical_id].get("Properties", {}).get(name)
        return None if value is None else self.resolve(value)

    def physical_name(self, logical_id: str) -> str:
        """The local name of a resource: its explicit name property, else derived from its id."""
        kind = self.resource_type(logical_id)
        explicit = {
            "AWS::S3::Bucket": "BucketName",
            "AWS::DynamoDB::Table": "TableName",
            SERVERLESS_FUNCTION: "FunctionName",
            "AWS::Lambda::Function": "FunctionName",
            SERVERLESS_STATE_MACHINE: "Name",
            "AWS::StepFunctions::StateMachine": "StateMachineName",
            "AWS::SecretsManager::Secret": "Name",
            "AWS::SQS::Queue": "QueueName",
            SERVERLESS_LAYER: "LayerName",
            "AWS::Logs::LogGroup": "LogGroupName",
            "AWS::Scheduler::ScheduleGroup": "Name",
            "AWS::IAM::Role": "RoleName",
        }.get(kind)
        if explicit and (name := self._property(logical_id, explicit)):
            return str(name)
        if kind == "AWS::S3::Bucket":
            return f"{logical_id.lower()}-local"
        if kind in (SERVERLESS_HTTP_API, "AWS::ApiGatewayV2::Api"):
            return re.sub(r"[^a-z0-9]", "", logical_id.lower())[:10]
        return logical_id

    def arn(self, logical_id: str) -> str:
        if "Arn" in self.physical_ids.get(logical_id, {}):
            return self.physical_ids[logical_id]["Arn"]
        kind = self.resource_type(logical_id)
        name = self.physical_name(logical_id)

        def regional(service: str) -> str:
            return f"arn:{PARTITION}:{service}:{REGION}:{ACCOUNT_ID}"

        arns = {
            "AWS::S3::Bucket": f"arn:{PARTITION}:s3:::{name}",
            "AWS::DynamoDB::Table": f"{regional('dynamodb')}:table/{name}",
            SERVERLESS_FUNCTION: f"{regional('lambda')}:function:{name}",
            "AWS::Lambda::Function": f"{regional('lambda')}:function:{name}",
            SERVERLESS_STATE_MACHINE: f"{regional('states')}:stateMachine:{name}",
            "AWS::StepFunctions::StateMachine": f"{regional('states')}:stateMachine:{name}",
            # A partial ARN (no random suffix): valid for GetSecretValue until the real one is known.
            "AWS::SecretsManager::Secret": f"{regional('secretsmanager')}:secret:{name}",
            "AWS::SQS::Queue": f"{regional('sqs')}:{name}",
            "AWS::SNS::Topic": f"{regional('sns')}:{name}",
            SERVERLESS_LAYER: f"{regional('lambda')}:layer:{name}:1",
            "AWS::Logs::LogGroup": f"{regional('logs')}:log-group:{name}:*",
            "AWS::Scheduler::ScheduleGroup": f"{regional('scheduler')}:schedule-group/{name}",
            "AWS::IAM::Role": f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role/{name}",
        }
        if kind not in arns:
            raise TemplateError(f"local mode has no ARN for {logical_id} ({kind})")
        return arns[kind]

    def ref(self, logical_id: str) -> str:
        """What ``!Ref`` of a resource returns on AWS for its type."""
        if "Ref" in self.physical_ids.get(logical_id, {}):
            return self.physical_ids[logical_id]["Ref"]
        kind = self.resource_type(logical_id)
        if kind in (
            SERVERLESS_STATE_MACHINE,
            "AWS::StepFunctions::StateMachine",
            "AWS::SecretsManager::Secret",
            "AWS::SNS::Topic",
            SERVERLESS_LAYER,
        ):
            return self.arn(logical_id)
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.{URL_SUFFIX}/{ACCOUNT_ID}/{self.physical_name(logical_id)}"
        return self.physical_name(logical_id)

    def get_att(self, logical_id: str, attribute: str) -> str:
        kind = self.resource_type(logical_id)
        if attribute == "Arn":
            return self.arn(logical_id)
        name = self.physical_name(logical_id)
        if kind == "AWS::S3::Bucket" and attribute in ("DomainName", "RegionalDomainName"):
            return (
                f"{name}.s3.amazonaws.com"
                if attribute == "DomainName"
                else f"{name}.s3.{REGION}.{URL_SUFFIX}"
            )
        if kind in (SERVERLESS_STATE_MACHINE, "AWS::StepFunctions::StateMachine") and attribute == "Name":
            return name
        if kind == SERVERLESS_HTTP_API and attribute == "ApiEndpoint":
            return f"https://{name}.execute-api.{REGION}.{URL_SUFFIX}"
        if kind == "AWS::SQS::Queue" and attribute == "QueueName":
            return name
        raise TemplateError(f"local mode cannot resolve !GetAtt {logical_id}.{attribute}")

    # --- intrinsic functions ------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        """Resolve intrinsic functions recursively; ``AWS::NoValue`` entries disappear."""
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if _is_intrinsic(value):
            (name, argument), *_ = value.items()
            return self._intrinsic(name, argument)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def _intrinsic(self, name: str, arg: Any) -> Any:
        if name == "Ref":
            return self._ref_name(arg)
        if name == "Condition":
            return self._condition(arg)
        if name == "Fn::If":
            condition, when_true, when_false = arg
            return self.resolve(when_true if self._condition(condition) else when_false)
        if name == "Fn::Equals":
            left, right = (self.resolve(item) for item in arg)
            return str(left) == str(right)
        if name == "Fn::Not":
            return not self.resolve(arg[0])
        if name == "Fn::And":
            return all(self.resolve(item) for item in arg)
        if name == "Fn::Or":
            return any(self.resolve(item) for item in arg)
        if name == "Fn::GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return self.get_att(logical_id, self.resolve(attribute))
        if name == "Fn::Sub":
            template, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            return self._sub(template, {key: self.resolve(val) for key, val in variables.items()})
        if name == "Fn::Join":
            delimiter, items = arg
            return str(delimiter).join(str(item) for item in self.resolve(items))
        if name == "Fn::Split":
            delimiter, source = arg
            return str(self.resolve(source)).split(delimiter)
        if name == "Fn::Select":
            index, items = arg
            items = self.resolve(items)
            index = int(self.resolve(index))
            if not 0 <= index < len(items):
                raise TemplateError(f"Fn::Select index {index} out of range for {items!r}")
            return items[index]
        if name == "Fn::FindInMap":
            mapping, top, second = (self.resolve(item) for item in arg)
            return self.template["Mappings"][mapping][top][second]
        if name == "Fn::GetAZs":
            return [f"{REGION}{zone}" for zone in "abcdef"]
        if name == "Fn::ToJsonString":
            return json.dumps(self.resolve(arg), separators=(",", ":"))
        if name == "Fn::Length":
            return len(self.resolve(arg))
        raise TemplateError(f"local mode does not support {name}")

    def _ref_name(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::StackName": STACK_NAME,
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/local",
            "AWS::NoValue": NO_VALUE,
            "AWS::NotificationARNs": [],
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            spec = self.template.get("Parameters", {}).get(name, {})
            if spec.get("Type") == "CommaDelimitedList":  # a list, as CloudFormation gives it
                return self.parameters[name].split(",")
            return self.parameters[name]
        return self.ref(name)

    def _sub(self, template: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return str(variables[expression])
            if "." in expression and not expression.startswith("AWS::"):
                logical_id, attribute = expression.split(".", 1)
                return self.get_att(logical_id, attribute)
            return str(self._ref_name(expression))

        return _SUB_VARIABLE.sub(replace, template)

    # --- views ----------------------------------------------------------------------------

    def functions(self) -> dict[str, FunctionConfig]:
        return {lid: self.function(lid) for lid in self.resources_of_type(SERVERLESS_FUNCTION)}

    def function(self, logical_id: str) -> FunctionConfig:
        resource = self.resources[logical_id]
        props = self.resolve(resource.get("Properties", {}))
        package_type = props.get("PackageType", "Zip")
        python_path = [self._layer_dir(arn) for arn in props.get("Layers", [])]
        image_environment: dict[str, str] = {}
        if package_type == "Image":
            metadata = resource.get("Metadata", {})
            context = (self.base_dir / metadata.get("DockerContext", ".")).resolve()
            dockerfile = context / metadata.get("Dockerfile", "Dockerfile")
            code_dir = dockerfile.parent
            command = props.get("ImageConfig", {}).get("Command") or []
            if not command:
                raise TemplateError(
                    f"{logical_id}: an Image function needs ImageConfig.Command (the handler)"
                )
            handler = command[0]
            runtime = "python3.12"
            if dockerfile.is_file():
                layout = read_image_layout(dockerfile, context)
                python_path = [path for path in layout.task_root_sources if path != code_dir.resolve()]
                image_environment = layout.environment
            else:
                # No Dockerfile yet: the layers' sources in the build context.
                python_path = [path for path in self._layer_dirs_all() if path.is_relative_to(context)]
        else:
            code_dir = self.base_dir / props["CodeUri"]
            handler = props["Handler"]
            runtime = props.get("Runtime", "")
        environment = props.get("Environment", {}).get("Variables", {})
        return FunctionConfig(
            logical_id=logical_id,
            name=self.physical_name(logical_id),
            arn=self.arn(logical_id),
            code_dir=code_dir.resolve(),
            handler=handler,
            runtime=runtime,
            package_type=package_type,
            timeout=int(props.get("Timeout", 3)),
            memory_size=int(props.get("MemorySize", 128)),
            environment={key: _env_string(val) for key, val in environment.items()},
            python_path=tuple(python_path),
            image_environment=image_environment,
            tracing=props.get("Tracing") == "Active",
        )

    def _layer_dirs_all(self) -> list[Path]:
        return [
            (self.base_dir / str(self._property(lid, "ContentUri"))).resolve()
            for lid in self.resources_of_type(SERVERLESS_LAYER)
        ]

    def _layer_dir(self, arn: str) -> Path:
        for logical_id in self.resources_of_type(SERVERLESS_LAYER):
            if self.arn(logical_id) == arn:
                return (self.base_dir / str(self._property(logical_id, "ContentUri"))).resolve()
        raise TemplateError(f"layer {arn} is not defined in the template (local mode has no remote layers)")

    def function_by_name(self, name_or_arn: str) -> FunctionConfig | None:
        for config in self.functions().values():
            if name_or_arn in (config.name, config.arn):
                return config
        return None

    def state_machines(self) -> dict[str, StateMachineConfig]:
        machines = {}
        for logical_id in self.resources_of_type(SERVERLESS_STATE_MACHINE):
            props = self.resources[logical_id].get("Properties", {})
            if "DefinitionUri" in props:
                definition = (self.base_dir / self.resolve(props["DefinitionUri"])).read_text(
                    encoding="utf-8"
                )
            else:
                definition = json.dumps(self.resolve(props["Definition"]))
            substitutions = self.resolve(props.get("DefinitionSubstitutions", {}))
            for key, value in substitutions.items():
                definition = definition.replace("${" + key + "}", str(value))
            machines[logical_id] = StateMachineConfig(
                logical_id=logical_id,
                name=self.physical_name(logical_id),
                arn=self.arn(logical_id),
                type=str(self.resolve(props.get("Type", "STANDARD"))),
                definition=definition,
                role_arn=f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role/{logical_id}Role",
                tracing=bool(self.resolve(props.get("Tracing", {})).get("Enabled", False)),
            )
        return machines

    def event_rules(self) -> list[EventRule]:
        rules = []
        for logical_id, resource in self.resources.items():
            if resource["Type"] not in (SERVERLESS_STATE_MACHINE, SERVERLESS_FUNCTION):
                continue
            for event_name, event in resource.get("Properties", {}).get("Events", {}).items():
                if event.get("Type") != "EventBridgeRule":
                    continue
                props = self.resolve(event.get("Properties", {}))
                if props.get("EventBusName", "default") != "default":
                    raise TemplateError(
                        f"{logical_id}.{event_name}: local mode has only the default event bus"
                    )
                rules.append(
                    EventRule(
                        name=f"{logical_id}{event_name}",
                        target=logical_id,
                        target_type=resource["Type"],
                        pattern=props["Pattern"],
                        retry_policy=props.get("RetryPolicy", {}),
                    )
                )
        return rules

    def http_routes(self) -> list[HttpRoute]:
        routes = []
        for logical_id, resource in self.resources_of_type(SERVERLESS_FUNCTION).items():
            for event_name, event in resource.get("Properties", {}).get("Events", {}).items():
                if event.get("Type") != "HttpApi":
                    continue
                props = event.get("Properties", {})
                api_ref = props.get("ApiId", {"Ref": IMPLICIT_HTTP_API})
                api_logical_id = api_ref.get("Ref") if isinstance(api_ref, dict) else None
                if api_logical_id is None:
                    raise TemplateError(f"{logical_id}.{event_name}: ApiId must be a !Ref to an HttpApi")
                props = self.resolve(props)
                path = props.get("Path", "$default")
                method = str(props.get("Method", "ANY")).upper()
                if method == "X-AMAZON-APIGATEWAY-ANY-METHOD":
                    method = "ANY"
                routes.append(
                    HttpRoute(
                        api_id=self._api_id(api_logical_id),
                        method=method,
                        path=path,
                        function=logical_id,
                        authorizer=self._route_authorizer(api_logical_id, props.get("Auth", {})),
                    )
                )
        return routes

    def _api_id(self, api_logical_id: str) -> str:
        if api_logical_id == IMPLICIT_HTTP_API and api_logical_id not in self.resources:
            return re.sub(r"[^a-z0-9]", "", api_logical_id.lower())[:10]
        return self.ref(api_logical_id)

    def _route_authorizer(self, api_logical_id: str, auth: Mapping[str, Any]) -> str | None:
        authorizer = auth.get("Authorizer")
        if authorizer is None and api_logical_id in self.resources:
            authorizer = self._property(api_logical_id, "Auth") or {}
            authorizer = authorizer.get("DefaultAuthorizer")
        if authorizer in (None, "NONE"):
            return None
        if authorizer != "AWS_IAM":
            raise TemplateError(f"local mode only emulates the AWS_IAM authorizer, not {authorizer}")
        return authorizer


def _check_parameter(name: str, spec: Mapping[str, Any], raw: Any) -> str:
    """Validate a parameter value like CloudFormation does; the value stays a string."""
    value = str(raw).lower() if isinstance(raw, bool) else str(raw)
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        raise TemplateError(f"parameter {name}={value!r} is not one of {spec['AllowedValues']}")
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            raise TemplateError(f"parameter {name}={value!r} is not a number") from None
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise TemplateError(f"parameter {name}={value} is below MinValue {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise TemplateError(f"parameter {name}={value} is above MaxValue {spec['MaxValue']}")
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        raise TemplateError(f"parameter {name}={value!r} does not match {spec['AllowedPattern']}")
    return value


def _env_string(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        raise TemplateError(f"environment value {value!r} did not resolve to a string")
    return str(value)
