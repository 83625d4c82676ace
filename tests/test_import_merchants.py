"""``flask import-merchants FILE.csv``: good rows in, bad rows reported by line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func

from mediation.extensions import db
from mediation.merchants.importer import COLUMNS
from mediation.merchants.models import Merchant

DATA = Path(__file__).parent / "data"


def _merchants(app) -> dict[str, Merchant]:
    with app.app_context():
        rows = db.session.scalars(db.select(Merchant)).all()
        for row in rows:
            db.session.expunge(row)
        return {m.uscc: m for m in rows}


def _reported(output: str) -> dict[int, str]:
    """Return {line: reason} of the ``line N: ...`` messages of the command."""
    return {
        int(n): reason for n, reason in re.findall(r"^line (\d+): (.*)$", output, re.M)
    }


def test_good_rows_are_imported_and_each_bad_row_is_reported(app, runner):
    result = runner.invoke(args=["import-merchants", str(DATA / "merchants_mixed.csv")])

    assert result.exit_code != 0
    reported = _reported(result.output)
    # line: the column named in the reason (the text itself is translated).
    assert {line: reason.split(":")[0] for line, reason in reported.items()} == {
        4: "uscc",  # bad check character
        5: "kind",  # restaurant
        6: "name",  # missing
        7: "platform_uscc",  # no such platform
        8: "uscc",  # the code of line 3 again
        12: "platform_uscc",  # names a goods merchant, not a platform
    }
    merchants = _merchants(app)
    assert sorted(m.name for m in merchants.values()) == sorted(
        ["示例商城", "优品家电旗舰店", "青禾茶庄", "Service Co"]
    )


def test_rejected_rows_leave_nothing_behind(app, runner):
    runner.invoke(args=["import-merchants", str(DATA / "merchants_mixed.csv")])

    with app.app_context():
        assert db.session.scalar(db.select(func.count()).select_from(Merchant)) == 4
        names = set(db.session.scalars(db.select(Merchant.name)))
    assert not names & {
        "Bad Check Shop",
        "Unknown Kind Shop",
        "Orphan Shop",
        "Duplicate Shop",
        "Shop On A Shop",
    }


def test_a_platform_from_earlier_in_the_file_can_be_named_by_later_rows(app, runner):
    runner.invoke(args=["import-merchants", str(DATA / "merchants_mixed.csv")])

    merchants = _merchants(app)
    platform = merchants["91330106MA2B00001Y"]
    shop = merchants["91330106MA2B000022"]
    assert platform.kind == "platform"
    assert platform.arbitration_consent is True
    assert platform.commitment == "平台承诺：两个工作日内处理投诉。"
    assert shop.platform_id == platform.id
    assert shop.arbitration_consent is True  # 是
    assert shop.shop_url == "https://mall.example.cn/shop/youpin"


def test_codes_are_normalised_and_values_may_span_lines(app, runner):
    result = runner.invoke(args=["import-merchants", str(DATA / "merchants_mixed.csv")])

    tea = _merchants(app)["91320500MA1E00005N"]  # typed with spaces, lower case
    assert tea.name == "青禾茶庄"
    assert tea.arbitration_consent is False
    assert tea.commitment == "Teas from our own garden.\nReturns within 7 days."
    # The row after the two-line record is reported by its own line number.
    assert 11 not in _reported(result.output)
    assert 12 in _reported(result.output)


def test_a_clean_file_exits_zero(app, runner):
    result = runner.invoke(args=["import-merchants", str(DATA / "merchants_good.csv")])

    assert result.exit_code == 0, result.output
    assert _reported(result.output) == {}
    merchants = _merchants(app)
    assert len(merchants) == 3
    assert (
        merchants["91330106MA2B000022"].platform_id
        == merchants["91330106MA2B00001Y"].id
    )


def test_importing_the_same_file_twice_rejects_every_row(app, runner):
    runner.invoke(args=["import-merchants", str(DATA / "merchants_good.csv")])
    result = runner.invoke(args=["import-merchants", str(DATA / "merchants_good.csv")])

    assert result.exit_code != 0
    assert {line: r.split(":")[0] for line, r in _reported(result.output).items()} == {
        2: "uscc",
        3: "uscc",
        4: "uscc",
    }
    assert len(_merchants(app)) == 3


def test_a_file_without_the_required_columns_imports_nothing(app, runner):
    result = runner.invoke(
        args=["import-merchants", str(DATA / "merchants_bad_header.csv")]
    )

    assert result.exit_code != 0
    reported = _reported(result.output)
    assert list(reported) == [1]
    assert "name" in reported[1] and "uscc" in reported[1]
    assert _merchants(app) == {}


@pytest.mark.parametrize(
    ("content", "line", "column"),
    [
        (
            "Odd Shop,91330106MA2B00001Y,goods,330106,,,maybe,\n",
            2,
            "arbitration_consent",
        ),
        ("Odd Shop,91330106MA2B00001Y,goods,330106,,ftp://x,,\n", 2, "shop_url"),
        ("Odd Shop,91330106MA2B00001Y,goods,33010,,,,\n", 2, "region_code"),
        ("\n\nOdd Shop,91330106MA2B00001Y,goods,330106,,,,,extra\n", 4, None),
    ],
)
def test_other_bad_values_are_reported(app, runner, tmp_path, content, line, column):
    path = tmp_path / "one.csv"
    header = ",".join(COLUMNS) + "\n"
    path.write_text(header + content, encoding="utf-8")

    result = runner.invoke(args=["import-merchants", str(path)])

    assert result.exit_code != 0
    reported = _reported(result.output)
    assert list(reported) == [line]
    if column:
        assert reported[line].startswith(column + ":")
    assert _merchants(app) == {}


def test_a_file_that_is_not_utf8_is_refused_cleanly(app, runner, tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes(
        "name,uscc,kind,region_code\n示例商城,91330106MA2B00001Y,platform,330106\n".encode(
            "gbk"
        )
    )

    result = runner.invoke(args=["import-merchants", str(path)])

    assert result.exit_code != 0
    assert "UTF-8" in result.output
    assert not isinstance(result.exception, UnicodeDecodeError)
    assert _merchants(app) == {}


def test_a_byte_order_mark_is_accepted(app, runner, tmp_path):
    path = tmp_path / "bom.csv"
    path.write_text(
        "name,uscc,kind,region_code\n示例商城,91330106MA2B00001Y,platform,330106\n",
        encoding="utf-8-sig",
    )

    result = runner.invoke(args=["import-merchants", str(path)])

    assert result.exit_code == 0, result.output
    assert list(_merchants(app)) == ["91330106MA2B00001Y"]
