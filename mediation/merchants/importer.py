"""``import-merchants FILE.csv``: good rows in, each bad row reported, none half-done."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import click
from flask.cli import with_appcontext

from mediation import clock
from mediation.errors import DomainError
from mediation.extensions import db
from mediation.merchants.models import Merchant
from mediation.merchants.services import register_merchant

COLUMNS = ("name", "uscc", "kind", "region_code", "platform_uscc", "shop_url",
           "arbitration_consent", "commitment")
REQUIRED = ("name", "uscc", "kind", "region_code")
TRUE = {"1", "true", "yes", "y", "是"}


@dataclass
class RowError:
    line: int
    reason: str


def import_rows(path: Path) -> tuple[int, list[RowError]]:
    """Import every good row of a CSV file; each row in its own savepoint.

    The header names the columns (:data:`COLUMNS`; ``platform_uscc`` names the
    platform by its code, which may be registered earlier in the same file).

    :return: the number imported and the bad rows with line number and reason.
    """
    errors: list[RowError] = []
    imported = 0
    now = clock.now_utc()
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            return 0, [RowError(1, f"missing columns: {', '.join(missing)}")]
        for row in reader:
            line = reader.line_num
            try:
                values = _values(row)
                with db.session.begin_nested():
                    register_merchant(values, now=now)
                imported += 1
            except DomainError as exc:
                detail = "; ".join(f"{k}: {v}" for k, v in (exc.fields or {}).items())
                errors.append(RowError(line, detail or str(exc.message)))
            except ValueError as exc:
                errors.append(RowError(line, str(exc)))
    return imported, errors


def _values(row: dict[str, str | None]) -> dict:
    values = {k: (row.get(k) or "").strip() for k in COLUMNS}
    platform_code = values.pop("platform_uscc")
    values["arbitration_consent"] = values["arbitration_consent"].lower() in TRUE
    values["platform_id"] = None
    if platform_code:
        platform_id = db.session.scalar(
            db.select(Merchant.id).where(Merchant.uscc == platform_code.upper())
        )
        if platform_id is None:
            raise ValueError(f"platform_uscc: no registered platform {platform_code}")
        values["platform_id"] = platform_id
    return values


@click.command("import-merchants")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def import_merchants_command(file: Path) -> None:
    """Import merchants from a CSV file; report each bad row and its line."""
    imported, errors = import_rows(file)
    db.session.commit()
    for err in errors:
        click.echo(f"line {err.line}: {err.reason}", err=True)
    click.echo(f"imported {imported} merchant(s), {len(errors)} row(s) rejected")
    if errors:
        raise SystemExit(1)
