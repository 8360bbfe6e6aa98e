"""Every example of every document type, in every variant: window, fonts, PDF/A, determinism."""

from __future__ import annotations

from typing import Any

import pytest

from postroom.documents.catalogue import CATALOGUE, document_type
from postroom.renderer.engine import Variant
from postroom.renderer.service import Renderer
from postroom.settings import PROJECT_ROOT
from tests.conftest import EXAMPLES, example
from tests.pdf_checks import (
    ADDRESS_FIELD,
    TIMESTAMP,
    WINDOW,
    assert_only_address_in_window,
    declares_pdf_a_3b,
    page_words,
    postal_address,
    render_example,
    return_line_of,
    unembedded_fonts,
    within,
)

EXAMPLE_FILES = sorted(path.stem for path in EXAMPLES.glob("*.json"))
VARIANTS: tuple[Variant, ...] = ("print", "email", "archive")


def test_every_example_has_its_type_in_the_catalogue() -> None:
    assert {example(name)["type"] for name in EXAMPLE_FILES} <= set(CATALOGUE)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_only_the_address_is_in_the_window(name: str, variant: Variant) -> None:
    body = example(name)
    recipient: dict[str, Any] = body["recipient"]
    if not recipient.get("street"):
        pytest.skip("no postal address: an internal notice that is never posted")
    pdf = render_example(body, variant)
    address = " ".join(postal_address(recipient)).split()
    return_line = return_line_of(body["data"]["seller"]).split()
    in_window = [word for word in page_words(pdf, text_flow=True) if within(word, WINDOW)]
    address_words = [word for word in in_window if word["text"] in address]
    assert {word["text"] for word in address_words} >= set(recipient["name"].split()), (
        "the recipient's name is missing"
    )
    assert all(within(word, ADDRESS_FIELD) for word in address_words)
    # Besides the address, only the small return-address line (the sender's name and address) may be there.
    strangers = [word["text"] for word in in_window if word["text"] not in address + return_line]
    assert not strangers, f"{strangers} print inside the window"
    # The same by text fragment: each address line whole, nothing else beginning inside the window.
    assert_only_address_in_window(pdf, postal_address(recipient), return_line_of(body["data"]["seller"]))


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_fonts_are_embedded(name: str) -> None:
    missing = unembedded_fonts(render_example(example(name), "email"))
    assert not missing, f"{missing} are not embedded"


@pytest.mark.parametrize("variant", ["archive", "email"])
@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_archive_and_email_variants_are_pdf_a_3b(name: str, variant: Variant) -> None:
    assert declares_pdf_a_3b(render_example(example(name), variant))


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_renders_are_byte_identical(name: str) -> None:
    body = example(name)
    doc_type = document_type(body["type"])
    fresh = Renderer.for_folder(PROJECT_ROOT / "templates")  # new compilers: no shared cache
    again = (
        fresh.render(doc_type, doc_type.parse(body), ["archive"], timestamp=TIMESTAMP).pdfs["archive"].data
    )
    assert again == render_example(body, "archive")
