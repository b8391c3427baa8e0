"""Parameter values and samconfig environments read as SAM CLI reads them for `sam deploy`: the
`--parameter-overrides` syntax (both forms, quoting, escapes, files) and `[<env>.deploy.parameters]`
over `[<env>.global.parameters]`. The accepted cases are SAM CLI's own unit-test cases; where SAM CLI
silently skips text, the local cloud refuses it and says what it could not read."""

from __future__ import annotations

from pathlib import Path

import pytest

from localcloud.samcli import (
    SamCliError,
    default_samconfig,
    parse_parameter_overrides,
    read_samconfig_environment,
)
from tests.fixtures import REPO_ROOT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "ParameterKey=KeyPairName,ParameterValue=MyKey ParameterKey=InstanceType,ParameterValue=t1.micro",
            {"KeyPairName": "MyKey", "InstanceType": "t1.micro"},
        ),
        ("KeyPairName=MyKey InstanceType=t1.micro", {"KeyPairName": "MyKey", "InstanceType": "t1.micro"}),
        ("KeyPairName=MyKey, InstanceType=t1.micro,", {"KeyPairName": "MyKey,", "InstanceType": "t1.micro,"}),
        ('ParameterKey="Key",ParameterValue=Val\\ ue', {"Key": "Val ue"}),
        ('ParameterKey="Key",ParameterValue="Val\\"ue"', {"Key": 'Val"ue'}),
        ("ParameterKey='Key',ParameterValue='Val ue'", {"Key": "Val ue"}),
        ('ParameterKey="Key",ParameterValue=Val\'ue', {"Key": "Val'ue"}),
        ("ParameterKey='Key',ParameterValue='Val\"ue'", {"Key": 'Val"ue'}),
        ('ParameterKey=Key,ParameterValue=""', {"Key": ""}),
        (
            "  ParameterKey=Key,ParameterValue=Value   ParameterKey=Key2,ParameterValue=Value2     ",
            {"Key": "Value", "Key2": "Value2"},
        ),
        ('ParameterKey=Key,ParameterValue=Value\\"', {"Key": 'Value"'}),
        ("ParameterKey=Key,ParameterValue=Value'", {"Key": "Value'"}),
        ('ParameterKey=Key,ParameterValue=\\"Value', {"Key": '"Value'}),
        ("ParameterKey=Key,ParameterValue='Value", {"Key": "'Value"}),
        (
            "ParameterKey=Key,ParameterValue==-_)(*&^%$#@!`~:;,.    ParameterKey=Key2,ParameterValue=Value2",
            {"Key": "=-_)(*&^%$#@!`~:;,.", "Key2": "Value2"},
        ),
        ('ParameterKey=Key1230,ParameterValue="{\\"a\\":\\"b\\"}"', {"Key1230": '{"a":"b"}'}),
        ('Key=Key1230 Value="{\\"a\\":\\"b\\"}"', {"Key": "Key1230", "Value": '{"a":"b"}'}),
        ("""Key=Key1230 Value='{"a":"b"}'""", {"Key": "Key1230", "Value": '{"a":"b"}'}),
        # a backslash that escapes anything but a space or a quote is kept, as SAM CLI keeps it
        ("Path='C:\\\\temp\\n'", {"Path": "C:\\\\temp\\n"}),
        ("Schedule='rate(5 minutes)' Stage=prod", {"Schedule": "rate(5 minutes)", "Stage": "prod"}),
        ("", {}),
    ],
)
def test_reads_sam_cli_syntax(text: str, expected: dict[str, str]) -> None:
    assert parse_parameter_overrides(text) == expected


