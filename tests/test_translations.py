"""The Simplified Chinese catalogue: complete, current, consistent, and loaded.

* every msgid of ``zh_CN`` has a translation and none is fuzzy;
* every string marked in the sources (extracted here, in-process, with the
  mapping of ``babel.cfg`` and the keywords of ``make messages``) is in ``zh_CN``;
* each translation keeps the placeholders of its msgid;
* a real page comes out in Chinese or English as asked. The catalogues are
  compiled into a temporary directory for that test, so stale ``.mo`` files in
  the checkout cannot make it pass.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from mediation import create_app

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "mediation" / "translations"
LOCALES = ("zh_CN", "en")
#: The keywords of ``make messages`` (``pybabel extract -k _l -k lazy_gettext``).
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}

#: ``%(name)s``, ``%s``, ``%%`` — printf-style conversions.
PERCENT = re.compile(
    r"%(?:\((?P<name>[^)]*)\))?[#0 +-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?"
    r"(?P<conv>[diouxXeEfFgGcrsa%])"
)
#: ``{name}``, ``{0}``, ``{}``, ``{name!r:>10}`` — str.format fields.
BRACE = re.compile(r"(?<!\{)\{(?P<field>\w*)(?:![rsa])?(?::[^{}]*)?\}(?!\})")
#: ``%(name)`` alone, for messages that are not python-format.
NAMED = re.compile(r"%\((\w+)\)")


def _po_path(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"


def _read(locale: str) -> Catalog:
    with _po_path(locale).open("rb") as handle:
        return read_po(handle, locale=locale)


@pytest.fixture(scope="module")
def zh() -> Catalog:
    return _read("zh_CN")


def _key(message: Message) -> tuple[str | None, str]:
    """Identify a message as gettext does: its context and its (singular) msgid."""
    msgid = message.id[0] if isinstance(message.id, tuple) else message.id
    return message.context, msgid


def _name(message: Message) -> str:
    where = ", ".join(f"{path}:{line}" for path, line in message.locations[:2])
    return f"{_key(message)[1]!r} ({where or 'no location'})"


def _strings(message: Message) -> list[str]:
    if isinstance(message.string, tuple):
        return list(message.string)
    return [message.string]


def _entries(catalog: Catalog) -> list[Message]:
    return [m for m in catalog if m.id]


def test_every_zh_message_is_translated_and_none_is_fuzzy(zh):
    entries = _entries(zh)
    assert entries, "the zh_CN catalogue is empty"
    untranslated = [
        _name(m) for m in entries if not all(s and s.strip() for s in _strings(m))
    ]
    fuzzy = [_name(m) for m in entries if m.fuzzy]
    assert not untranslated, "untranslated in zh_CN:\n" + "\n".join(untranslated)
    assert not fuzzy, "fuzzy in zh_CN:\n" + "\n".join(fuzzy)


def test_zh_has_one_plural_form(zh):
    assert zh.num_plurals == 1
    wrong = [_name(m) for m in _entries(zh) if m.pluralizable and len(m.string) != 1]
    assert not wrong, "plural entries need exactly msgstr[0]:\n" + "\n".join(wrong)


def _extract() -> dict[tuple[str | None, str], list[str]]:
    """Extract the marked strings of the sources, as ``make messages`` does."""
    with (ROOT / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found: dict[tuple[str | None, str], list[str]] = {}
    for path, lineno, message, _comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS, strip_comment_tags=True
    ):
        msgid = message[0] if isinstance(message, (list, tuple)) else message
        if msgid:
            found.setdefault((context, msgid), []).append(f"{path}:{lineno}")
    return found


def test_every_marked_string_of_the_sources_is_in_zh(zh):
    extracted = _extract()
    assert len(extracted) > 100, "the extraction found almost nothing: check babel.cfg"
    known = {_key(m) for m in _entries(zh)}
    missing = sorted(
        f"{msgid!r} ({', '.join(where[:2])})"
        for (context, msgid), where in extracted.items()
        if (context, msgid) not in known
    )
    assert not missing, (
        "marked in the sources but not in the zh_CN catalogue "
        "(run `make messages` and translate):\n" + "\n".join(missing)
    )


def _placeholders(text: str) -> tuple[Counter, set[str]]:
    percent = Counter(
        (m.group("name"), m.group("conv"))
        for m in PERCENT.finditer(text)
        if m.group("conv") != "%"
    )
    braces = {m.group("field") for m in BRACE.finditer(text)}
    return percent, braces


def test_translations_keep_the_placeholders(zh):
    wrong = []
    for message in _entries(zh):
        # One plural form in Chinese: msgstr[0] stands for every count, so it
        # needs the placeholders of the plural msgid.
        source = message.id[1] if isinstance(message.id, tuple) else message.id
        source_percent, source_braces = _placeholders(source)
        for string in _strings(message):
            percent, braces = _placeholders(string)
            if "python-format" in message.flags:
                if percent != source_percent:
                    found, wanted = sorted(percent), sorted(source_percent)
                    wrong.append(f"{_name(message)}: {found} != {wanted}")
            elif set(NAMED.findall(string)) != set(NAMED.findall(source)):
                wrong.append(f"{_name(message)}: %(name) placeholders differ")
            if braces != source_braces:
                wrong.append(
                    f"{_name(message)}: {sorted(braces)} != {sorted(source_braces)}"
                )
    assert not wrong, "placeholders differ:\n" + "\n".join(wrong)


def test_babel_checkers_find_nothing(zh):
    """What ``pybabel compile`` checks (python-format, plural counts)."""
    problems = [
        f"{_name(message)}: {'; '.join(str(e) for e in errors)}"
        for message, errors in zh.check()
        if errors
    ]
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Path:
    """The catalogues of the checkout, freshly compiled into a temporary tree."""
    target = tmp_path_factory.mktemp("translations")
    for locale in LOCALES:
        catalog = _read(locale)
        folder = target / locale / "LC_MESSAGES"
        folder.mkdir(parents=True)
        with (folder / "messages.mo").open("wb") as handle:
            write_mo(handle, catalog)
    return target


def _fresh_app(app, compiled: Path):
    return create_app(
        {
            **app.config,
            "BABEL_DEFAULT_LOCALE": "zh_CN",
            "BABEL_TRANSLATION_DIRECTORIES": str(compiled),
        }
    )


@pytest.fixture()
def fresh_client(app, compiled):
    """A client of the test app that reads the freshly compiled catalogues."""
    return _fresh_app(app, compiled).test_client()


def test_login_page_comes_out_in_chinese(fresh_client):
    html = fresh_client.get("/login?lang=zh_CN").get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    assert "登录" in html
    assert "注册" in html
    assert "Sign in" not in html


def test_login_page_comes_out_in_english(fresh_client):
    html = fresh_client.get("/login?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "Sign in" in html
    assert "登录" not in html


def test_without_a_choice_chinese_is_the_default_and_the_browser_counts(fresh_client):
    assert "登录" in fresh_client.get("/login").get_data(as_text=True)
    english = fresh_client.get("/login", headers={"Accept-Language": "en-US,en"})
    assert "Sign in" in english.get_data(as_text=True)


def test_lazy_labels_follow_the_locale(app, compiled):
    """The label tables (lazy strings) translate at use, in the request's locale."""
    from mediation import labels

    fresh = _fresh_app(app, compiled)
    with fresh.test_request_context("/?lang=zh_CN"):
        assert str(labels.STATUS["in_mediation"]) == "调解中"
        assert str(labels.CATEGORY["counterfeit"]) == "假冒伪劣"
    with fresh.test_request_context("/?lang=en"):
        assert str(labels.STATUS["in_mediation"]) == "In mediation"
