"""Reading camt.053 statements and camt.054 notifications (:mod:`postroom.core.camt`).

Pure unit tests over the messages in ``tests/data``: versions 001.02 and 001.08, batch
bookings, returned direct debits, idempotency keys, and refusals that name the line but
never the payer.
"""

from __future__ import annotations

import html
import re
import string
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from stdnum import iban as iban_number
from stdnum import iso11649

from postroom.core.camt import (
    BankEntry,
    BankMessage,
    CamtError,
    EntryTransaction,
    parse_bank_message,
)

DATA = Path(__file__).resolve().parent / "data"
OWN_IBAN = "DE89370400440532013000"
CET = timezone(timedelta(hours=1))
INVOICE_NUMBER = re.compile(r"RE-\d{4}-\d{6}")
D = Decimal


def text_of(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def parse(name: str) -> BankMessage:
    return parse_bank_message((DATA / name).read_bytes())


def entries(message: BankMessage) -> list[BankEntry]:
    return [entry for report in message.reports for entry in report.entries]


def transactions(message: BankMessage) -> list[EntryTransaction]:
    return [tx for entry in entries(message) for tx in entry.transactions]


def mutated(name: str, old: str, new: str) -> bytes:
    """The fixture ``name`` with its one occurrence of ``old`` replaced by ``new``."""
    text = text_of(name)
    assert text.count(old) == 1, old
    return text.replace(old, new).encode()


def mutated_first(name: str, old: str, new: str) -> bytes:
    """The fixture ``name`` with the first occurrence of ``old`` replaced by ``new``."""
    text = text_of(name)
    assert old in text, old
    return text.replace(old, new, 1).encode()


def line_of(name: str, needle: str) -> int:
    """The line of ``name`` on which the one occurrence of ``needle`` starts."""
    text = text_of(name)
    assert text.count(needle) == 1, needle
    return text[: text.index(needle)].count("\n") + 1


def personal_data(name: str) -> list[str]:
    """Names and IBANs of the parties in fixture ``name``: no error message may repeat them."""
    text = text_of(name)
    found = re.findall(r"<Nm>([^<]+)</Nm>", text) + re.findall(r"<IBAN>([^<]+)</IBAN>", text)
    return sorted({html.unescape(value) for value in found})


def camt_error(data: bytes) -> str:
    with pytest.raises(CamtError) as raised:
        parse_bank_message(data)
    return str(raised.value)


# camt.053.001.02 ----------------------------------------------------------------------------


def test_v02_statement_header_and_account() -> None:
    message = parse("camt053_v02.xml")
    assert (message.kind, message.version) == ("camt.053", "001.02")
    assert message.message_id == "053D2026112722051300000231"
    assert message.created_at == datetime(2026, 11, 27, 22, 5, 13, tzinfo=CET)
    [report] = message.reports
    assert report.id == "0532013000-2026-231"
    assert report.account_iban == OWN_IBAN
    assert report.currency == "EUR"
    assert report.created_at == datetime(2026, 11, 27, 21, 5, 13, tzinfo=UTC)
    assert len(report.entries) == 5
    assert all(entry.booked and entry.currency == "EUR" for entry in report.entries)
    assert [entry.credit for entry in report.entries] == [True, True, True, True, False]
    credits = sum((entry.amount for entry in report.entries if entry.credit), D(0))
    assert credits == D("17444.00")  # TxsSummry/TtlCdtNtries/Sum


def test_v02_credit_naming_the_invoice() -> None:
    entry = entries(parse("camt053_v02.xml"))[0]
    assert isinstance(entry.amount, Decimal)
    assert entry.amount == D("14458.50")
    assert entry.credit
    assert not entry.reversal
    assert not entry.is_direct_debit_return
    assert entry.booking_date == entry.value_date == date(2026, 11, 27)
    assert entry.entry_ref is None
    assert entry.account_servicer_ref == "2026112700004711"
    assert (entry.domain, entry.family, entry.subfamily) == ("PMNT", "RCDT", "ESCT")
    assert entry.proprietary_code == "NTRF+166+00931"
    [tx] = entry.transactions
    assert isinstance(tx.amount, Decimal)
    assert (tx.amount, tx.currency) == (D("14458.50"), "EUR")
    assert tx.remittance == ("RE-2026-000101 Courtage",)
    assert tx.end_to_end_id is None  # NOTPROVIDED
    assert tx.account_servicer_ref is None  # only the entry has one
    assert tx.creditor_reference is None
    assert tx.counterparty_name == "Hans-Peter Vogel"
    assert tx.counterparty_iban == "DE16500105175419260315"
    assert iban_number.is_valid(tx.counterparty_iban)
    assert (tx.return_reason, tx.charges, tx.mandate_id) == (None, None, None)
    assert tx.key == f"{OWN_IBAN}:2026112700004711"  # the entry's AcctSvcrRef: its only transaction


def test_v02_credit_with_rf_creditor_reference_and_no_invoice_number() -> None:
    [tx] = entries(parse("camt053_v02.xml"))[1].transactions
    assert tx.amount == D("1785.00")
    assert tx.creditor_reference == "RF042026000103"
    assert iso11649.is_valid(tx.creditor_reference)
    assert tx.remittance == ()
    assert tx.end_to_end_id == "GLS-20261126-88412"
    assert tx.counterparty_iban == "DE69430609674012345600"


def test_v02_credit_with_unrelated_text() -> None:
    [tx] = entries(parse("camt053_v02.xml"))[2].transactions
    assert tx.amount == D("850.00")
    assert tx.remittance == ("Miete November",)
    assert not any(INVOICE_NUMBER.search(line) for line in tx.remittance)
    assert tx.creditor_reference is None
    assert tx.counterparty_name == "Thomas Berger"


def test_v02_batch_entry_is_split_into_its_transactions() -> None:
    entry = entries(parse("camt053_v02.xml"))[3]
    assert entry.amount == D("350.50")
    first, second = entry.transactions
    assert (first.amount, second.amount) == (D("100.00"), D("250.50"))
    assert first.amount + second.amount == entry.amount
    assert (first.account_servicer_ref, second.account_servicer_ref) == (
        "2026112700004714-1",
        "2026112700004714-2",
    )
    assert first.key == f"{OWN_IBAN}:2026112700004714-1"
    assert second.key == f"{OWN_IBAN}:2026112700004714-2"
    assert first.remittance == ("RE-2026-000104 Exposé-Erstellung",)
    assert second.remittance == ("RE-2026-000105 Nebenkosten", "Objekt Lindenallee 4")
    assert (first.end_to_end_id, second.end_to_end_id) == ("E2E-RE-2026-000104", None)
    assert first.counterparty_name == "Aylin Özdemir"
    assert second.counterparty_iban == "DE86760260002190473800"


def test_v02_returned_direct_debit() -> None:
    entry = entries(parse("camt053_v02.xml"))[4]
    assert not entry.credit
    assert entry.amount == D("122.00")
    assert (entry.domain, entry.family, entry.subfamily) == ("PMNT", "RDDT", "UPDD")
    assert entry.is_direct_debit_return
    [tx] = entry.transactions
    assert tx.return_reason == "MD06"
    assert tx.charges == D("3.00")
    assert tx.amount == D("122.00")  # AmtDtls/TxAmt: the collection of 119.00 and the fee
    assert tx.end_to_end_id == "LS-2026-11-000098"  # of the original collection
    assert tx.mandate_id == "MNDT-K100311"
    assert tx.remittance == ("RE-2026-000098 Verwaltungspauschale November",)
    # The parties keep their roles of the collection: the counterparty is the debtor, not
    # the creditor (that is the account's owner).
    assert tx.counterparty_name == "Sabine Krüger"
    assert tx.counterparty_iban == "DE14660501010108224466"


# camt.053.001.08 ----------------------------------------------------------------------------


def test_v08_statement_shapes() -> None:
    message = parse("camt053_v08.xml")
    assert (message.kind, message.version) == ("camt.053", "001.08")
    [report] = message.reports
    assert report.account_iban == OWN_IBAN
    assert len(report.entries) == 4
    assert all(entry.booked for entry in report.entries)  # Sts/Cd
    invoice, reference, returned, _fee = report.entries

    assert invoice.entry_ref == "0000000001"
    [tx] = invoice.transactions
    assert (tx.amount, tx.currency) == (D("5950.00"), "EUR")  # TxDtls/Amt
    assert tx.remittance == ("RE-2026-000117 Courtage Mietvertrag",)
    assert tx.counterparty_name == "Lena Hoffmann"  # RltdPties/Dbtr/Pty/Nm
    assert tx.counterparty_iban == "DE30260500010050612200"
    assert tx.account_servicer_ref == "2026113000471102"

    assert reference.booking_date == date(2026, 11, 30)  # BookgDt/DtTm
    [tx] = reference.transactions
    assert tx.amount == D("1190.00")
    assert tx.creditor_reference == "RF842026000118"
    assert iso11649.is_valid(tx.creditor_reference)
    assert tx.remittance == ()
    assert tx.counterparty_name == "Brandt & Söhne KG"

    assert not returned.credit
    assert (returned.domain, returned.family, returned.subfamily) == ("PMNT", "IDDT", "UPDD")
    assert returned.is_direct_debit_return
    [tx] = returned.transactions
    assert tx.return_reason == "AC04"
    assert tx.charges == D("4.50")  # Chrgs/Rcrd: 3.00 + 1.50
    assert tx.amount == D("64.00")
    assert tx.counterparty_name == "Markus Weber"
    assert tx.counterparty_iban == "DE75120300001020304050"


def test_v08_entry_without_transaction_details_carries_one_transaction() -> None:
    fee = entries(parse("camt053_v08.xml"))[3]
    assert not fee.credit
    assert not fee.is_direct_debit_return
    assert (fee.domain, fee.family, fee.subfamily) == ("ACMT", "MDOP", "CHRG")
    [tx] = fee.transactions
    assert (tx.amount, tx.currency) == (D("12.90"), "EUR")
    assert (tx.counterparty_name, tx.counterparty_iban, tx.remittance) == (None, None, ())
    assert tx.key == f"{OWN_IBAN}:2026113000479001"


# camt.054 -----------------------------------------------------------------------------------


def test_v02_notification_without_bank_reference_gets_a_hashed_key() -> None:
    message = parse("camt054_v02.xml")
    assert (message.kind, message.version) == ("camt.054", "001.02")
    assert message.created_at == datetime(2026, 11, 27, 14, 32, 18, tzinfo=UTC)  # no offset: UTC
    [report] = message.reports
    assert report.id == "0532013000-N-2026-087"
    [entry] = report.entries
    assert entry.credit
    assert entry.booked
    assert entry.booking_date == date(2026, 11, 27)  # BookgDt/DtTm
    assert entry.entry_ref == "0000000017"
    assert entry.account_servicer_ref is None
    [tx] = entry.transactions
    assert tx.amount == D("4165.00")
    assert tx.remittance == ("RE-2026-000109 Courtage Gewerbefläche",)
    assert re.fullmatch(r"[0-9a-f]{64}", tx.key)
    assert OWN_IBAN not in tx.key
    assert parse("camt054_v02.xml") == message  # the same message, the same key


def test_notified_then_reported_transaction_keeps_its_key() -> None:
    notification = parse("camt054_v08.xml")
    assert (notification.kind, notification.version) == ("camt.054", "001.08")
    [notified] = transactions(notification)
    reported = transactions(parse("camt053_v08.xml"))[0]
    # The notification has the AcctSvcrRef on the entry only, the statement on the TxDtls too.
    assert notified.account_servicer_ref is None
    assert reported.account_servicer_ref == "2026113000471102"
    assert notified.key == reported.key == f"{OWN_IBAN}:2026113000471102"
    assert notified.amount == reported.amount
    assert notified.counterparty_name == reported.counterparty_name == "Lena Hoffmann"


def test_keys_are_unique_within_each_message_and_shared_only_by_the_same_transaction() -> None:
    owners: dict[str, list[str]] = {}
    for name in ("camt053_v02.xml", "camt053_v08.xml", "camt054_v02.xml", "camt054_v08.xml"):
        keys = [tx.key for tx in transactions(parse(name))]
        assert len(keys) == len(set(keys)), name
        for key in keys:
            owners.setdefault(key, []).append(name)
    shared = {key: names for key, names in owners.items() if len(names) > 1}
    assert shared == {f"{OWN_IBAN}:2026113000471102": ["camt053_v08.xml", "camt054_v08.xml"]}


def test_batch_without_bank_references_gets_distinct_hashed_keys() -> None:
    data = (
        text_of("camt053_v02.xml")
        .replace("<AcctSvcrRef>2026112700004714-1</AcctSvcrRef>", "")
        .replace("<AcctSvcrRef>2026112700004714-2</AcctSvcrRef>", "")
        .encode()
    )
    first, second = entries(parse_bank_message(data))[3].transactions
    assert first.key != second.key
    assert all(re.fullmatch(r"[0-9a-f]{64}", tx.key) for tx in (first, second))


# The end-to-end template --------------------------------------------------------------------


def test_e2e_template_renders_a_statement() -> None:
    template = string.Template(text_of("camt053_e2e.xml.tmpl"))
    xml = template.substitute(
        MSG_ID="E2E-7f3a9c",
        BOOKING_DATE="2026-12-01",
        INVOICE_A="RE-2026-000201",
        AMOUNT_A="1190.00",
        INVOICE_B="RE-2026-000202",
        AMOUNT_B="2380.50",
        DEBTOR_IBAN_A="DE16500105175419260315",
        DEBTOR_IBAN_B="DE69430609674012345600",
        TOTAL="3570.50",
    )
    message = parse_bank_message(xml.encode())
    assert (message.kind, message.version, message.message_id) == ("camt.053", "001.02", "E2E-7f3a9c")
    first, second = entries(message)
    assert (first.amount, second.amount) == (D("1190.00"), D("2380.50"))
    assert first.credit
    assert second.credit
    assert first.booking_date == second.booking_date == date(2026, 12, 1)
    [tx_a], [tx_b] = first.transactions, second.transactions
    assert (tx_a.key, tx_b.key) == (f"{OWN_IBAN}:E2E-7f3a9c-1", f"{OWN_IBAN}:E2E-7f3a9c-2")
    assert "RE-2026-000201" in " ".join(tx_a.remittance)
    assert "RE-2026-000202" in " ".join(tx_b.remittance)
    assert (tx_a.counterparty_iban, tx_b.counterparty_iban) == (
        "DE16500105175419260315",
        "DE69430609674012345600",
    )


# Details ------------------------------------------------------------------------------------


def test_single_transaction_without_amount_takes_the_entry_amount() -> None:
    data = mutated(
        "camt053_v02.xml",
        '<AmtDtls>\n              <TxAmt>\n                <Amt Ccy="EUR">850.00</Amt>\n'
        "              </TxAmt>\n            </AmtDtls>\n",
        "",
    )
    [tx] = entries(parse_bank_message(data))[2].transactions
    assert (tx.amount, tx.currency) == (D("850.00"), "EUR")


def test_namespace_prefix_and_single_line_layout_read_the_same() -> None:
    text = text_of("camt053_v08.xml")
    prefixed = re.sub(r"<(/?)([A-Za-z])", r"<\1camt:\2", text).replace('xmlns="', 'xmlns:camt="')
    single_line = re.sub(r">\s+<", "><", prefixed)
    assert single_line.count("\n") == 1  # after the XML declaration
    assert parse_bank_message(single_line.encode()) == parse("camt053_v08.xml")


def test_counterparty_iban_is_normalised() -> None:
    data = mutated(
        "camt053_v02.xml",
        "<IBAN>DE26701500001005823741</IBAN>",
        "<IBAN> de26 7015 0000 1005 8237 41 </IBAN>",
    )
    [tx] = entries(parse_bank_message(data))[2].transactions
    assert tx.counterparty_iban == "DE26701500001005823741"


def _entry(
    *,
    credit: bool,
    code: tuple[str, str, str] | None = None,
    reversal: bool = False,
    return_reason: str | None = None,
) -> BankEntry:
    domain, family, subfamily = code or (None, None, None)
    tx = EntryTransaction(
        amount=D("50.00"),
        currency="EUR",
        end_to_end_id=None,
        account_servicer_ref=None,
        mandate_id=None,
        remittance=(),
        creditor_reference=None,
        counterparty_name=None,
        counterparty_iban=None,
        return_reason=return_reason,
        charges=None,
        key="k",
    )
    return BankEntry(
        entry_ref=None,
        account_servicer_ref=None,
        amount=D("50.00"),
        currency="EUR",
        credit=credit,
        reversal=reversal,
        booked=True,
        booking_date=None,
        value_date=None,
        domain=domain,
        family=family,
        subfamily=subfamily,
        proprietary_code=None,
        transactions=(tx,),
    )


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (_entry(credit=False, code=("PMNT", "RDDT", "UPDD")), True),
        (_entry(credit=False, code=("PMNT", "IDDT", "UPDD")), True),
        (_entry(credit=False, code=("PMNT", "RDDT", "PRDD")), True),
        (_entry(credit=False, return_reason="AM04"), True),
        (_entry(credit=False, reversal=True), True),
        # A direct debit someone collected from the account is not a return.
        (_entry(credit=False, code=("PMNT", "RDDT", "ESDD")), False),
        (_entry(credit=False, code=("PMNT", "ICDT", "ESCT")), False),
        # A credit never is, whatever its code.
        (_entry(credit=True, code=("PMNT", "RDDT", "UPDD")), False),
        (_entry(credit=True, code=("PMNT", "IDDT", "ESDD")), False),
    ],
)
def test_is_direct_debit_return(entry: BankEntry, expected: bool) -> None:
    assert entry.is_direct_debit_return is expected


