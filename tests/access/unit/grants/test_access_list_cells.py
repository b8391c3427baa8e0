"""The access review's CSV: what a person typed (a reason, a user name) opens in a spreadsheet as
text, never as a formula; lists are joined with ';'."""

from __future__ import annotations

import pytest

from cvpn.access_cli import _csv_cell


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+1+1", "'+1+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("plain reason", "plain reason"),
        (["S-1-5-21-1-2-3-512", "S-1-5-21-1-2-3-1105"], "S-1-5-21-1-2-3-512;S-1-5-21-1-2-3-1105"),
        (None, ""),
        (True, "True"),
    ],
)
def test_a_cell_is_text_a_spreadsheet_will_not_run(value: object, cell: str) -> None:
    assert _csv_cell(value) == cell
