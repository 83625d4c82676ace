"""``import-merchants FILE.csv``: good rows in, bad rows reported, none half-done."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import click
from flask.cli import with_appcontext
from flask_babel import gettext, ngettext

from mediation import clock
from mediation.analytics.audit import record_audit
from mediation.errors import DomainError
from mediation.extensions import db
from mediation.merchants import uscc
from mediation.merchants.models import Merchant
from mediation.merchants.services import register_merchant

COLUMNS = (
    "name",
    "uscc",
    "kind",
    "region_code",
    "platform_uscc",
    "shop_url",
    "arbitration_consent",
    "commitment",
)
REQUIRED = ("name", "uscc", "kind", "region_code")
TRUE = {"1", "true", "yes", "y", "是"}
FALSE = {"", "0", "false", "no", "n", "否"}


@dataclass
class RowError:
    """A rejected row: its first line in the file and why."""

    line: int
    reason: str


class RowProblem(Exception):
    """A row that cannot become registry values (before the service sees it)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def import_rows(
    path: Path, *, now: datetime | None = None
) -> tuple[int, list[RowError]]:
    """Import every good row of a CSV file (UTF-8, with or without BOM).

    The header names the columns (:data:`COLUMNS`; ``platform_uscc`` names the
    platform by its code, which may be registered earlier in the same file).
    Each row goes in through :func:`register_merchant` inside its own savepoint,
    so a bad row leaves nothing behind. The caller commits.

    :param path: the CSV file.
    :param now: the registration time (default: the clock's now).
    :return: the number imported and the bad rows with line number and reason.
    :raise click.ClickException: when the file is not UTF-8 text or not CSV.
    """
    now = now or clock.now_utc()
    errors: list[RowError] = []
    imported = 0
    merchant_ids: list[int] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            for line, row in _records(fh, errors):
                try:
                    values = _values(row)
                    with db.session.begin_nested():
                        merchant = register_merchant(values, now=now)
                    merchant_ids.append(merchant.id)
                    imported += 1
                except RowProblem as exc:
                    errors.append(RowError(line, str(exc)))
                except DomainError as exc:
                    errors.append(RowError(line, _describe(exc)))
    except UnicodeDecodeError:
        raise click.ClickException(
            gettext("%(file)s is not UTF-8 text.", file=path.name)
        ) from None
    except csv.Error as exc:
        raise click.ClickException(
            gettext(
                "%(file)s is not a readable CSV file: %(error)s",
                file=path.name,
                error=str(exc),
            )
        ) from None
    # The command line has no signed-in user: the entry's actor is the system.
    record_audit(
        None,
        "merchant.import",
        object_type="merchant",
        details={
            "file": path.name,
            "imported": imported,
            "rejected": len(errors),
            "merchant_ids": merchant_ids,
        },
        now=now,
    )
    return imported, errors


def _records(
    fh: TextIO, errors: list[RowError]
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (first line number, row) for each record; check the header first."""
    reader = csv.reader(fh)
    header: list[str] = []
    for fields in reader:
        if fields:
            header = [name.strip() for name in fields]
            break
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        errors.append(
            RowError(
                reader.line_num or 1,
                gettext("missing columns: %(columns)s", columns=", ".join(missing)),
            )
        )
        return
    last_line = reader.line_num
    for fields in reader:
        # A quoted value may span lines: report the line where the record starts.
        start, last_line = last_line + 1, reader.line_num
        if not fields:
            continue
        if len(fields) > len(header):
            errors.append(RowError(start, gettext("more values than columns")))
            continue
        yield start, dict(zip(header, fields, strict=False))


def _values(row: dict[str, Any]) -> dict[str, Any]:
    """Turn a CSV row into registry values.

    :raise RowProblem: for a consent that is not yes/no or an unknown platform.
    """
    values = {k: (row.get(k) or "").strip() for k in COLUMNS}
    platform_code = uscc.normalise(values.pop("platform_uscc"))
    consent = values["arbitration_consent"].lower()
    if consent not in TRUE | FALSE:
        raise RowProblem("arbitration_consent", gettext("write yes or no"))
    values["arbitration_consent"] = consent in TRUE
    values["platform_id"] = None
    if platform_code:
        platform_id = db.session.scalar(
            db.select(Merchant.id).where(Merchant.uscc == platform_code)
        )
        if platform_id is None:
            raise RowProblem(
                "platform_uscc",
                gettext(
                    "no registered platform has the code %(code)s", code=platform_code
                ),
            )
        values["platform_id"] = platform_id
    return values


def _describe(exc: DomainError) -> str:
    """Return a service error as ``field: message; ...`` in the CSV's column names."""
    if not exc.fields:
        return str(exc.message)
    column = {"platform_id": "platform_uscc"}
    return "; ".join(f"{column.get(k, k)}: {v}" for k, v in exc.fields.items())


@click.command("import-merchants")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def import_merchants_command(file: Path) -> None:
    """Import merchants from a CSV file; report each bad row and its line.

    Columns: name, uscc, kind (goods, service or platform), region_code, and
    optionally platform_uscc, shop_url, arbitration_consent (yes/no), commitment.
    The good rows are imported even when others are bad; the exit code is 1
    when any row was rejected.
    """
    imported, errors = import_rows(file)
    db.session.commit()
    for err in errors:
        message = gettext("line %(line)d: %(reason)s", line=err.line, reason=err.reason)
        click.echo(message, err=True)
    click.echo(
        ngettext("imported %(num)d merchant", "imported %(num)d merchants", imported)
        + ", "
        + ngettext("%(num)d row rejected", "%(num)d rows rejected", len(errors))
    )
    if errors:
        raise SystemExit(1)
