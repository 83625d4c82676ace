"""Complaint text tagging: keyword rules that notice when a complaint's text points
to a hot-spot category other than the one the consumer chose.

The rule set is a TOML file (``mediation/analytics/data/tagging_rules.toml``, or
the ``TAGGING_RULES`` setting): per category, Chinese keywords matched on the
tokens jieba cuts the text into (every keyword is added to jieba's dictionary,
so it is cut as one token), English keywords and phrases matched as whole words
in any case, negative keywords that rule the category out, and a minimum number
of distinct keywords. A keyword right after a negation word (没有刷单, "not a
counterfeit") does not count.

On filing and on every amendment (``hooks``), :func:`flag_case` stores a
:class:`TextFlag` per suggested category; regulators confirm it (the category
is recorded as a :class:`CaseTag`; the complaint keeps the category it was
filed with) or dismiss it with a reason. A dismissed flag is not raised again
for the same text. Services flush, never commit.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import tomllib
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l

from mediation.analytics.audit import record_audit
from mediation.analytics.tagging_models import CaseTag, TextFlag
from mediation.auth.models import User
from mediation.cases.models import Case, Category
from mediation.errors import Conflict, NotFound, ValidationError
from mediation.extensions import db

logger = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "data"
#: The rule set shipped with the platform (``TAGGING_RULES`` overrides it).
DEFAULT_RULES = DATA_DIR / "tagging_rules.toml"
#: The labelled complaint texts: the demo seed files them, and
#: ``flask tagging-report`` measures the rules' precision and recall on them.
DEMO_SET = DATA_DIR / "tagging_demo.json"
#: Flag statuses; only ``pending`` flags wait for a regulator.
STATUSES = ("pending", "confirmed", "dismissed", "obsolete")
#: Longest reason a regulator may give for dismissing a flag.
REASON_MAX = 1000

_PUNCTUATION = re.compile(r"[\s,.;:!?，。；：！？、…()（）\[\]【】\"“”'‘’/]+")
_EN_WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")
_CLAUSE_END = re.compile(r"[,.;:!?，。；：！？\n]")


class RuleSetError(ValueError):
    """The rule set file cannot be used (it names the file and the problem)."""


# The rule set --------------------------------------------------------------------


@dataclass(frozen=True)
class CategoryRule:
    """The keywords of one hot-spot category."""

    category: str
    zh: tuple[str, ...]
    en: tuple[str, ...]
    negative_zh: tuple[str, ...] = ()
    negative_en: tuple[str, ...] = ()
    min_hits: int = 1


@dataclass(frozen=True)
class RuleSet:
    """A loaded rule set with its English patterns compiled."""

    path: str
    sha256: str
    version: str
    rules: tuple[CategoryRule, ...]
    negation_zh: frozenset[str]
    negation_en: frozenset[str]
    window: int
    #: keyword -> compiled whole-word pattern (English keywords and negatives).
    patterns: dict[str, re.Pattern[str]] = field(default_factory=dict, compare=False)

    @property
    def chinese_words(self) -> list[str]:
        """Every Chinese keyword (and negation word of two or more characters),
        for jieba's dictionary."""
        words: list[str] = []
        for rule in self.rules:
            words += [w for w in (*rule.zh, *rule.negative_zh) if w not in words]
        words += sorted(w for w in self.negation_zh if len(w) > 1 and w not in words)
        return words


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(v, str) and v.strip() for v in value
    ):
        raise RuleSetError(f"{where} must be a list of non-empty strings")
    return tuple(v.strip() for v in value)


def _english_pattern(phrase: str) -> re.Pattern[str]:
    """Compile a whole-word, any-case pattern of an English phrase.

    Spaces match any run of white space; the phrase must not touch a letter or
    digit on either side (Chinese characters around it are fine).
    """
    parts = [re.escape(p) for p in phrase.split()]
    body = r"\s+".join(parts)
    return re.compile(rf"(?<![A-Za-z0-9]){body}(?![A-Za-z0-9])", re.IGNORECASE)


