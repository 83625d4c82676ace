"""Add Chinese translations to the zh_CN catalogue, safely while others do too.

    .venv/bin/python tools/translate.py FILE.json     # {"English msgid": "中文", ...}
    .venv/bin/python tools/translate.py --update      # only extract and update

Under an exclusive lock (several people or tools may run it at once), it does
what ``make messages`` does (extract the marked strings, update both
catalogues), then sets the given translations in zh_CN (a plural msgid takes
its singular as the key), clears their fuzzy flag and compiles. Msgids that
are not in the sources are reported and skipped. Without a JSON file it prints
the zh_CN entries still untranslated.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "mediation" / "translations"
BIN = Path(sys.executable).parent
LOCK = Path("/tmp/mediation-translations.lock")


def _run(*args: str) -> None:
    subprocess.run([str(BIN / args[0]), *args[1:]], check=True, cwd=ROOT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file", nargs="?", help="JSON object: msgid -> translation")
    parser.add_argument("--update", action="store_true", help="extract and update only")
    args = parser.parse_args()
    wanted: dict[str, str] = {}
    if args.file:
        wanted = json.loads(Path(args.file).read_text(encoding="utf-8"))
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pot = TRANSLATIONS / "messages.pot"
        _run("pybabel", "-q", "extract", "-F", "babel.cfg", "-k", "_l", "-k",
             "lazy_gettext", "-o", str(pot), ".")
        _run("pybabel", "-q", "update", "-i", str(pot), "-d", str(TRANSLATIONS),
             "--no-fuzzy-matching")
        path = TRANSLATIONS / "zh_CN" / "LC_MESSAGES" / "messages.po"
        with path.open("rb") as handle:
            catalog = read_po(handle, locale="zh_CN")
        found = set()
        for message in catalog:
            if not message.id:
                continue
            key = message.id[0] if isinstance(message.id, tuple) else message.id
            if key in wanted:
                value = wanted[key]
                message.string = (value,) if isinstance(message.id, tuple) else value
                message.flags.discard("fuzzy")
                found.add(key)
        for key in sorted(set(wanted) - found):
            print(f"not in the sources (skipped): {key!r}", file=sys.stderr)
        with path.open("wb") as handle:
            write_po(handle, catalog, width=76)
        _run("pybabel", "-q", "compile", "-d", str(TRANSLATIONS))
        missing = [
            (m.id[0] if isinstance(m.id, tuple) else m.id)
            for m in catalog
            if m.id and not all(
                s for s in (m.string if isinstance(m.string, tuple) else (m.string,))
            )
        ]
    for key in missing:
        print(f"untranslated: {key!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
