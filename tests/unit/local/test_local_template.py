"""local.template against the real template.yaml: what local mode runs is what the
template declares (names, env vars, substitutions, routes), with nothing repeated here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.template import NO_VALUE, Stack, TemplateError, load_template

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = ROOT / "template.yaml"
RAW = load_template(TEMPLATE)


def functions_in_template() -> dict[str, dict]:
    return {lid: r for lid, r in RAW["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}


@pytest.fixture(scope="module")
def stack() -> Stack:
    return Stack(TEMPLATE)


def test_short_tags_load_as_their_long_forms(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "Resources:\n"
        "  R:\n"
        "    Type: X\n"
        "    Properties:\n"
        "      A: !Ref P\n"
        "      B: !GetAtt Res.Arn\n"
        "      C: !Sub '${P}-x'\n"
        "      D: !If [Cond, !Select [0, !Split [',', 'a,b']], !Ref AWS::NoValue]\n"
        "      E: !Not [!Equals [!Ref P, '']]\n"
        "      F: !Join ['-', [a, b]]\n"
    )
    props = load_template(path)["Resources"]["R"]["Properties"]

    assert props["A"] == {"Ref": "P"}
    assert props["B"] == {"Fn::GetAtt": ["Res", "Arn"]}
    assert props["C"] == {"Fn::Sub": "${P}-x"}
    assert props["D"] == {
        "Fn::If": ["Cond", {"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]}, {"Ref": "AWS::NoValue"}]
    }
    assert props["E"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "P"}, ""]}]}
    assert props["F"] == {"Fn::Join": ["-", ["a", "b"]]}


def test_parameters_are_defaults_plus_overrides() -> None:
    defaults = {name: str(spec.get("Default")) for name, spec in RAW["Parameters"].items()}
    name, spec = next((n, s) for n, s in RAW["Parameters"].items() if "AllowedValues" in s)
    other = next(str(v) for v in spec["AllowedValues"] if str(v) != str(spec["Default"]))

    stack = Stack(TEMPLATE, {name: other})

    assert stack.parameters == {**defaults, name: other}


@pytest.mark.parametrize(
    "overrides",
    [
        {"NotAParameter": "1"},
        {"AllowLoopbackWebhooks": "maybe"},  # AllowedValues
        {"SegmentMemorySize": "1"},  # MinValue
        {"ModelUri": "http://x"},  # AllowedPattern
    ],
)
def test_invalid_parameter_overrides_are_refused(overrides: dict[str, str]) -> None:
    with pytest.raises(TemplateError):
        Stack(TEMPLATE, overrides)


def test_every_resource_resolves_without_intrinsics_left(stack: Stack) -> None:
    resolved = stack.resolve({lid: r.get("Properties", {}) for lid, r in stack.resources.items()})

    text = json.dumps(resolved, default=repr)
    for leftover in ('"Ref"', '"Fn::', "${", repr(NO_VALUE)):
        assert leftover not in text, leftover


def test_every_function_gets_its_declared_env_vars_as_strings(stack: Stack) -> None:
    global_vars = RAW["Globals"]["Function"]["Environment"]["Variables"]
    functions = stack.functions()

    assert set(functions) == set(functions_in_template())
    for logical_id, resource in functions_in_template().items():
        declared = {**global_vars, **resource["Properties"].get("Environment", {}).get("Variables", {})}
        env = functions[logical_id].environment
        assert set(env) == set(declared), logical_id
        assert all(isinstance(value, str) and "${" not in value for value in env.values())


def test_refs_resolve_to_local_physical_names(stack: Stack) -> None:
    bucket = next(lid for lid, r in RAW["Resources"].items() if r["Type"] == "AWS::S3::Bucket")
    table = next(lid for lid, r in RAW["Resources"].items() if r["Type"] == "AWS::DynamoDB::Table")
    global_vars = RAW["Globals"]["Function"]["Environment"]["Variables"]
    env_of = {var: value.get("Ref") for var, value in global_vars.items() if isinstance(value, dict)}

    assert stack.physical_name(bucket) == f"{bucket.lower()}-local"
    assert stack.physical_name(table) == table
    api_env = stack.function("ApiFunction").environment
    for var, ref in env_of.items():
        if ref == bucket:
            assert api_env[var] == f"{bucket.lower()}-local"
        elif ref == table:
            assert api_env[var] == table
        else:
            assert api_env[var] == stack.parameters[ref]


def test_parameter_overrides_flow_into_function_env() -> None:
    stack = Stack(TEMPLATE, {"AllowLoopbackWebhooks": "true", "MaxUploadBytes": "2048"})

    for config in stack.functions().values():
        declared = {
            var: value.get("Ref")
            for var, value in functions_in_template()[config.logical_id]["Properties"]
            .get("Environment", {})
            .get("Variables", {})
            .items()
            if isinstance(value, dict)
        }
        for var, ref in declared.items():
            if ref in ("AllowLoopbackWebhooks", "MaxUploadBytes"):
                assert config.environment[var] == stack.parameters[ref]
    assert stack.parameters["MaxUploadBytes"] == "2048"


def test_functions_code_handler_timeout_and_layers(stack: Stack) -> None:
    layer_dir = (ROOT / RAW["Resources"]["SharedLayer"]["Properties"]["ContentUri"]).resolve()
    for logical_id, resource in functions_in_template().items():
        props = resource["Properties"]
        config = stack.function(logical_id)
        assert config.name == logical_id
        assert config.arn == f"arn:aws:lambda:us-east-1:123456789012:function:{logical_id}"
        assert layer_dir in config.python_path
        if props.get("PackageType") == "Image":
            metadata = resource["Metadata"]
            expected_dir = (ROOT / metadata["DockerContext"] / metadata["Dockerfile"]).parent.resolve()
            assert config.code_dir == expected_dir
            assert config.handler == props["ImageConfig"]["Command"][0]
            assert config.timeout == int(stack.parameters[props["Timeout"]["Ref"]])
        else:
            assert config.code_dir == (ROOT / props["CodeUri"]).resolve()
            assert config.handler == props["Handler"]
            assert config.timeout == props["Timeout"]


def test_functions_trace_actively_and_never_capture_responses(stack: Stack) -> None:
    # Globals: Tracing Active, and responses (presigned URLs, secrets) kept out of traces
    for logical_id in functions_in_template():
        config = stack.function(logical_id)
        assert config.tracing is True
        assert config.environment["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"


def test_state_machine_definition_has_every_substitution_filled(stack: Stack) -> None:
    machines = stack.state_machines()
    assert set(machines) == {
        lid for lid, r in RAW["Resources"].items() if r["Type"] == "AWS::Serverless::StateMachine"
    }
    for logical_id, machine in machines.items():
        props = RAW["Resources"][logical_id]["Properties"]
        raw_definition = (ROOT / props["DefinitionUri"]).read_text()
        for key in props["DefinitionSubstitutions"]:
            assert "${" + key + "}" in raw_definition, f"substitution {key} is unused"

        assert "${" not in machine.definition
        definition = json.loads(machine.definition)
        function_arns = {config.arn for config in stack.functions().values()}
        for state in definition["States"].values():
            if state.get("Resource") == "arn:aws:states:::lambda:invoke":
                assert state["Parameters"]["FunctionName"] in function_arns
            if state.get("Resource", "").startswith("arn:aws:states:::dynamodb:"):
                assert state["Parameters"]["TableName"] in {
                    stack.physical_name(lid) for lid in stack.resources_of_type("AWS::DynamoDB::Table")
                }


def test_event_rule_pattern_is_the_templates_with_the_bucket_name(stack: Stack) -> None:
    (rule,) = stack.event_rules()
    bucket = next(iter(stack.resources_of_type("AWS::S3::Bucket")))

    assert rule.target == "JobStateMachine"
    assert rule.pattern["source"] == ["aws.s3"]
    assert rule.pattern["detail"]["bucket"]["name"] == [stack.physical_name(bucket)]
    assert rule.retry_policy["MaximumRetryAttempts"] >= 0


def test_http_routes_are_the_functions_httpapi_events(stack: Stack) -> None:
    declared = {
        (event["Properties"]["Method"].upper(), event["Properties"]["Path"], lid)
        for lid, resource in functions_in_template().items()
        for event in resource["Properties"].get("Events", {}).values()
        if event["Type"] == "HttpApi"
    }

    routes = stack.http_routes()

    assert {(r.method, r.path, r.function) for r in routes} == declared
    assert all(r.authorizer == "AWS_IAM" for r in routes)  # the API's DefaultAuthorizer
    assert {r.route_key for r in routes} == {f"{m} {p}" for m, p, _ in declared}


def test_condition_switches_the_model_policy_on() -> None:
    without = Stack(TEMPLATE)
    with_model = Stack(TEMPLATE, {"ModelUri": "s3://models/seg/best.pt", "ModelSha256": "a" * 64})

    assert without.conditions["HasModelUri"] is False
    assert with_model.conditions["HasModelUri"] is True
    policies = with_model.resolve(with_model.resources["SegmentFunction"]["Properties"]["Policies"])
    resources = json.dumps(policies)
    assert "arn:aws:s3:::models/seg/best.pt" in resources
    assert len(without.resolve(without.resources["SegmentFunction"]["Properties"]["Policies"])) == 1


@pytest.mark.parametrize(("limit", "reserved"), [("20", 20), ("0", None)])
def test_segment_max_concurrency_reserves_concurrency_unless_zero(limit: str, reserved: int | None) -> None:
    stack = Stack(TEMPLATE, {"SegmentMaxConcurrency": limit})
    props = stack.resolve(stack.resources["SegmentFunction"]["Properties"])
    value = props.get("ReservedConcurrentExecutions")
    assert (int(value) if value is not None else None) == reserved


def test_both_flows_share_one_definition_with_their_own_type(stack: Stack) -> None:
    machines = stack.state_machines()
    assert {m.type for m in machines.values()} == {"EXPRESS", "STANDARD"}
    express, standard = machines["JobStateMachine"], machines["StandardJobStateMachine"]
    assert express.type == "EXPRESS" and standard.type == "STANDARD"
    # the Express flow hands over to the Standard one by its ARN; both name the same ARN
    assert standard.arn in express.definition and standard.arn in standard.definition
    assert json.loads(express.definition)["States"] == json.loads(standard.definition)["States"]


def test_physical_ids_replace_derived_arns(stack: Stack) -> None:
    secret = next(iter(stack.resources_of_type("AWS::SecretsManager::Secret")))
    real = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{secret}-AbCdEf"

    updated = stack.with_physical_ids({secret: {"Ref": real, "Arn": real}})

    assert real in updated.function("NotifyFunction").environment.values()
    assert real not in stack.function("NotifyFunction").environment.values()


def test_globals_merge_maps_add_lists_and_let_functions_override(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        "Globals:\n"
        "  Function:\n"
        "    Timeout: 5\n"
        "    Layers: [!Ref L]\n"
        "    Environment: {Variables: {A: g, B: g}}\n"
        "Resources:\n"
        "  L: {Type: AWS::Serverless::LayerVersion, Properties: {ContentUri: lib/}}\n"
        "  L2: {Type: AWS::Serverless::LayerVersion, Properties: {ContentUri: lib2/}}\n"
        "  F:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        "      CodeUri: src/\n"
        "      Handler: app.handler\n"
        "      Timeout: 9\n"
        "      Layers: [!Ref L2]\n"
        "      Environment: {Variables: {B: f, C: !Sub '${AWS::Region}-${L}'}}\n"
    )

    config = Stack(path).function("F")

    assert config.timeout == 9
    assert config.environment == {
        "A": "g",
        "B": "f",
        "C": "us-east-1-arn:aws:lambda:us-east-1:123456789012:layer:L:1",
    }
    assert config.python_path == ((tmp_path / "lib").resolve(), (tmp_path / "lib2").resolve())


def test_segment_function_may_read_and_update_only_the_jobs_table(stack: Stack) -> None:
    # The cancel checks and the progress of tiled jobs: local mode gives the function the
    # table's name from the same template (Globals), and the policy names that one table.
    segment = stack.function("SegmentFunction")
    statements = [
        statement
        for policy in stack.resolve(stack.resources["SegmentFunction"]["Properties"]["Policies"])
        for statement in policy.get("Statement", [])
        if any(action.startswith("dynamodb:") for action in statement["Action"])
    ]

    assert [(sorted(s["Action"]), s["Resource"]) for s in statements] == [
        (["dynamodb:GetItem", "dynamodb:UpdateItem"], stack.resolve({"Fn::GetAtt": ["JobsTable", "Arn"]}))
    ]
    assert segment.environment["JOBS_TABLE"] == stack.resolve({"Ref": "JobsTable"})