def parse_rules(text: str, *, path: str = "<string>") -> RuleSet:
    """Parse and check a rule set written in TOML.

    :raise RuleSetError: for bad TOML, an unknown category, a category without
        keywords or a minimum below 1.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleSetError(f"{path}: not valid TOML: {exc}") from exc
    known = {c.value for c in Category}
    default_min = data.get("min_hits", 1)
    categories = data.get("categories")
    if not isinstance(categories, dict) or not categories:
        raise RuleSetError(f"{path}: no [categories.<code>] table")
    rules: list[CategoryRule] = []
    for code, entry in categories.items():
        where = f"{path}: categories.{code}"
        if code not in known:
            raise RuleSetError(f"{where}: unknown category (one of {sorted(known)})")
        if not isinstance(entry, dict):
            raise RuleSetError(f"{where} must be a table")
        unknown = set(entry) - {"zh", "en", "negative_zh", "negative_en", "min_hits"}
        if unknown:
            raise RuleSetError(f"{where}: unknown keys {sorted(unknown)}")
        min_hits = entry.get("min_hits", default_min)
        if not isinstance(min_hits, int) or isinstance(min_hits, bool) or min_hits < 1:
            raise RuleSetError(f"{where}.min_hits must be a whole number from 1")
        rule = CategoryRule(
            category=code,
            zh=_strings(entry.get("zh"), f"{where}.zh"),
            en=_strings(entry.get("en"), f"{where}.en"),
            negative_zh=_strings(entry.get("negative_zh"), f"{where}.negative_zh"),
            negative_en=_strings(entry.get("negative_en"), f"{where}.negative_en"),
            min_hits=min_hits,
        )
        if not rule.zh and not rule.en:
            raise RuleSetError(f"{where} has no keywords")
        rules.append(rule)
    negation = data.get("negation") or {}
    if not isinstance(negation, dict):
        raise RuleSetError(f"{path}: negation must be a table")
    window = negation.get("window", 2)
    if not isinstance(window, int) or isinstance(window, bool) or window < 0:
        raise RuleSetError(f"{path}: negation.window must be a whole number from 0")
    negation_en = _strings(negation.get("en"), f"{path}: negation.en")
    rule_set = RuleSet(
        path=path,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        version=str(data.get("version", "")),
        rules=tuple(rules),
        negation_zh=frozenset(_strings(negation.get("zh"), f"{path}: negation.zh")),
        negation_en=frozenset(w.lower() for w in negation_en),
        window=window,
    )
    for rule in rules:
        for phrase in (*rule.en, *rule.negative_en):
            rule_set.patterns.setdefault(phrase, _english_pattern(phrase))
    return rule_set


_cache_lock = threading.Lock()
_cache: dict[tuple[str, int, int], RuleSet] = {}


def load_rules(path: str | Path | None = None) -> RuleSet:
    """Load a rule set file (cached while the file stays the same).

    :param path: the TOML file; None: the shipped rule set.
    :raise RuleSetError: when the file cannot be read or is not a valid rule set.
    """
    target = Path(path) if path else DEFAULT_RULES
    try:
        stat = target.stat()
    except OSError as exc:
        raise RuleSetError(f"cannot read the tagging rules {target}: {exc}") from exc
    key = (str(target), stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    try:
        text = target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleSetError(f"cannot read the tagging rules {target}: {exc}") from exc
    rule_set = parse_rules(text, path=str(target))
    with _cache_lock:
        _cache[key] = rule_set
    return rule_set


def active_rules() -> RuleSet:
    """Return the running app's rule set (``TAGGING_RULES``, else the shipped one)."""
    return load_rules(current_app.config.get("TAGGING_RULES") or None)


# Segmentation --------------------------------------------------------------------

_jieba_lock = threading.Lock()
_tokenizer: Any = None
_added_words: set[str] = set()
#: A keyword's frequency in jieba's dictionary, at least: high enough that the
#: keyword stays one token beside common neighbours (它们都是刷单的).
MIN_WORD_FREQ = 2000