def test_later_strings_win_and_mappings_follow_sam_cli() -> None:
    """Several words after the flag, or a samconfig list: later ones win. A mapping's list becomes a
    comma-separated value, an empty value an empty string, anything else its text."""
    values = ["Stage=dev LogRetentionDays=30", "LogRetentionDays=365", {"Groups": ["a ", None, "b", ""]}]
    values.append({"AlertEmail": None, "BlockDurationHours": 48, "TerminateBlockedSessions": True})
    assert parse_parameter_overrides(values) == {
        "Stage": "dev",
        "LogRetentionDays": "365",
        "Groups": "a,b",
        "AlertEmail": "",
        "BlockDurationHours": "48",
        "TerminateBlockedSessions": "True",
    }


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("some string", "cannot read 'some string': expected Key=Value or ParameterKey=Key,ParameterValue"),
        (",,", "cannot read ',,'"),
        ("ParameterKey:Key,ParameterValue:Value", "cannot read 'ParameterKey:Key,ParameterValue:Value'"),
        # SAM CLI would deploy the value "{" here and drop the rest
        ('DetectionSettings="{"a":1}"', 'text follows the closing " of the value of DetectionSettings'),
        ('DetectionSettings={"a":1}', "the value of DetectionSettings holds a double quote"),
        ("Stage=", 'no value after Stage= (an empty value is written Stage="")'),
        ("ParameterKey=Stage,ParameterValue=", "no value after ParameterValue="),
        ("ParameterKey=Stage", "expected ParameterKey=Key,ParameterValue=Value"),
        ("Log_Retention=7", "'Log_Retention' is not a parameter name (letters and digits only)"),
        ('AlertEmail="ops@example.com', 'the " that opens the value of AlertEmail is never closed'),
        (
            "Stage=prod IngestSchedule=rate(5 minutes) LogRetentionDays=7",
            "cannot read 'minutes) LogRetentionDays=7': expected Key=Value or ParameterKey=Key,"
            "ParameterValue=Value; if it belongs to the value of IngestSchedule, quote that value: "
            "IngestSchedule='rate(5 minutes)'",
        ),
        ("Stage=prod junk", "cannot read 'junk'"),
        (
            "Stage=prod ParameterKey=LogRetentionDays,ParameterValue=7",
            "mixes ParameterKey=Key,ParameterValue=Value and Key=Value pairs",
        ),
    ],
)
def test_refuses_what_sam_cli_cannot_read_naming_the_text(text: str, reason: str) -> None:
    with pytest.raises(SamCliError) as error:
        parse_parameter_overrides(text)
    assert str(error.value).startswith("--parameter-overrides: ")
    assert reason in str(error.value)


def test_an_unclosed_quote_in_a_long_value_is_refused_at_once() -> None:
    """The user's text goes through the pattern: an unclosed quote must not backtrack for ever."""
    with pytest.raises(SamCliError, match="never closed"):
        parse_parameter_overrides("DetectionSettings='" + '{"rule": "R1", ' * 2000)


