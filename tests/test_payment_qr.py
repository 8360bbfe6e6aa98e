"""The payment QR code is segno's EPC QR code, module for module, with its mask found faster."""

from __future__ import annotations

import io
import random
import string
from decimal import Decimal

import segno.helpers

from postroom.documents.payment_qr import epc_qr, epc_qr_svg


def test_the_symbol_is_segnos_for_every_size_an_invoice_can_produce() -> None:
    """Random payees, texts and amounts from the shortest payload (version 5, with the remainder
    bits segno scores as a placeholder value) to the longest (version 12): same mask, same modules."""
    rng = random.Random(5)
    versions = set()
    for _ in range(150):
        name = "".join(rng.choice(string.ascii_letters + " &äöüß") for _ in range(rng.randint(1, 70)))
        text = "".join(
            rng.choice(string.ascii_letters + string.digits + " -/") for _ in range(rng.randint(1, 140))
        )
        name, text = name.strip() or "X", text.strip() or "R"
        iban = "DE" + "".join(rng.choice(string.digits) for _ in range(20))
        amount = Decimal(rng.randint(1, 99_999_999_999)) / 100
        bic = rng.choice([None, "COBADEFFXXX", "BYLADEM1"])
        expected = segno.helpers.make_epc_qr(name=name, iban=iban, amount=amount, text=text, bic=bic)
        made = epc_qr(name=name, iban=iban, amount=amount, text=text, bic=bic)
        assert (made.version, made.mask, made.matrix) == (expected.version, expected.mask, expected.matrix)
        versions.add(made.version)
    assert {5, 6, 12} <= versions


def test_the_svg_is_the_one_segno_writes() -> None:
    name, iban, bic, amount = (
        "Muster Immobilien GmbH",
        "DE89370400440532013000",
        "COBADEFFXXX",
        Decimal("6288.71"),
    )
    expected = io.BytesIO()
    segno.helpers.make_epc_qr(name=name, iban=iban, amount=amount, text="RE-2026-000088", bic=bic).save(
        expected, kind="svg", xmldecl=False, svgns=True, nl=False, border=0
    )
    made = epc_qr_svg(name=name, iban=iban, amount=amount, reference="RE-2026-000088", bic=bic)
    assert made == expected.getvalue().decode("ascii")