def tokenizer(words: Iterable[str] = ()) -> Any:
    """Return this process's jieba tokenizer with ``words`` in its dictionary.

    jieba loads its dictionary (shipped with the package, nothing is fetched)
    on first use, once per process, quietly; later calls only add new words.
    """
    global _tokenizer
    with _jieba_lock:
        if _tokenizer is None:
            with warnings.catch_warnings():
                # jieba 0.42 has regular expressions in plain strings: a fresh
                # interpreter without its bytecode warns while compiling them.
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", SyntaxWarning)
                import jieba

            jieba.setLogLevel(logging.WARNING)
            instance = jieba.Tokenizer()
            instance.initialize()
            _tokenizer = instance
        for word in words:
            if word not in _added_words:
                freq = max(_tokenizer.suggest_freq(word, False), MIN_WORD_FREQ)
                _tokenizer.add_word(word, freq=freq)
                _added_words.add(word)
        return _tokenizer


def segment(text: str, rules: RuleSet) -> list[tuple[str, int, int]]:
    """Cut ``text`` into jieba tokens ``(word, start, end)`` with the rules' words."""
    return list(tokenizer(rules.chinese_words).tokenize(text))


# Matching ------------------------------------------------------------------------


@dataclass
class CategoryMatch:
    """What the text says about one category."""

    category: str
    #: Distinct keywords that count, in the order first seen.
    keywords: list[str] = field(default_factory=list)
    #: Every counted match: ``{"keyword", "lang", "start", "end"}``.
    matches: list[dict[str, Any]] = field(default_factory=list)
    #: Keywords that matched but came right after a negation word.
    negated: list[str] = field(default_factory=list)
    #: Negative keywords found (the category is then ruled out).
    negatives: list[str] = field(default_factory=list)
    min_hits: int = 1

    @property
    def suggested(self) -> bool:
        return not self.negatives and len(self.keywords) >= self.min_hits


def _negated_zh(tokens: list[tuple[str, int, int]], index: int, rules: RuleSet) -> bool:
    """Say whether a negation word stands just before token ``index``.

    A negation word of two or more characters (没有, 不是) counts within
    ``window`` tokens of the same clause; a one-character one (不, 没) only
    right before the keyword: in 这不就是刷单吗 the 不 asks, it does not deny.
    """
    seen = 0
    for word, _start, _end in reversed(tokens[:index]):
        if _PUNCTUATION.fullmatch(word):
            return False
        if word in rules.negation_zh and (len(word) > 1 or seen == 0):
            return True
        seen += 1
        if seen >= rules.window:
            return False
    return False


def _negated_en(text: str, start: int, rules: RuleSet) -> bool:
    """Say whether a negation word is among the few words before ``start``."""
    clause = _CLAUSE_END.split(text[:start])[-1]
    words = [w.lower() for w in _EN_WORD.findall(clause)]
    before = words[-rules.window :] if rules.window else []
    return any(w in rules.negation_en or w.endswith("n't") for w in before)


def tag_text(text: str, rules: RuleSet) -> dict[str, CategoryMatch]:
    """Match the rule set against a text.

    :return: a :class:`CategoryMatch` per category with any match (see its
        ``suggested``); categories without a single match are left out.
    """
    tokens = segment(text, rules) if rules.chinese_words else []
    positions: dict[str, list[int]] = {}
    for index, (word, _start, _end) in enumerate(tokens):
        positions.setdefault(word, []).append(index)
    found: dict[str, CategoryMatch] = {}
    for rule in rules.rules:
        match = CategoryMatch(rule.category, min_hits=rule.min_hits)
        for keyword in rule.zh:
            for index in positions.get(keyword, ()):
                word, start, end = tokens[index]
                if _negated_zh(tokens, index, rules):
                    if keyword not in match.negated:
                        match.negated.append(keyword)
                    continue
                if keyword not in match.keywords:
                    match.keywords.append(keyword)
                match.matches.append(
                    {"keyword": keyword, "lang": "zh", "start": start, "end": end}
                )
        for phrase in rule.en:
            for hit in rules.patterns[phrase].finditer(text):
                if _negated_en(text, hit.start(), rules):
                    if phrase not in match.negated:
                        match.negated.append(phrase)
                    continue
                if phrase not in match.keywords:
                    match.keywords.append(phrase)
                match.matches.append(
                    {
                        "keyword": phrase,
                        "lang": "en",
                        "start": hit.start(),
                        "end": hit.end(),
                    }
                )
        match.negatives = [w for w in rule.negative_zh if w in text] + [
            p for p in rule.negative_en if rules.patterns[p].search(text)
        ]
        if match.keywords or match.negated or match.negatives:
            match.matches.sort(key=lambda m: (m["start"], m["end"]))
            found[rule.category] = match
    return found


