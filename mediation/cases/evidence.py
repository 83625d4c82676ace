"""Evidence files: type sniffed from the content, stored once per SHA-256.

Files live at ``EVIDENCE_DIR/ab/cd/<sha256>``; the database row keeps the
original name only for display. The hash enters the case timeline.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from flask import current_app
from flask_babel import lazy_gettext as _l

from mediation.auth.models import User
from mediation.cases.models import Case, Evidence
from mediation.errors import BadRequest, TooLarge, UnsupportedType, ValidationError
from mediation.extensions import db

CHUNK = 1024 * 1024
#: Accepted types, as sniffed from the content.
ACCEPTED = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
    "video/mp4": ".mp4",
}


def sniff(head: bytes) -> str | None:
    """Return the content type of a file from its first bytes, or None.

    Only the accepted types are recognised; plain text must be valid UTF-8
    (or GB 18030) without control characters other than whitespace.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head[4:8] == b"ftyp" and head[8:12] in {
        b"isom",
        b"iso2",
        b"mp41",
        b"mp42",
        b"avc1",
        b"M4V ",
        b"dash",
        b"iso5",
        b"iso6",
    }:
        return "video/mp4"
    if head and _looks_like_text(head):
        return "text/plain"
    return None


def _looks_like_text(head: bytes) -> bool:
    sample = head[:4096]
    for encoding in ("utf-8", "gb18030"):
        try:
            text = sample.decode(encoding)
        except UnicodeDecodeError:
            # A multi-byte character cut at the end of the sample is still text.
            try:
                text = sample[:-3].decode(encoding)
            except UnicodeDecodeError:
                continue
        return all(ch.isprintable() or ch in "\r\n\t\f" for ch in text)
    return False


def size_label(size: int) -> str:
    """Return a byte count as ``20 MB``, ``512 KB`` or ``300 B``."""
    for unit, factor in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= factor:
            return f"{size / factor:.0f} {unit}"
    return f"{size} B"


def safe_name(filename: str | None) -> str:
    """Return a display name without any directory part.

    :raise BadRequest: for names that try to climb directories or are empty.
    """
    name = (filename or "").replace("\\", "/")
    if not name.strip() or name in (".", ".."):
        raise ValidationError(fields={"file": _l("The file has no name.")})
    if name.startswith("/") or ".." in name.split("/") or "\x00" in name:
        raise BadRequest(_l("The file name is not allowed."), code="bad_filename")
    base = name.rsplit("/", 1)[-1].strip()
    if not base:
        raise ValidationError(fields={"file": _l("The file has no name.")})
    return base[:255]


def evidence_path(sha256: str) -> Path:
    """Return where the bytes of a file with this hash are stored."""
    root = Path(current_app.config["EVIDENCE_DIR"])
    return root / sha256[:2] / sha256[2:4] / sha256


def case_bytes(case: Case) -> int:
    """Return the total size of the evidence already on a case."""
    return (
        db.session.scalar(
            db.select(db.func.coalesce(db.func.sum(Evidence.size), 0)).where(
                Evidence.case_id == case.id
            )
        )
        or 0
    )


def add_evidence(
    case: Case,
    stream: BinaryIO,
    filename: str | None,
    *,
    actor: User,
    relation: str,
    now: datetime,
) -> Evidence:
    """Store an uploaded file and attach it to the case (timeline included).

    :param stream: the upload, read in chunks (never whole into memory).
    :raise ValidationError: for an empty file or no name.
    :raise BadRequest: for a path-traversal name.
    :raise TooLarge: above the per-file or per-case limit.
    :raise UnsupportedType: when the content is not an accepted type.
    """
    from mediation.cases.services import record_event

    name = safe_name(filename)
    max_file = current_app.config["EVIDENCE_MAX_FILE_BYTES"]
    max_case = current_app.config["EVIDENCE_MAX_CASE_BYTES"]
    root = Path(current_app.config["EVIDENCE_DIR"])
    root.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    head = b""
    fd, tmp_name = tempfile.mkstemp(dir=root, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > max_file:
                    raise TooLarge(
                        _l("A file may be at most %(size)s.", size=size_label(max_file))
                    )
                if len(head) < 8192:
                    head += chunk[: 8192 - len(head)]
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise ValidationError(fields={"file": _l("The file is empty.")})
        content_type = sniff(head)
        if content_type is None:
            raise UnsupportedType(
                _l("Only JPG, PNG, WebP, PDF, plain text and MP4 files are accepted.")
            )
        if case_bytes(case) + size > max_case:
            raise TooLarge(
                _l(
                    "A case may hold at most %(size)s of evidence.",
                    size=size_label(max_case),
                )
            )
        sha = digest.hexdigest()
        target = evidence_path(sha)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            os.unlink(tmp_name)
        else:
            os.replace(tmp_name, target)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    evidence = Evidence(
        case_id=case.id,
        uploader_id=actor.id,
        sha256=sha,
        size=size,
        content_type=content_type,
        original_name=name,
        created_at=now,
    )
    db.session.add(evidence)
    db.session.flush()
    record_event(
        case,
        actor=actor,
        role=relation,
        action="evidence",
        from_status=case.status,
        data={
            "evidence_id": evidence.id,
            "sha256": sha,
            "size": size,
            "content_type": content_type,
            "name": name,
        },
        now=now,
    )
    return evidence


def download_name(evidence: Evidence) -> str:
    """Return the name a download is saved under (extension from the sniffed type)."""
    stem = evidence.original_name.rsplit(".", 1)[0] or "evidence"
    return stem + ACCEPTED.get(evidence.content_type, "")


def get_evidence(case: Case, evidence_id: int) -> Evidence:
    """Return an evidence row of ``case``.

    :raise NotFound: when it belongs to another case or does not exist.
    """
    from mediation.errors import NotFound

    evidence = db.session.get(Evidence, evidence_id)
    if evidence is None or evidence.case_id != case.id:
        raise NotFound()
    return evidence


def send_evidence(evidence: Evidence):
    """Return a download response: attachment, sniffed type, ``nosniff``.

    The caller has already checked that the user may see the case.
    """
    from flask import send_file

    from mediation.errors import NotFound

    path = evidence_path(evidence.sha256)
    if not path.exists():
        raise NotFound()
    response = send_file(
        path,
        mimetype=evidence.content_type,
        as_attachment=True,
        download_name=download_name(evidence),
        conditional=True,
        etag=evidence.sha256,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, max-age=0"
    return response
