"""Order bodies and bank files for the core's tests."""

from __future__ import annotations

import copy
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path
from string import Template
from typing import Any

DATA = Path(__file__).resolve().parent / "data"
SELLER_IBAN = "DE02120300000000202051"
BUYER_IBAN = "DE02500105170137075030"
AGENT_IBAN = "DE12500105170648489890"

ORDER: dict[str, Any] = {
    "order_id": "AUF-TEMPLATE",
    "property": {
        "kind": "apartment",
        "object_id": "OBJ-TEMPLATE",
        "description": "Eigentumswohnung Heidestraße 17, 51147 Köln",
    },
    "price": "399000.00",
    "contract_date": "2026-11-15",
    "commissioned_by": ["seller", "buyer"],
    "seller": {
        "reference": "K-SELLER",
        "kind": "consumer",
        "name": "Erika Mustermann",
        "street": "Heidestraße 17",
        "postcode": "51147",
        "city": "Köln",
        "email": "erika.mustermann@example.org",
        "iban": SELLER_IBAN,
    },
    "buyer": {
        "reference": "K-BUYER",
        "kind": "consumer",
        "name": "Max Käufer",
        "street": "Lindenallee 3",
        "postcode": "50968",
        "city": "Köln",
        "email": "max.kaeufer@example.org",
        "iban": BUYER_IBAN,
    },
    "seller_share": {"rate": "3.00", "amount": "11970.00"},
    "buyer_share": {"rate": "3.00", "amount": "11970.00"},
    "agents": [
        {
            "reference": "MA-TEMPLATE",
            "name": "Lena Makler",
            "street": "Ringstraße 1",
            "postcode": "50672",
            "city": "Köln",
            "email": "lena.makler@example.org",
            "iban": AGENT_IBAN,
            "tax_number": "217/5702/3345",
            "share": "40",
        }
    ],
    "contacts": {
        "submitter_email": "auftrag@partner.example",
        "agency_email": "buero@muster-immobilien.example",
    },
}


def order_body(**changes: Any) -> dict[str, Any]:
    """A fresh order on its own object, parties and agent (so runs never look like duplicates)."""
    run = uuid.uuid4().hex[:8].upper()
    body = copy.deepcopy(ORDER)
    body["order_id"] = f"AUF-{run}"
    body["property"]["object_id"] = f"OBJ-{run}"
    body["seller"]["reference"] = f"KS-{run}"
    body["buyer"]["reference"] = f"KB-{run}"
    body["agents"][0]["reference"] = f"MA-{run}"
    body.update(changes)
    return body


def camt053(invoice_a: tuple[str, Decimal], invoice_b: tuple[str, Decimal], booking: date) -> bytes:
    """A camt.053.001.02 statement paying two invoices (number, amount) from the tests/data template."""
    template = Template((DATA / "camt053_e2e.xml.tmpl").read_text(encoding="utf-8"))
    return template.substitute(
        MSG_ID=f"STMT-{uuid.uuid4().hex[:12].upper()}",
        BOOKING_DATE=booking.isoformat(),
        INVOICE_A=invoice_a[0],
        AMOUNT_A=f"{invoice_a[1]:.2f}",
        DEBTOR_IBAN_A=SELLER_IBAN,
        INVOICE_B=invoice_b[0],
        AMOUNT_B=f"{invoice_b[1]:.2f}",
        DEBTOR_IBAN_B=BUYER_IBAN,
        TOTAL=f"{invoice_a[1] + invoice_b[1]:.2f}",
    ).encode()
