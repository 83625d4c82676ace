"""The award as a printable page and as a PDF.

Both print ``award.content`` (exactly what was hashed) and ``award.sha256``
(the hash the ``issue_award`` / ``correct_award`` timeline event carries), so a
reader can recompute the hash from what they read. The PDF is made by
WeasyPrint from the same template, with the Noto CJK fonts embedded
(``fonts-noto-cjk``) and no resource fetched from anywhere.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from flask import Response, current_app, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup

from mediation import clock, labels
from mediation.arbitration import bp
from mediation.arbitration.models import Award
from mediation.arbitration.services import award_versions, is_final
from mediation.auth.models import User
from mediation.auth.permissions import get_case_for
from mediation.cases.models import Case
from mediation.cases.views import signed_in
from mediation.errors import BadRequest, NotFound, PermissionDenied

logger = logging.getLogger(__name__)

#: Path ids stop at PostgreSQL's ``integer``: larger ones are simply not found.
CASE = "<int(max=2147483647):case_id>"
#: The stylesheet of the award document (page, print and PDF).
AWARD_CSS = "css/award.css"
#: Relations to a case that may read its award (the arbitrator only when
#: assigned; a platform only when it acts as the merchant side).
AWARD_READERS = frozenset(
    {"consumer", "merchant", "platform", "arbitrator", "regulator"}
)
#: Stand-ins for the page counters inside the translated "Page X of Y".
_PAGE, _PAGES = "\ue000", "\ue001"
_PAGE_TOKENS = f"([{_PAGE}{_PAGES}])"


# Access and lookup ----------------------------------------------------------------


def may_read_award(user: User, case: Case, relation: str | None) -> bool:
    """Say whether ``user`` (with ``relation`` to ``case``) may read its award.

    The parties (the consumer; the shop's staff; a platform's staff when the
    platform is the merchant side, i.e. the shop is not registered), the
    arbitrator assigned to the case and regulators. Not the mediator, not an
    arbitrator who merely sees the case in the queue.
    """
    if relation not in AWARD_READERS:
        return False
    if relation == "arbitrator":
        return case.arbitrator_id == user.id
    if relation == "platform":
        return case.merchant_id is None
    return True


def get_case_with_award_for(user: User, case_id: int) -> Case:
    """Load a case whose award ``user`` may read.

    :raise NotFound: when the case does not exist or the user has no relation.
    :raise PermissionDenied: when the user sees the case but not its award.
    """
    case, relation = get_case_for(user, case_id)
    if not may_read_award(user, case, relation):
        raise PermissionDenied(
            _("Only the parties, the arbitrator and regulators may read the award.")
        )
    return case


def version_arg() -> int | None:
    """Return the ``version`` query argument (None when absent: the current one).

    :raise BadRequest: when it is not a positive whole number.
    """
    raw = request.args.get("version", "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 10_000:
        raise BadRequest(
            _("version must be a positive whole number."), code="bad_version"
        )
    return int(raw)


def find_award(case: Case, version: int | None = None) -> Award:
    """Return the award of ``case`` in ``version`` (the current one when None).

    :raise NotFound: when the case has no award, or no such version.
    """
    versions = award_versions(case)
    if not versions:
        raise NotFound(_("This case has no award yet."), code="no_award")
    if version is None:
        return versions[-1]
    for award in versions:
        if award.version == version:
            return award
    raise NotFound(
        _("The award has no version %(number)d.", number=version),
        code="no_award_version",
    )


# Rendering ------------------------------------------------------------------------


def render_award_html(case: Case, award: Award, *, printable: bool = True) -> str:
    """Render the award document.

    :param printable: True for a stand-alone document with its styles inline
        (what the PDF is made from); False for the page in the site's layout,
        with links to the other versions and the PDF (hidden when printed).
    """
    content = award.content or {}
    versions = award_versions(case)
    current = versions[-1] if versions else award
    context: dict[str, Any] = {
        "case": case,
        "award": award,
        "content": content,
        "printable": printable,
        "layout": "arbitration/_document.html" if printable else "base.html",
        "decision_labels": labels.DECISION,
        "order_labels": labels.ORDER_TYPE,
        "corrected_version": _corrected_version(content),
        "versions": versions,
        "is_current": award.version == current.version,
        "final": award.version == current.version and is_final(case, clock.now_utc()),
        "html_lang": _html_lang(),
    }
    if printable:
        context["document_css"] = Markup(_css_for_html(document_css(content, award)))
    return render_template("arbitration/award.html", **context)


def render_award_pdf(case: Case, award: Award) -> bytes:
    """Render the award as a PDF (A4, fonts embedded, page X of Y in the footer).

    Nothing is fetched while rendering: the styles are inline, the fonts come
    from the system (``fonts-noto-cjk``) and every URL is refused.
    """
    # Imported here: loading Pango takes a while, and only the PDF needs it.
    from weasyprint import HTML

    html = render_award_html(case, award, printable=True)
    content = award.content or {}
    document = HTML(string=html, url_fetcher=_refuse_fetches()).render()
    document.metadata.title = f"{_('Arbitral award')} {content.get('reference', '')}"
    document.metadata.keywords = [f"sha256:{award.sha256}"]
    return document.write_pdf()


def pdf_response(case: Case, award: Award) -> Response:
    """Answer with the award's PDF as a download named after the case."""
    response = Response(render_award_pdf(case, award), mimetype="application/pdf")
    name = f"{case.reference}-award-v{award.version}.pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def document_css(content: dict[str, Any], award: Award) -> str:
    """Return the document's stylesheet plus the PDF page rules.

    The page footer names the case and the first 16 characters of the hash on
    every page, with "page X of Y".
    """
    base = (Path(current_app.static_folder) / AWARD_CSS).read_text(encoding="utf-8")
    page_of = _("Page %(page)s of %(pages)s", page=_PAGE, pages=_PAGES)
    counter = " ".join(
        _page_part(part) for part in re.split(_PAGE_TOKENS, page_of) if part
    )
    left = f"{content.get('reference', '')} · SHA-256 {award.sha256[:16]}"
    return (
        f"{base}\n"
        "@page {\n"
        "  size: A4;\n"
        "  margin: 22mm 20mm 24mm 22mm;\n"
        f"  @bottom-left {{ content: {_css_string(left)}; }}\n"
        f"  @bottom-right {{ content: {counter}; }}\n"
        "}\n"
    )


