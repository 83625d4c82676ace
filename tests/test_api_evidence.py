"""Evidence through the API: upload limits, sniffed types, downloads, the timeline."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

import pytest

# The fixtures of the case tests (frozen clock, users of every role) are reused.
from tests.test_api_cases import assert_error, frozen_fixture, world_fixture  # noqa: F401


def png_bytes() -> bytes:
    """Return a valid 1x1 PNG, built chunk by chunk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", pixels)
        + chunk(b"IEND", b"")
    )


JPEG = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    + b"\x00" * 64
)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
TEXT = "订单号 TB-2026-0001: receipt and chat log.\n".encode()
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 32
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56
ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 40
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 50


@pytest.fixture()
def case_id(make_case, world):
    return make_case(world.users["consumer"], world.merchant)


def upload(client, headers, case_id, data: bytes, name: str = "file.bin"):
    return client.post(
        f"/api/v1/cases/{case_id}/evidence",
        data={"file": (io.BytesIO(data), name)},
        headers=headers,
        content_type="multipart/form-data",
    )


@pytest.mark.parametrize(
    ("data", "name", "content_type"),
    [
        (png_bytes(), "photo.png", "image/png"),
        (JPEG, "photo.jpg", "image/jpeg"),
        (PDF, "invoice.pdf", "application/pdf"),
        (TEXT, "chat.txt", "text/plain"),
        (MP4, "unboxing.mp4", "video/mp4"),
        # The name does not decide the type: the content does.
        (png_bytes(), "photo.txt", "image/png"),
    ],
    ids=["png", "jpeg", "pdf", "text", "mp4", "png-named-txt"],
)
def test_accepted_files_are_stored_by_hash(
    client, world, case_id, data, name, content_type
):
    response = upload(client, world.h["consumer"], case_id, data, name)
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["size"] == len(data)
    assert body["content_type"] == content_type
    assert body["name"] == name
    assert response.headers["Location"].endswith(body["url"])

    case = client.get(f"/api/v1/cases/{case_id}", headers=world.h["staff"]).get_json()
    assert [e["id"] for e in case["evidence"]] == [body["id"]]
    event = case["timeline"][-1]
    assert event["action"] == "evidence"
    assert event["data"]["sha256"] == body["sha256"]
    assert event["actor"]["role"] == "consumer"

    with client.get(body["url"], headers=world.h["staff"]) as download:
        assert download.status_code == 200
        assert download.data == data
        assert download.mimetype == content_type
        assert download.headers["Content-Disposition"].startswith("attachment")
        assert download.headers["X-Content-Type-Options"] == "nosniff"


def test_merchant_staff_may_upload_too(client, world, case_id):
    response = upload(client, world.h["staff"], case_id, PDF, "refund-proof.pdf")
    assert response.status_code == 201
    case = client.get(
        f"/api/v1/cases/{case_id}", headers=world.h["consumer"]
    ).get_json()
    assert case["timeline"][-1]["actor"]["role"] == "merchant"


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (ELF, "tool"),
        (ZIP, "photos.zip"),
        (EXE, "setup.exe"),
        (b"\x00\x01\x02junk", "a.png"),
    ],
    ids=["elf", "zip", "exe", "binary-named-png"],
)
def test_other_types_are_refused_with_415(client, world, case_id, data, name):
    response = upload(client, world.h["consumer"], case_id, data, name)
    assert_error(response, 415, "unsupported_type")
    case = client.get(
        f"/api/v1/cases/{case_id}", headers=world.h["consumer"]
    ).get_json()
    assert case["evidence"] == []


def test_html_named_png_is_kept_as_inert_text(client, world, case_id):
    html = b"<html><script>alert(1)</script></html>"
    response = upload(client, world.h["consumer"], case_id, html, "cat.png")
    assert response.status_code == 201
    assert response.get_json()["content_type"] == "text/plain"
    with client.get(
        response.get_json()["url"], headers=world.h["consumer"]
    ) as download:
        assert download.mimetype == "text/plain"
        assert download.headers["X-Content-Type-Options"] == "nosniff"
        assert download.headers["Content-Disposition"].startswith("attachment")
        assert ".png" not in download.headers["Content-Disposition"]
        assert download.data == html


