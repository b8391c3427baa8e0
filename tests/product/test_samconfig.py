"""samconfig.toml has the two environments the README promises, each validating with the linter
and building cached and in parallel, and prod deploys the prod stage."""

from __future__ import annotations

import re
import tomllib

import pytest

from tests.fixtures import REPO_ROOT

CONFIG = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text())


@pytest.mark.parametrize("environment", ["default", "prod"])
def test_environment_validates_with_lint_and_builds_cached_in_parallel(environment: str) -> None:
    section = CONFIG[environment]
    assert section["validate"]["parameters"]["lint"] is True
    assert section["build"]["parameters"]["cached"] is True
    assert section["build"]["parameters"]["parallel"] is True
    assert section["deploy"]["parameters"]["capabilities"] == "CAPABILITY_IAM"
    assert section["deploy"]["parameters"]["confirm_changeset"] is True


def test_dev_and_prod_are_separate_stacks_and_stages() -> None:
    assert (
        CONFIG["default"]["global"]["parameters"]["stack_name"]
        != CONFIG["prod"]["global"]["parameters"]["stack_name"]
    )
    assert "Stage=dev" in CONFIG["default"]["deploy"]["parameters"]["parameter_overrides"]
    assert "Stage=prod" in CONFIG["prod"]["deploy"]["parameters"]["parameter_overrides"]
    # The client-connect handler is named AWSClientVPN-<stack>: 64 characters at most.
    for environment in ("default", "prod"):
        assert len(CONFIG[environment]["global"]["parameters"]["stack_name"]) <= 51


@pytest.mark.parametrize("environment", ["default", "prod"])
def test_sam_cli_expands_the_templates_loops(environment: str) -> None:
    """template.yaml's Fn::ForEach needs SAM CLI's language extensions to build and validate."""
    template = (REPO_ROOT / "template.yaml").read_text()
    assert re.search(r"^Transform:.*AWS::LanguageExtensions", template, re.MULTILINE)
    assert CONFIG[environment]["global"]["parameters"]["language_extensions"] is True