# Refusals -----------------------------------------------------------------------------------

V02_NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"


@pytest.mark.parametrize(
    "namespace",
    [
        "urn:iso:std:iso:20022:tech:xsd:camt.052.001.02",
        "urn:iso:std:iso:20022:tech:xsd:camt.053.001.04",
        "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03",
    ],
)
def test_unknown_namespace_is_refused(namespace: str) -> None:
    text = text_of("camt053_v02.xml").replace(V02_NAMESPACE, namespace)
    message = camt_error(text.encode())
    assert message.startswith("not a camt.053 or camt.054 message")
    assert namespace in message
    for supported in ("camt.053.001.02", "camt.053.001.08", "camt.054.001.02", "camt.054.001.08"):
        assert supported in message


def test_xml_without_namespace_is_refused() -> None:
    message = camt_error(b"<Document><BkToCstmrStmt/></Document>")
    assert message.startswith("not a camt.053 or camt.054 message (namespace 'none'")


def test_malformed_xml_names_the_line() -> None:
    line = line_of("camt053_v02.xml", "<Ustrd>Miete November</Ustrd>")
    data = mutated("camt053_v02.xml", "<Ustrd>Miete November</Ustrd>", "<Ustrd>Miete November</Ustrx>")
    message = camt_error(data)
    assert message.startswith(f"line {line}, column ")
    assert "not well-formed" in message
    assert "Miete" not in message