def test_oversize_file_is_refused_with_413(app, client, world, case_id):
    app.config["EVIDENCE_MAX_FILE_BYTES"] = 1000
    response = upload(client, world.h["consumer"], case_id, b"a" * 1001, "long.txt")
    assert_error(response, 413, "too_large")
    assert (
        upload(client, world.h["consumer"], case_id, b"a" * 1000, "ok.txt").status_code
        == 201
    )


def test_case_limit_is_refused_with_413(app, client, world, case_id):
    app.config["EVIDENCE_MAX_CASE_BYTES"] = 1500
    assert (
        upload(client, world.h["consumer"], case_id, b"a" * 1000, "1.txt").status_code
        == 201
    )
    response = upload(client, world.h["staff"], case_id, b"b" * 600, "2.txt")
    assert_error(response, 413, "too_large")
    assert (
        upload(client, world.h["staff"], case_id, b"b" * 500, "3.txt").status_code
        == 201
    )


def test_request_body_over_the_server_limit_is_413(app, client, world, case_id):
    app.config["MAX_CONTENT_LENGTH"] = 2000
    response = upload(client, world.h["consumer"], case_id, b"a" * 5000, "big.txt")
    assert_error(response, 413)


def test_empty_or_missing_file_is_422(client, world, case_id):
    error = assert_error(
        upload(client, world.h["consumer"], case_id, b"", "empty.txt"), 422
    )
    assert "file" in error["fields"]
    response = client.post(
        f"/api/v1/cases/{case_id}/evidence",
        data={"other": "x"},
        headers=world.h["consumer"],
        content_type="multipart/form-data",
    )
    assert "file" in assert_error(response, 422)["fields"]
    response = client.post(
        f"/api/v1/cases/{case_id}/evidence",
        json={"file": "x"},
        headers=world.h["consumer"],
    )
    assert_error(response, 422)


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "a/../../b.txt"])
def test_path_traversal_names_are_refused_with_400(client, world, case_id, name):
    response = upload(client, world.h["consumer"], case_id, TEXT, name)
    assert_error(response, 400, "bad_filename")


def test_a_plain_subdirectory_name_keeps_only_the_file_name(client, world, case_id):
    response = upload(client, world.h["consumer"], case_id, TEXT, "scans/receipt.txt")
    assert response.status_code == 201
    assert response.get_json()["name"] == "receipt.txt"


def test_who_may_upload(client, world, case_id):
    assert_error(
        upload(client, world.h["regulator"], case_id, TEXT, "r.txt"), 403, "forbidden"
    )
    for outsider in ("mediator", "arbitrator", "consumer2", "other_staff"):
        assert_error(upload(client, world.h[outsider], case_id, TEXT, "o.txt"), 404)
    assert_error(upload(client, {}, case_id, TEXT, "anon.txt"), 401)


def test_no_uploads_once_the_case_is_closed(client, world, case_id):
    client.post(
        f"/api/v1/cases/{case_id}/actions",
        json={"action": "withdraw", "reason": "Settled privately"},
        headers=world.h["consumer"],
    )
    assert_error(upload(client, world.h["consumer"], case_id, TEXT, "late.txt"), 403)


def test_downloads_are_for_those_who_see_the_case(client, world, case_id, make_case):
    body = upload(client, world.h["consumer"], case_id, PDF, "invoice.pdf").get_json()
    url = body["url"]
    with client.get(url, headers=world.h["regulator"]) as download:
        assert download.status_code == 200
    for outsider in ("consumer2", "other_staff", "mediator"):
        assert_error(client.get(url, headers=world.h[outsider]), 404)
    assert_error(client.get(url), 401)
    other_case = make_case(world.users["consumer"], world.merchant, order_ref="OTHER")
    response = client.get(
        f"/api/v1/cases/{other_case}/evidence/{body['id']}", headers=world.h["consumer"]
    )
    assert_error(response, 404)
    response = client.get(
        f"/api/v1/cases/{case_id}/evidence/999999", headers=world.h["consumer"]
    )
    assert_error(response, 404)


def test_same_content_twice_is_two_rows_one_file(app, client, world, case_id):
    one = upload(client, world.h["consumer"], case_id, PDF, "a.pdf").get_json()
    two = upload(client, world.h["staff"], case_id, PDF, "b.pdf").get_json()
    assert one["id"] != two["id"] and one["sha256"] == two["sha256"]
    stored = [p for p in Path(app.config["EVIDENCE_DIR"]).rglob("*") if p.is_file()]
    assert [p.name for p in stored] == [one["sha256"]]
