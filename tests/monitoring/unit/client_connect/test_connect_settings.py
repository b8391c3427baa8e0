"""The client-connect handler's settings, read without pydantic: the template's values, defaults,
and an error naming the variable for anything else."""

from __future__ import annotations

import pytest

from cvpn_shared.monitoring.client_connect_wiring import ConnectSettings


def test_the_template_s_values_and_the_defaults() -> None:
    read = ConnectSettings.from_environment(
        {
            "BLOCKLIST_TABLE_NAME": "stack-Blocklist",
            "CLIENT_CONNECT_FAIL_MODE": "closed",
            "BLOCKLIST_LOOKUP_BUDGET_SECONDS": "2",
            "AWS_REGION": "eu-west-3",
            "ACCESS_GRANTS_TABLE_NAME": "stack-Grants",
            "REQUEST_FORM_URL": " https://abc.execute-api.eu-west-3.amazonaws.com/ ",
        }
    )
    assert read == ConnectSettings(
        "stack-Blocklist",
        "closed",
        2.0,
        "eu-west-3",
        "stack-Grants",
        "https://abc.execute-api.eu-west-3.amazonaws.com/",
    )
    assert ConnectSettings.from_environment({"AWS_DEFAULT_REGION": "us-west-2"}) == ConnectSettings(
        "", "open", 2.0, "us-west-2"
    )


@pytest.mark.parametrize(
    ("variables", "problem"),
    [
        ({"CLIENT_CONNECT_FAIL_MODE": "Open"}, "CLIENT_CONNECT_FAIL_MODE: must be open or closed"),
        ({"CLIENT_CONNECT_FAIL_MODE": ""}, "CLIENT_CONNECT_FAIL_MODE"),
        ({"BLOCKLIST_LOOKUP_BUDGET_SECONDS": "two"}, "BLOCKLIST_LOOKUP_BUDGET_SECONDS: not a number"),
        ({"BLOCKLIST_LOOKUP_BUDGET_SECONDS": "1.1"}, "BLOCKLIST_LOOKUP_BUDGET_SECONDS: must be 1.2 to 20"),
        ({"BLOCKLIST_LOOKUP_BUDGET_SECONDS": "21"}, "BLOCKLIST_LOOKUP_BUDGET_SECONDS: must be 1.2 to 20"),
        ({"BLOCKLIST_LOOKUP_BUDGET_SECONDS": "nan"}, "BLOCKLIST_LOOKUP_BUDGET_SECONDS: must be 1.2 to 20"),
        ({"REQUEST_FORM_URL": "vpn.example.com"}, "REQUEST_FORM_URL: must be an http"),
        ({"REQUEST_FORM_URL": "https://x/\nb"}, "REQUEST_FORM_URL: must be an http"),
        ({"REQUEST_FORM_URL": "https://x.example/" + "a" * 183}, "REQUEST_FORM_URL: .* at most 200"),
    ],
)
def test_a_wrong_value_is_refused_naming_its_variable(variables: dict[str, str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        ConnectSettings.from_environment(variables)
