"""Every example of every document type, in every variant: window, fonts, PDF/A, determinism."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pdfplumber
import pytest
from pypdf import PdfReader

from postroom.documents.catalogue import CATALOGUE, document_type
from postroom.renderer.engine import Variant
from postroom.renderer.service import Renderer
from postroom.settings import PROJECT_ROOT
from tests.conftest import EXAMPLES

MM = 72 / 25.4
ADDRESS_FIELD = (20 * MM, 105 * MM, 45 * MM, 90 * MM)  # Form B: x 20, y 45, 85 × 45 mm
WINDOW = (20 * MM, 110 * MM, 45 * MM, 90 * MM)  # DL window envelope: 90 × 45 mm
TIMESTAMP = datetime(2026, 11, 20, 12, tzinfo=UTC)
EXAMPLE_FILES = sorted(path.stem for path in EXAMPLES.glob("*.json"))
VARIANTS: tuple[Variant, ...] = ("print", "email", "archive")


@cache
def renderer() -> Renderer:
    return Renderer.for_folder(PROJECT_ROOT / "templates")


def body_of(example: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((EXAMPLES / f"{example}.json").read_text(encoding="utf-8"))
    return body


@cache
def rendered(example: str, variant: Variant) -> bytes:
    body = body_of(example)
    doc_type = document_type(body["type"])
    rendering = renderer().render(doc_type, doc_type.parse(body), [variant], timestamp=TIMESTAMP)
    return rendering.pdfs[variant].data


def test_every_example_has_its_type_in_the_catalogue() -> None:
    assert {body_of(example)["type"] for example in EXAMPLE_FILES} <= set(CATALOGUE)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("example", EXAMPLE_FILES)
def test_only_the_address_is_in_the_window(example: str, variant: Variant) -> None:
    recipient = body_of(example)["recipient"]
    if not recipient.get("street"):
        pytest.skip("no postal address: an internal notice that is never posted")
    with pdfplumber.open(io.BytesIO(rendered(example, variant))) as pdf:
        words = pdf.pages[0].extract_words(keep_blank_chars=False, use_text_flow=True)
    address = " ".join(
        str(recipient[key])
        for key in ("name", "attention", "street", "postcode", "city")
        if recipient.get(key)
    )

    def inside(word: dict[str, Any], box: tuple[float, float, float, float]) -> bool:
        return bool(
            box[0] <= word["x0"]
            and word["x1"] <= box[1]
            and box[2] <= word["top"]
            and word["bottom"] <= box[3]
        )

    in_window = [w for w in words if inside(w, WINDOW)]
    address_words = [w for w in in_window if w["text"] in address.split()]
    assert {w["text"] for w in address_words} >= set(recipient["name"].split()), (
        "the recipient's name is missing"
    )
    assert all(inside(w, ADDRESS_FIELD) for w in address_words)
    # Besides the address, only the small return-address line (the sender's name and address) may be there.
    return_line = words_of_return_line(example)
    strangers = [
        w["text"] for w in in_window if w["text"] not in address.split() and w["text"] not in return_line
    ]
    assert not strangers, f"{strangers} print inside the window"


def words_of_return_line(example: str) -> set[str]:
    seller = body_of(example)["data"]["seller"]
    return set(f"{seller['name']} · {seller['street']} · {seller['postcode']} {seller['city']}".split())


@pytest.mark.parametrize("example", EXAMPLE_FILES)
def test_fonts_are_embedded(example: str) -> None:
    reader = PdfReader(io.BytesIO(rendered(example, "email")))
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():  # type: ignore[index]
            font = font.get_object()
            descriptors = [font.get("/FontDescriptor")] + [
                child.get_object().get("/FontDescriptor") for child in font.get("/DescendantFonts", [])
            ]
            embedded = any(
                key in descriptor.get_object()
                for descriptor in descriptors
                if descriptor is not None
                for key in ("/FontFile", "/FontFile2", "/FontFile3")
            )
            assert embedded, f"{font.get('/BaseFont')} is not embedded"


@pytest.mark.parametrize("variant", ["archive", "email"])
@pytest.mark.parametrize("example", EXAMPLE_FILES)
def test_archive_and_email_variants_are_pdf_a_3b(example: str, variant: Variant) -> None:
    metadata = PdfReader(io.BytesIO(rendered(example, variant))).xmp_metadata
    assert metadata is not None
    xml = metadata.rdf_root.toxml()
    assert "<pdfaid:part>3</pdfaid:part>" in xml or 'pdfaid:part="3"' in xml
    assert "<pdfaid:conformance>B</pdfaid:conformance>" in xml or 'pdfaid:conformance="B"' in xml


@pytest.mark.parametrize("example", EXAMPLE_FILES)
def test_renders_are_byte_identical(example: str) -> None:
    body = body_of(example)
    doc_type = document_type(body["type"])
    fresh = Renderer.for_folder(PROJECT_ROOT / "templates")  # new compilers: no shared cache
    again = (
        fresh.render(doc_type, doc_type.parse(body), ["archive"], timestamp=TIMESTAMP).pdfs["archive"].data
    )
    assert again == rendered(example, "archive")