def _page_part(part: str) -> str:
    """Turn a piece of the translated "Page X of Y" into a CSS ``content`` value."""
    if part == _PAGE:
        return "counter(page)"
    if part == _PAGES:
        return "counter(pages)"
    return _css_string(part)


def _css_string(text: str) -> str:
    """Quote ``text`` as a CSS string (safe inside a ``<style>`` element too)."""
    out = []
    for char in text:
        if char in ('"', "\\", "<", ">", "&") or ord(char) < 0x20:
            out.append(f"\\{ord(char):x} ")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _css_for_html(css: str) -> str:
    """Keep a stylesheet from closing its ``<style>`` element early."""
    return css.replace("</", "<\\/")


def _corrected_version(content: dict[str, Any]) -> int | None:
    """Return the version this one corrects, or None for the award as issued."""
    version = content.get("version")
    if content.get("corrects") and isinstance(version, int) and version > 1:
        return version - 1
    return None


def _html_lang() -> str:
    locale = get_locale()
    return "en" if locale is not None and locale.language == "en" else "zh-CN"


def _refuse_fetches():
    """Return a WeasyPrint URL fetcher that fetches nothing but ``data:`` URLs."""
    from weasyprint.urls import URLFetcher

    class NoNetwork(URLFetcher):
        def fetch(self, url: str, headers: Any = None):
            if not url.lower().startswith("data:"):
                logger.warning("award PDF: refused to fetch %s", url[:200])
                raise ValueError(f"external resources are not loaded: {url[:200]}")
            return super().fetch(url, headers)

    return NoNetwork(allowed_protocols=("data",), allow_redirects=False)


# Routes ---------------------------------------------------------------------------


@bp.get(f"/cases/{CASE}/award")
@signed_in
def award_page(case_id: int):
    """The award as a printable page (``?version=N`` for an earlier version)."""
    case = get_case_with_award_for(current_user._get_current_object(), case_id)
    return render_award_html(case, find_award(case, version_arg()), printable=False)


@bp.get(f"/cases/{CASE}/award.pdf")
@signed_in
def award_pdf(case_id: int):
    """The award as a PDF download (``?version=N`` for an earlier version)."""
    case = get_case_with_award_for(current_user._get_current_object(), case_id)
    return pdf_response(case, find_award(case, version_arg()))