def test_empty_input_is_refused() -> None:
    assert camt_error(b"").startswith("line 1")


DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE Document [<!ENTITY payer "Hans-Peter Vogel">]>\n',
        '<!DOCTYPE Document [<!ENTITY payer SYSTEM "file:///etc/passwd">]>\n',
        '<!DOCTYPE Document SYSTEM "http://example.org/camt.dtd">\n',
    ],
)
def test_doctype_and_entities_are_refused(doctype: str) -> None:
    text = text_of("camt053_v02.xml")
    text = text.replace(DECLARATION, DECLARATION + doctype).replace(
        "<Nm>Hans-Peter Vogel</Nm>", "<Nm>&payer;</Nm>" if "ENTITY" in doctype else "<Nm>X</Nm>"
    )
    message = camt_error(text.encode())
    assert "DOCTYPE" in message
    assert "Vogel" not in message
    assert "root:" not in message


def test_batch_amounts_must_add_up_to_the_entry() -> None:
    line = line_of("camt053_v02.xml", '<Ntry>\n        <Amt Ccy="EUR">350.50</Amt>')
    data = mutated(
        "camt053_v02.xml",
        '<TxAmt>\n                <Amt Ccy="EUR">250.50</Amt>',
        '<TxAmt>\n                <Amt Ccy="EUR">250.00</Amt>',
    )
    message = camt_error(data)
    assert message == (
        f"line {line}: the amounts of the 2 TxDtls add up to 350.00, not to the entry amount 350.50"
    )


