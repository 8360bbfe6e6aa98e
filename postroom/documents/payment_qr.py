"""EPC069-12 payment QR codes ("GiroCode"), as SVG for the templates (segno)."""

from __future__ import annotations

import io
from decimal import Decimal

import segno.helpers

EPC_MAX_AMOUNT = Decimal("999999999.99")


def epc_qr_svg(
    *, name: str, iban: str, amount: Decimal, reference: str, bic: str | None = None, currency: str = "EUR"
) -> str | None:
    """An SEPA credit-transfer QR code for ``amount`` to ``iban``, or ``None`` where EPC allows none.

    The standard covers euro amounts from 0.01 to 999,999,999.99; the unstructured
    remittance text carries ``reference`` (the invoice or reminder number).
    """
    if currency != "EUR" or not Decimal("0.01") <= amount <= EPC_MAX_AMOUNT:
        return None
    code = segno.helpers.make_epc_qr(name=name[:70], iban=iban, amount=amount, text=reference[:140], bic=bic)
    svg = io.BytesIO()
    code.save(svg, kind="svg", xmldecl=False, svgns=True, nl=False, border=0)
    return svg.getvalue().decode("ascii")