def test_reads_parameter_files_nested_and_relative_to_the_file_that_names_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`file://` reads TOML and YAML files; a nested reference or `$include` is relative to the file
    that names it, a top-level one to the working directory; later values win."""
    config = tmp_path / "config"
    (config / "shared").mkdir(parents=True)
    (config / "shared" / "common.yaml").write_text("Stage: dev\nAlertEmail: ops@example.com\n")
    (config / "prod.toml").write_text(
        "'$include' = ['file://shared/common.yaml']\nStage = 'prod'\nLogRetentionDays = 365\n"
    )
    (config / "detection.yaml").write_text(
        "- file://prod.toml\n- DetectionSettings: '{\"r4_distinct_users\": 3}'\n"
    )
    monkeypatch.chdir(tmp_path)
    assert parse_parameter_overrides(["file://config/detection.yaml", "AlertEmail=sec@example.com"]) == {
        "Stage": "prod",
        "AlertEmail": "sec@example.com",
        "LogRetentionDays": "365",
        "DetectionSettings": '{"r4_distinct_users": 3}',
    }


@pytest.mark.parametrize(
    ("files", "reference", "reason"),
    [
        ({}, "file://missing.yaml", "file://missing.yaml was not found or is a directory"),
        ({"params.json": "{}"}, "file://params.json", "is not a .toml, .yaml or .yml file"),
        ({"a.yaml": "$include: file://b.yaml", "b.yaml": "- file://a.yaml"}, "file://a.yaml", "itself"),
        ({"bad.yaml": "$include: 3"}, "file://bad.yaml", "$include must be a string or a list of strings"),
        ({"bad.yaml": "DetectionSettings: {a: 1}"}, "file://bad.yaml", "DetectionSettings is a mapping"),
        ({"bad.toml": "Stage = "}, "file://bad.toml", "not TOML"),
    ],
)
def test_refuses_bad_parameter_files(
    files: dict[str, str], reference: str, reason: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SamCliError) as error:
        parse_parameter_overrides(reference)
    assert reason in str(error.value)


# ----------------------------------------------------------------------------------------- samconfig
def test_reads_the_repository_environments() -> None:
    """The repository's samconfig.toml: `prod` names its stack in the global table and sets its
    parameters in the deploy table."""
    prod = read_samconfig_environment(REPO_ROOT / "samconfig.toml", "prod")
    assert prod.stack_name == "cvpn-autopilot-prod"
    assert prod.parameter_overrides == {"Stage": "prod", "LogRetentionDays": "365"}
    assert prod.label == "samconfig.toml [prod]"
    default = read_samconfig_environment(REPO_ROOT / "samconfig.toml", "default")
    assert (default.stack_name, default.parameter_overrides) == ("cvpn-autopilot-dev", {"Stage": "dev"})


def test_deploy_table_wins_over_global_key_by_key(tmp_path: Path) -> None:
    config = tmp_path / "samconfig.toml"
    config.write_text(
        "version = 0.1\n"
        "[staging.global.parameters]\n"
        'stack_name = "from-global"\n'
        'parameter_overrides = "Stage=dev"\n'
        "[staging.deploy.parameters]\n"
        'parameter_overrides = ["Stage=prod", "IngestSchedule=\'rate(2 minutes)\'"]\n'
        "[staging.build.parameters]\n"
        'stack_name = "from-build"\n'
    )
    staging = read_samconfig_environment(config, "staging")
    assert staging.stack_name == "from-global"
    assert staging.parameter_overrides == {"Stage": "prod", "IngestSchedule": "rate(2 minutes)"}


def test_an_environment_without_parameters_sets_none(tmp_path: Path) -> None:
    config = tmp_path / "samconfig.yaml"
    config.write_text("version: 0.1\nlab:\n  deploy:\n    parameters:\n      confirm_changeset: false\n")
    lab = read_samconfig_environment(config, "lab")
    assert (lab.stack_name, lab.parameter_overrides) == (None, None)


@pytest.mark.parametrize(
    ("text", "environment", "reason"),
    [
        ("version = 0.1\n[prod.deploy.parameters]\n", "lab", "has no environment 'lab' (it has: prod)"),
        ("[prod.deploy.parameters]\n", "prod", "no 'version' number"),
        ('version = "0.1"\n[prod.deploy.parameters]\n', "prod", "no 'version' number"),
        ("version = 0.1\n[prod.deploy]\nparameters = 3\n", "prod", "[prod.deploy.parameters] is not a table"),
        ("version = 0.1\n[prod.deploy.parameters]\nstack_name = 3\n", "prod", "stack_name must be"),
        (
            'version = 0.1\n[prod.deploy.parameters]\nparameter_overrides = "Stage="\n',
            "prod",
            "samconfig.toml [prod] parameter_overrides: cannot read 'Stage=': no value after Stage=",
        ),
        ("version = 0.1\n[prod\n", "prod", "not TOML"),
    ],
)
def test_refuses_bad_configuration_files(text: str, environment: str, reason: str, tmp_path: Path) -> None:
    config = tmp_path / "samconfig.toml"
    config.write_text(text)
    with pytest.raises(SamCliError) as error:
        read_samconfig_environment(config, environment)
    assert reason in str(error.value)


def test_the_default_file_is_toml_then_yaml_then_yml(tmp_path: Path) -> None:
    assert default_samconfig(tmp_path) == tmp_path / "samconfig.toml"
    (tmp_path / "samconfig.yml").write_text("version: 0.1\n")
    assert default_samconfig(tmp_path) == tmp_path / "samconfig.yml"
    (tmp_path / "samconfig.yaml").write_text("version: 0.1\n")
    assert default_samconfig(tmp_path) == tmp_path / "samconfig.yaml"
    (tmp_path / "samconfig.toml").write_text("version = 0.1\n")
    assert default_samconfig(tmp_path) == tmp_path / "samconfig.toml"