def test_batch_transaction_without_amount_is_refused() -> None:
    line = line_of("camt053_v02.xml", "<AcctSvcrRef>2026112700004714-2</AcctSvcrRef>") - 2
    data = mutated(
        "camt053_v02.xml",
        '<AmtDtls>\n              <TxAmt>\n                <Amt Ccy="EUR">250.50</Amt>\n'
        "              </TxAmt>\n            </AmtDtls>\n",
        "",
    )
    assert camt_error(data).startswith(f"line {line}: TxDtls has no amount")


def test_missing_entry_amount_names_the_line() -> None:
    line = line_of("camt053_v02.xml", '<Ntry>\n        <Amt Ccy="EUR">850.00</Amt>')
    data = mutated(
        "camt053_v02.xml",
        '<Ntry>\n        <Amt Ccy="EUR">850.00</Amt>\n',
        "<Ntry>\n",
    )
    assert camt_error(data) == f"line {line}: Ntry has no Amt"


def test_missing_message_id_names_the_line() -> None:
    line = line_of("camt053_v08.xml", "<GrpHdr>")
    data = mutated("camt053_v08.xml", "<MsgId>053D2026113022101700000232</MsgId>", "")
    assert camt_error(data) == f"line {line}: GrpHdr has no MsgId"


@pytest.mark.parametrize(
    ("amount", "problem"),
    [
        ('<Amt Ccy="EUR">14458.505</Amt>', "has more than 2 decimals for EUR"),
        ('<Amt Ccy="EUR">-14458.50</Amt>', "is negative"),
        ('<Amt Ccy="EUR">14.458,50</Amt>', "is not a decimal amount"),
        ('<Amt Ccy="EUR">NaN</Amt>', "is not a decimal amount"),
        ('<Amt Ccy="EUR">1E4</Amt>', "is not a decimal amount"),
        ("<Amt>14458.50</Amt>", "has no currency code (Ccy)"),
    ],
)
def test_bad_amounts_are_refused(amount: str, problem: str) -> None:
    needle = '<Ntry>\n        <Amt Ccy="EUR">14458.50</Amt>'
    line = line_of("camt053_v02.xml", needle) + 1
    data = mutated("camt053_v02.xml", needle, f"<Ntry>\n        {amount}")
    assert camt_error(data).startswith(f"line {line}: Amt {problem}")