def suggestions(text: str, chosen: str, rules: RuleSet) -> dict[str, CategoryMatch]:
    """Return the hot-spot categories the text points to, other than ``chosen``."""
    return {
        code: match
        for code, match in tag_text(text, rules).items()
        if match.suggested and code != chosen
    }


def highlight(text: str, matches: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    """Split ``text`` into ``(piece, is_match)`` for showing the matches marked.

    Overlapping or out-of-range matches are skipped; the pieces join up to the
    whole text (templates escape each piece).
    """
    pieces: list[tuple[str, bool]] = []
    position = 0
    for match in sorted(matches, key=lambda m: (m["start"], m["end"])):
        start, end = int(match["start"]), int(match["end"])
        if start < position or end > len(text) or start >= end:
            continue
        if start > position:
            pieces.append((text[position:start], False))
        pieces.append((text[start:end], True))
        position = end
    if position < len(text):
        pieces.append((text[position:], False))
    return pieces


def text_digest(text: str) -> str:
    """Return the SHA-256 of a complaint text (how "the same text" is decided)."""
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()


# Flags ---------------------------------------------------------------------------


def on_case_filed(case: Case, *, now: datetime) -> None:
    """Flag the complaint when its text points to another hot-spot category.

    A broken rule set (``TAGGING_RULES``) is logged, never a reason to refuse a
    complaint: the case is filed unflagged.
    """
    try:
        rules = active_rules()
    except RuleSetError:
        logger.exception("text tagging skipped", extra={"case_id": case.id})
        return
    flag_case(case, now=now, new=True, rules=rules)


def on_case_amended(case: Case, *, now: datetime) -> None:
    """Check the amended complaint again (its text or category may have changed)."""
    try:
        rules = active_rules()
    except RuleSetError:
        logger.exception("text tagging skipped", extra={"case_id": case.id})
        return
    flag_case(case, now=now, rules=rules)


def flag_case(
    case: Case, *, now: datetime, new: bool = False, rules: RuleSet | None = None
) -> list[TextFlag]:
    """Raise, update or retire the case's flags for its current text and category.

    - a suggested category gets a pending flag, unless a regulator confirmed it
      already, or dismissed it for this very text;
    - a pending flag whose category is no longer suggested (the text changed, or
      the consumer now chose that category) becomes ``obsolete``.

    :param new: the case was just filed (it has no flags yet: no query).
    :param rules: the rule set (default: the app's).
    :return: the pending flags of the case after the check.
    """
    rules = rules or active_rules()
    text = case.description or ""
    found = suggestions(text, case.category, rules)
    flags: list[TextFlag] = (
        []
        if new
        else list(
            db.session.scalars(
                db.select(TextFlag)
                .where(TextFlag.case_id == case.id)
                .order_by(TextFlag.id)
            )
        )
    )
    digest = text_digest(text)
    pending = {f.suggested_category: f for f in flags if f.status == "pending"}
    result: list[TextFlag] = []
    for code, match in found.items():
        if any(
            f.suggested_category == code
            and (
                f.status == "confirmed"
                or (f.status == "dismissed" and f.text_sha256 == digest)
            )
            for f in flags
        ):
            continue
        flag = pending.pop(code, None)
        if flag is None:
            flag = TextFlag(
                case_id=case.id,
                suggested_category=code,
                status="pending",
                created_at=now,
            )
            db.session.add(flag)
            logger.info(
                "text flag raised",
                extra={"case_id": case.id, "category": code},
            )
        flag.chosen_category = case.category
        flag.keywords = list(match.keywords)
        flag.matches = list(match.matches)
        flag.text = text
        flag.text_sha256 = digest
        flag.case_version = case.version
        flag.rules_sha256 = rules.sha256
        flag.updated_at = now
        result.append(flag)
    for flag in pending.values():
        flag.status = "obsolete"
        flag.reason = (
            "category_now_chosen"
            if flag.suggested_category == case.category
            else "text_changed"
        )
        flag.decided_at = now
        flag.updated_at = now
    if result or pending:
        db.session.flush()
    return result


def get_flag(flag_id: int, *, lock: bool = False) -> TextFlag:
    """Load a flag (locked until the commit when ``lock``).

    :raise NotFound: when there is no such flag.
    """
    query = db.select(TextFlag).where(TextFlag.id == flag_id)
    if lock:
        dialect = db.session.get_bind().dialect.name
        if dialect == "postgresql":
            query = query.with_for_update(of=TextFlag)
        elif dialect == "sqlite":
            # Take the write lock first, as permissions.lock_case does.
            db.session.execute(db.text("UPDATE text_flags SET id = id WHERE 0 = 1"))
        query = query.execution_options(populate_existing=True)
    flag = db.session.scalar(query)
    if flag is None:
        raise NotFound()
    return flag


def _require_pending(flag: TextFlag) -> None:
    if flag.status != "pending":
        raise Conflict(
            _l("This flag was already decided or no longer applies."),
            code="flag_decided",
        )


def confirm_flag(flag: TextFlag, *, actor: User, now: datetime) -> CaseTag:
    """Confirm that the case belongs to the flag's hot spot too.

    The case keeps its filed category; the confirmed category is recorded as a
    :class:`CaseTag` (statistics and the risk model read it).

    :raise Conflict: when the flag is not pending.
    """
    _require_pending(flag)
    flag.status = "confirmed"
    flag.decided_by_id = actor.id
    flag.decided_at = now
    flag.updated_at = now
    tag = db.session.scalar(
        db.select(CaseTag).where(
            CaseTag.case_id == flag.case_id,
            CaseTag.category == flag.suggested_category,
        )
    )
    if tag is None:
        tag = CaseTag(
            case_id=flag.case_id,
            category=flag.suggested_category,
            flag_id=flag.id,
            confirmed_by_id=actor.id,
            confirmed_at=now,
        )
        db.session.add(tag)
    record_audit(
        actor,
        "tagging.confirm",
        object_type="text_flag",
        object_id=flag.id,
        details={
            "case_id": flag.case_id,
            "category": flag.suggested_category,
            "chosen_category": flag.chosen_category,
            "keywords": flag.keywords,
        },
        now=now,
    )
    db.session.flush()
    return tag


def dismiss_flag(flag: TextFlag, *, actor: User, reason: str, now: datetime) -> None:
    """Dismiss a flag with a reason; it is not raised again for the same text.

    :raise ValidationError: without a reason, or with one that is too long.
    :raise Conflict: when the flag is not pending.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(fields={"reason": [_l("Give a reason for dismissing.")]})
    if len(reason) > REASON_MAX:
        raise ValidationError(
            fields={
                "reason": [
                    _l("At most %(max)d characters.", max=REASON_MAX),
                ]
            }
        )
    _require_pending(flag)
    flag.status = "dismissed"
    flag.reason = reason
    flag.decided_by_id = actor.id
    flag.decided_at = now
    flag.updated_at = now
    record_audit(
        actor,
        "tagging.dismiss",
        object_type="text_flag",
        object_id=flag.id,
        details={
            "case_id": flag.case_id,
            "category": flag.suggested_category,
            "reason": reason,
        },
        now=now,
    )
    db.session.flush()


def tags_of(case_ids: Iterable[int]) -> dict[int, list[str]]:
    """Return the confirmed hot-spot categories of these cases."""
    ids = list(case_ids)
    out: dict[int, list[str]] = {}
    if not ids:
        return out
    for case_id, category in db.session.execute(
        db.select(CaseTag.case_id, CaseTag.category)
        .where(CaseTag.case_id.in_(ids))
        .order_by(CaseTag.case_id, CaseTag.category)
    ):
        out.setdefault(case_id, []).append(category)
    return out
