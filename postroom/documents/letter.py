"""Template context shared by every letter: sender, recipient and letterhead data."""

from __future__ import annotations

from typing import Any

from postroom.documents.formatting import Formatter, address_lines, return_address
from postroom.documents.parties import Recipient, Seller


def seller_context(seller: Seller, formatter: Formatter) -> dict[str, Any]:
    """Letterhead and footer data (§35a GmbHG) of the issuing company."""
    register = ", ".join(part for part in (seller.register_court, seller.register_number) if part)
    return {
        "name": seller.name,
        "return_address": return_address(seller),
        "address": [seller.street, f"{seller.postcode} {seller.city}"],
        "registered_office": seller.registered_office or seller.city,
        "vat_id": seller.vat_id,
        "tax_number": seller.tax_number,
        "register": register or None,
        "managing_directors": ", ".join(seller.managing_directors) or None,
        "iban": formatter.iban(seller.iban) if seller.iban else None,
        "bic": seller.bic,
        "bank": seller.bank,
        "email": seller.email,
        "phone": seller.phone,
    }


def recipient_context(recipient: Recipient, seller: Seller, formatter: Formatter) -> dict[str, Any]:
    """Window address lines and the recipient's identifiers for the information block."""
    return {
        "address": address_lines(recipient, formatter, home_country=seller.country),
        "customer_number": recipient.customer_number,
        "vat_id": recipient.vat_id,
        "kind": recipient.kind,
    }