def test_duplicate_keys_are_refused() -> None:
    line = line_of("camt053_v02.xml", "<AcctSvcrRef>2026112700004714-2</AcctSvcrRef>") - 2
    first = line_of("camt053_v02.xml", "<AcctSvcrRef>2026112700004714-1</AcctSvcrRef>") - 2
    data = mutated(
        "camt053_v02.xml",
        "<AcctSvcrRef>2026112700004714-2</AcctSvcrRef>",
        "<AcctSvcrRef>2026112700004714-1</AcctSvcrRef>",
    )
    message = camt_error(data)
    assert message.startswith(f"line {line}: this transaction has the same key as the one at line {first} ")
    assert "2026112700004714" not in message


ERRONEOUS = [
    mutated("camt053_v02.xml", "<Ustrd>Miete November</Ustrd>", "<Ustrd>Miete November</Ustrx>"),
    mutated(
        "camt053_v02.xml",
        '<TxAmt>\n                <Amt Ccy="EUR">250.50</Amt>',
        '<TxAmt>\n                <Amt Ccy="EUR">250.00</Amt>',
    ),
    mutated("camt053_v02.xml", '<Ntry>\n        <Amt Ccy="EUR">850.00</Amt>\n', "<Ntry>\n"),
    mutated(
        "camt053_v02.xml",
        "<Sts>BOOK</Sts>\n        <BookgDt>\n          <Dt>2026-11-27</Dt>\n"
        "        </BookgDt>\n        <ValDt>\n          <Dt>2026-11-27</Dt>\n        </ValDt>\n"
        "        <AcctSvcrRef>2026112700004715",
        "<AcctSvcrRef>2026112700004715",
    ),
    mutated(
        "camt053_v02.xml",
        "<AcctSvcrRef>2026112700004714-2</AcctSvcrRef>",
        "<AcctSvcrRef>2026112700004714-1</AcctSvcrRef>",
    ),
    mutated(
        "camt053_v02.xml", "<CdtDbtInd>DBIT</CdtDbtInd>\n        <Sts>", "<CdtDbtInd>DEBIT</CdtDbtInd><Sts>"
    ),
    mutated_first(
        "camt053_v02.xml", "<BookgDt>\n          <Dt>2026-11-27", "<BookgDt>\n          <Dt>27.11.2026"
    ),
    mutated_first("camt053_v02.xml", "<Sts>BOOK</Sts>", "<RvslInd>ja</RvslInd><Sts>BOOK</Sts>"),
    text_of("camt053_v02.xml").replace(V02_NAMESPACE, "urn:example:bank:statement").encode(),
]


@pytest.mark.parametrize("data", ERRONEOUS)
def test_error_messages_hold_no_personal_data(data: bytes) -> None:
    message = camt_error(data)
    assert re.match(r"line \d+|not a camt", message)
    for value in personal_data("camt053_v02.xml"):
        assert value not in message
