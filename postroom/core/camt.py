"""Bank-to-customer messages of ISO 20022: camt.053 statements and camt.054 debit/credit notifications.

:func:`parse_bank_message` reads versions ``001.02`` and ``001.08``, the two that German banks
deliver under the DK rules, along the message structure::

    Document/BkToCstmrStmt/Stmt            (camt.053, one statement per account)
    Document/BkToCstmrDbtCdtNtfctn/Ntfctn  (camt.054, one notification per account)
      Ntry                                 (an entry: one booking on the account)
        NtryDtls/TxDtls                    (its transactions: several for a batch booking)

The versions differ in a few places only (entry status, party names, charges, transaction
amount); ``_SHAPES`` names them, everything else is read the same way.

Every amount is a :class:`~decimal.Decimal` exactly as the message states it, always
positive; the direction is the entry's ``CdtDbtInd``. Each transaction gets an idempotency
``key``: the bank's own reference (``AcctSvcrRef``) prefixed with the account, so that a
transaction notified intraday in a camt.054 and reported again in the evening's camt.053
gets the same key, or, where the bank gives no reference, a hash over what identifies it.

The XML comes from outside (a bank portal, an EBICS download, an upload): it is parsed
without entities, DTDs or network access, and a DOCTYPE is refused. Errors name the line
and the element, never a value: the XML holds names, IBANs and remittance text of payers.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal

from lxml import etree

Kind = Literal["camt.053", "camt.054"]

_NAMESPACE_PREFIX = "urn:iso:std:iso:20022:tech:xsd:"
_KINDS: tuple[Kind, ...] = ("camt.053", "camt.054")
_VERSIONS = ("001.02", "001.08")
_SUPPORTED = ", ".join(f"{kind}.{version}" for kind in _KINDS for version in _VERSIONS)
_BODY: dict[Kind, tuple[str, str]] = {
    # message element, report element (one per account)
    "camt.053": ("BkToCstmrStmt", "Stmt"),
    "camt.054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn"),
}
_NOT_PROVIDED = "NOTPROVIDED"
"""What EPC rules put into EndToEndId when the payer gave none."""

# The decimal lexical form of XML Schema; Decimal() alone would also take "NaN", "Infinity" and exponents.
_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_CURRENCY = re.compile(r"[A-Z]{3}")
_ISO_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(Z|[+-]\d{2}:\d{2})?")
_FRACTION_DIGITS = {"EUR": 2}
"""Decimals an amount may have, by currency; others take the schema's limit."""
_SCHEMA_FRACTION_DIGITS = 5
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}

_DIRECT_DEBIT_FAMILIES = frozenset({"RDDT", "IDDT"})
_DIRECT_DEBIT_RETURN_SUBFAMILIES = frozenset({"UPDD", "PRDD"})
"""ISO bank transaction sub-families of a direct debit that came back: unpaid, reversed after a return."""


class CamtError(ValueError):
    """The bytes are not a camt.053/camt.054 message this module reads.

    The message names the XML line and the element, never a value of the message.
    """


@dataclass(frozen=True, slots=True)
class EntryTransaction:
    """One underlying transaction of an entry (``TxDtls``).

    ``amount`` is positive, in ``currency``; the direction is the entry's (:attr:`BankEntry.credit`).
    The counterparty is the other side of the payment: the debtor of a credit, the creditor
    of a debit, and the debtor of a returned direct debit (whose parties keep the roles of
    the original collection). ``charges`` are the fees the bank reports for the transaction
    (for a returned direct debit they are part of ``amount``). ``key`` identifies the
    transaction across messages (see :func:`parse_bank_message`).
    """

    amount: Decimal
    currency: str
    end_to_end_id: str | None
    account_servicer_ref: str | None
    mandate_id: str | None
    remittance: tuple[str, ...]
    creditor_reference: str | None
    counterparty_name: str | None
    counterparty_iban: str | None
    return_reason: str | None
    charges: Decimal | None
    key: str


@dataclass(frozen=True, slots=True)
class BankEntry:
    """One booking on the account (``Ntry``) with its transactions.

    A batch booking carries one transaction per ``TxDtls``; an entry without ``TxDtls``
    carries exactly one transaction with the entry's amount. ``domain``, ``family`` and
    ``subfamily`` are the ISO bank transaction code, ``proprietary_code`` the bank's own
    (in Germany the DK code, e.g. ``NTRF+166+00931``).
    """

    entry_ref: str | None
    account_servicer_ref: str | None
    amount: Decimal
    currency: str
    credit: bool
    reversal: bool
    booked: bool
    booking_date: date | None
    value_date: date | None
    domain: str | None
    family: str | None
    subfamily: str | None
    proprietary_code: str | None
    transactions: tuple[EntryTransaction, ...]

    @property
    def is_direct_debit_return(self) -> bool:
        """Whether this is a debit taking back a direct debit that was collected.

        That is a debit with the bank transaction code of a returned direct debit
        (PMNT/RDDT/UPDD, PMNT/RDDT/PRDD, or the same under family IDDT), a debit with a
        return reason, or a debit reversing a credit (``RvslInd``). PMNT/RDDT/ESDD alone is
        a direct debit someone collected from this account, not a return.
        """
        if self.credit:
            return False
        return (
            _is_direct_debit_return_code(self.domain, self.family, self.subfamily)
            or self.reversal
            or any(tx.return_reason for tx in self.transactions)
        )


@dataclass(frozen=True, slots=True)
class AccountReport:
    """The entries of one account: a statement (``Stmt``, camt.053) or a notification (``Ntfctn``,
    camt.054)."""

    id: str
    account_iban: str | None
    currency: str | None
    created_at: datetime | None
    entries: tuple[BankEntry, ...]


@dataclass(frozen=True, slots=True)
class BankMessage:
    """A camt.053 or camt.054 message; ``version`` is ``001.02`` or ``001.08``."""

    kind: Kind
    version: str
    message_id: str
    created_at: datetime | None
    reports: tuple[AccountReport, ...]


@dataclass(frozen=True, slots=True)
class _Shape:
    """Where a version keeps what the other keeps elsewhere; paths are relative to the element named."""

    status: str
    """In ``Ntry``: the entry status code."""
    party_name: str
    """In ``RltdPties/Dbtr`` or ``RltdPties/Cdtr``: the party's name."""
    charge_amounts: str
    """In ``Ntry`` or ``TxDtls``: every charge amount."""
    transaction_amounts: tuple[str, ...]
    """In ``TxDtls``: the transaction amount, in order of preference."""


_SHAPES = {
    "001.02": _Shape(
        status="Sts",
        party_name="Nm",
        charge_amounts="Chrgs/Amt",
        transaction_amounts=("AmtDtls/TxAmt/Amt",),
    ),
    "001.08": _Shape(
        status="Sts/Cd",
        party_name="Pty/Nm",
        charge_amounts="Chrgs/Rcrd/Amt",
        transaction_amounts=("Amt", "AmtDtls/TxAmt/Amt"),
    ),
}


def parse_bank_message(data: bytes) -> BankMessage:
    """The camt.053 or camt.054 message in ``data`` (versions 001.02 and 001.08).

    A transaction's ``key`` is ``"<account IBAN>:<AcctSvcrRef>"`` where the transaction has
    an ``AcctSvcrRef`` (the only transaction of an entry also takes the entry's); otherwise
    the SHA-256 (hex) over account, booking date, entry reference, end-to-end id, amount,
    direction and the transaction's index within the entry. An account without IBAN
    stands in with its other identification (``Acct/Id/Othr/Id``).

    Raises :class:`CamtError` when ``data`` is not well-formed, carries a DOCTYPE, is no
    supported camt message, lacks an element the parser needs, states an amount the
    currency does not allow, has batch transactions that do not add up to their entry,
    or holds two transactions with the same key.
    """
    root = _parse_xml(data)
    qname = etree.QName(root)
    kind_and_version = _identify(qname.namespace or "")
    if qname.localname != "Document" or kind_and_version is None:
        raise CamtError(
            f"not a camt.053 or camt.054 message (namespace {qname.namespace or 'none'!r}, "
            f"root element {qname.localname}); supported: {_SUPPORTED}"
        )
    kind, version = kind_and_version
    return _Reader(qname.namespace or "", _SHAPES[version]).message(root, kind, version)


def _parse_xml(data: bytes) -> etree._Element:
    # No entities, no DTD, no network: the XML comes from outside the hub.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as error:
        # lxml's message may quote the document; line and column are enough to find the fault.
        line, column = error.position
        raise CamtError(f"line {line}, column {column}: the XML is not well-formed") from None
    if root.getroottree().docinfo.internalDTD is not None:
        raise CamtError("the XML has a DOCTYPE declaration, which bank messages never carry")
    return root


def _identify(namespace: str) -> tuple[Kind, str] | None:
    for kind in _KINDS:
        for version in _VERSIONS:
            if namespace == f"{_NAMESPACE_PREFIX}{kind}.{version}":
                return kind, version
    return None


class _Reader:
    """Reads one message: namespace-aware look-ups plus the keys seen so far (which must be unique)."""

    def __init__(self, namespace: str, shape: _Shape) -> None:
        self._namespace = namespace
        self._shape = shape
        self._keys: dict[str, int | None] = {}
        """Every transaction key so far, with the line of its transaction."""

    # Look-ups: paths are written without namespace ("Refs/EndToEndId") and qualified here.

    def _path(self, path: str) -> str:
        return "/".join(f"{{{self._namespace}}}{step}" for step in path.split("/"))

    def _find(self, parent: etree._Element | None, path: str) -> etree._Element | None:
        return None if parent is None else parent.find(self._path(path))

    def _findall(self, parent: etree._Element | None, path: str) -> list[etree._Element]:
        return [] if parent is None else parent.findall(self._path(path))

    def _require(self, parent: etree._Element, path: str) -> etree._Element:
        found = self._find(parent, path)
        if found is None:
            raise CamtError(f"line {parent.sourceline}: {_name(parent)} has no {path}")
        return found

    def _text(self, parent: etree._Element | None, path: str) -> str | None:
        found = self._find(parent, path)
        return None if found is None else _stripped(found)

    def _texts(self, parent: etree._Element | None, path: str) -> tuple[str, ...]:
        return tuple(text for found in self._findall(parent, path) if (text := _stripped(found)) is not None)

    def _required_text(self, parent: etree._Element, path: str) -> str:
        found = self._require(parent, path)
        text = _stripped(found)
        if text is None:
            raise CamtError(f"line {found.sourceline}: {_name(found)} is empty")
        return text

    # The message structure.

    def message(self, root: etree._Element, kind: Kind, version: str) -> BankMessage:
        message_element, report_element = _BODY[kind]
        body = self._require(root, message_element)
        header = self._require(body, "GrpHdr")
        reports = self._findall(body, report_element)
        if not reports:
            raise CamtError(f"line {body.sourceline}: {message_element} has no {report_element}")
        return BankMessage(
            kind=kind,
            version=version,
            message_id=self._required_text(header, "MsgId"),
            created_at=self._datetime(header, "CreDtTm"),
            reports=tuple(self._report(report) for report in reports),
        )

    def _report(self, report: etree._Element) -> AccountReport:
        account = self._require(report, "Acct")
        iban = _normalised_iban(self._text(account, "Id/IBAN"))
        account_id = iban or self._text(account, "Id/Othr/Id")
        if account_id is None:
            raise CamtError(f"line {account.sourceline}: Acct has neither Id/IBAN nor Id/Othr/Id")
        return AccountReport(
            id=self._required_text(report, "Id"),
            account_iban=iban,
            currency=self._text(account, "Ccy"),
            created_at=self._datetime(report, "CreDtTm"),
            entries=tuple(self._entry(entry, account_id, iban) for entry in self._findall(report, "Ntry")),
        )

    def _entry(self, entry: etree._Element, account_id: str, own_iban: str | None) -> BankEntry:
        amount, currency = self._amount(self._require(entry, "Amt"))
        credit = self._credit(entry)
        status = self._text(entry, self._shape.status)
        if status is None:
            raise CamtError(f"line {entry.sourceline}: Ntry has no {self._shape.status}")
        code = self._find(entry, "BkTxCd")
        domain = self._text(code, "Domn/Cd")
        family = self._text(code, "Domn/Fmly/Cd")
        subfamily = self._text(code, "Domn/Fmly/SubFmlyCd")
        header = _EntryHeader(
            account_id=account_id,
            own_iban=own_iban,
            entry_ref=self._text(entry, "NtryRef"),
            account_servicer_ref=self._text(entry, "AcctSvcrRef"),
            amount=amount,
            currency=currency,
            credit=credit,
            booking_date=self._date_choice(entry, "BookgDt"),
            direct_debit_return=_is_direct_debit_return_code(domain, family, subfamily),
        )
        return BankEntry(
            entry_ref=header.entry_ref,
            account_servicer_ref=header.account_servicer_ref,
            amount=amount,
            currency=currency,
            credit=credit,
            reversal=self._boolean(entry, "RvslInd"),
            booked=status == "BOOK",
            booking_date=header.booking_date,
            value_date=self._date_choice(entry, "ValDt"),
            domain=domain,
            family=family,
            subfamily=subfamily,
            proprietary_code=self._text(code, "Prtry/Cd"),
            transactions=self._transactions(entry, header),
        )

    def _transactions(self, entry: etree._Element, header: _EntryHeader) -> tuple[EntryTransaction, ...]:
        details = self._findall(entry, "NtryDtls/TxDtls")
        if len(details) <= 1:
            detail = details[0] if details else None
            amount = self._transaction_amount(detail)
            if amount is None:
                amount = (header.amount, header.currency)
            return (self._transaction(entry, detail, header, amount, index=0, single=True),)
        amounts: list[tuple[Decimal, str]] = []
        for detail in details:
            found = self._transaction_amount(detail)
            if found is None:
                raise CamtError(
                    f"line {detail.sourceline}: TxDtls has no amount "
                    f"({' or '.join(self._shape.transaction_amounts)}), and its entry has several"
                )
            if found[1] != header.currency:
                raise CamtError(
                    f"line {detail.sourceline}: the TxDtls amount is in {found[1]}, "
                    f"its entry's in {header.currency}"
                )
            amounts.append(found)
        total = sum((value for value, _ in amounts), Decimal(0))
        if total != header.amount:
            raise CamtError(
                f"line {entry.sourceline}: the amounts of the {len(details)} TxDtls add up to "
                f"{total}, not to the entry amount {header.amount}"
            )
        return tuple(
            self._transaction(entry, detail, header, amount, index, single=False)
            for index, (detail, amount) in enumerate(zip(details, amounts, strict=True))
        )

    def _transaction_amount(self, detail: etree._Element | None) -> tuple[Decimal, str] | None:
        for path in self._shape.transaction_amounts:
            element = self._find(detail, path)
            if element is not None:
                return self._amount(element)
        return None

    def _transaction(
        self,
        entry: etree._Element,
        detail: etree._Element | None,
        header: _EntryHeader,
        amount: tuple[Decimal, str],
        index: int,
        *,
        single: bool,
    ) -> EntryTransaction:
        """The transaction ``detail`` (a TxDtls, ``None`` for an entry without any) of ``entry``,
        with ``amount`` and currency; ``single`` when it is the entry's only transaction."""
        reference = self._text(detail, "Refs/AcctSvcrRef")
        end_to_end_id = self._text(detail, "Refs/EndToEndId")
        if end_to_end_id == _NOT_PROVIDED:
            end_to_end_id = None
        return_reason = self._text(detail, "RtrInf/Rsn/Cd") or self._text(detail, "RtrInf/Rsn/Prtry")
        name, iban = self._counterparty(detail, header, returned=return_reason is not None)
        charges = self._charges(detail)
        if charges is None and single:
            charges = self._charges(entry)
        key_reference = reference or (header.account_servicer_ref if single else None)
        if key_reference is not None:
            key = f"{header.account_id}:{key_reference}"
        else:
            key = _hashed_key(header, end_to_end_id, amount[0], index)
        self._claim(key, detail if detail is not None else entry)
        return EntryTransaction(
            amount=amount[0],
            currency=amount[1],
            end_to_end_id=end_to_end_id,
            account_servicer_ref=reference,
            mandate_id=self._text(detail, "Refs/MndtId"),
            remittance=self._texts(detail, "RmtInf/Ustrd"),
            creditor_reference=self._text(detail, "RmtInf/Strd/CdtrRefInf/Ref"),
            counterparty_name=name,
            counterparty_iban=iban,
            return_reason=return_reason,
            charges=charges,
            key=key,
        )

    def _counterparty(
        self, detail: etree._Element | None, header: _EntryHeader, *, returned: bool
    ) -> tuple[str | None, str | None]:
        """Name and IBAN of the other side: the debtor of a credit or of a returned direct
        debit (its parties keep the roles of the collection), the creditor of any other debit.
        A side whose account is the reported account itself is never the counterparty."""
        parties = self._find(detail, "RltdPties")
        if parties is None:
            return None, None
        sides = ["Dbtr", "Cdtr"]
        if not (header.credit or returned or header.direct_debit_return):
            sides.reverse()
        for side in sides:
            iban = _normalised_iban(self._text(parties, f"{side}Acct/Id/IBAN"))
            if iban is None or iban != header.own_iban:
                return self._text(parties, f"{side}/{self._shape.party_name}"), iban
        return None, None

    def _charges(self, parent: etree._Element | None) -> Decimal | None:
        amounts = [self._amount(element)[0] for element in self._findall(parent, self._shape.charge_amounts)]
        return sum(amounts, Decimal(0)) if amounts else None

    def _claim(self, key: str, element: etree._Element) -> None:
        if key in self._keys:
            raise CamtError(
                f"line {element.sourceline}: this transaction has the same key as the one at line "
                f"{self._keys[key]} (the same AcctSvcrRef twice, or two transactions nothing tells apart)"
            )
        self._keys[key] = _line(element)

    # Values.

    def _amount(self, element: etree._Element) -> tuple[Decimal, str]:
        """Amount and currency (``Ccy``) of an amount element."""
        where = f"line {element.sourceline}: {_name(element)}"
        currency = element.get("Ccy")
        if currency is None or not _CURRENCY.fullmatch(currency):
            raise CamtError(f"{where} has no currency code (Ccy)")
        text = _stripped(element) or ""
        if not _DECIMAL.fullmatch(text):
            raise CamtError(f"{where} is not a decimal amount")
        amount = Decimal(text)
        if amount < 0:
            raise CamtError(f"{where} is negative (the direction is CdtDbtInd)")
        digits = _FRACTION_DIGITS.get(currency, _SCHEMA_FRACTION_DIGITS)
        exponent = amount.as_tuple().exponent
        assert isinstance(exponent, int)  # finite: the pattern took neither NaN nor Infinity
        if -exponent > digits:
            raise CamtError(f"{where} has more than {digits} decimals for {currency}")
        return abs(amount), currency  # abs: "-0.00" is zero

    def _credit(self, entry: etree._Element) -> bool:
        element = self._require(entry, "CdtDbtInd")
        indicator = _stripped(element)
        if indicator not in ("CRDT", "DBIT"):
            raise CamtError(f"line {element.sourceline}: CdtDbtInd is neither CRDT nor DBIT")
        return indicator == "CRDT"

    def _boolean(self, parent: etree._Element, path: str) -> bool:
        element = self._find(parent, path)
        if element is None:
            return False
        value = _BOOLEANS.get(_stripped(element) or "")
        if value is None:
            raise CamtError(f"line {element.sourceline}: {path} is not a boolean")
        return value

    def _date_choice(self, parent: etree._Element, path: str) -> date | None:
        """The date of a ``Dt``/``DtTm`` choice (the date part of ``DtTm`` as the bank wrote it)."""
        choice = self._find(parent, path)
        if choice is None:
            return None
        day = self._find(choice, "Dt")
        if day is not None:
            return _date(day)
        moment = self._find(choice, "DtTm")
        if moment is not None:
            return _datetime(moment).date()
        raise CamtError(f"line {choice.sourceline}: {path} has neither Dt nor DtTm")

    def _datetime(self, parent: etree._Element, path: str) -> datetime | None:
        element = self._find(parent, path)
        return None if element is None else _datetime(element)


@dataclass(frozen=True, slots=True)
class _EntryHeader:
    """What every transaction of an entry needs of the entry and its account."""

    account_id: str
    own_iban: str | None
    entry_ref: str | None
    account_servicer_ref: str | None
    amount: Decimal
    currency: str
    credit: bool
    booking_date: date | None
    direct_debit_return: bool
    """The entry's bank transaction code is that of a returned direct debit."""


def _hashed_key(header: _EntryHeader, end_to_end_id: str | None, amount: Decimal, index: int) -> str:
    """The key of a transaction without a bank reference: a hash over what identifies it."""
    fields = (
        header.account_id,
        header.booking_date.isoformat() if header.booking_date else "",
        header.entry_ref or "",
        end_to_end_id or "",
        format(amount.normalize(), "f"),  # 100.00 and 100.0 are one amount
        "CRDT" if header.credit else "DBIT",
        str(index),
    )
    return hashlib.sha256("\x1f".join(fields).encode()).hexdigest()


def _line(element: etree._Element) -> int | None:
    line: object = element.sourceline  # lxml-stubs leave it untyped
    return line if isinstance(line, int) else None


def _is_direct_debit_return_code(domain: str | None, family: str | None, subfamily: str | None) -> bool:
    """Whether the ISO bank transaction code is that of a returned direct debit (on either side)."""
    return (
        domain == "PMNT"
        and family in _DIRECT_DEBIT_FAMILIES
        and subfamily in _DIRECT_DEBIT_RETURN_SUBFAMILIES
    )


def _name(element: etree._Element) -> str:
    return etree.QName(element).localname


def _stripped(element: etree._Element) -> str | None:
    text = (element.text or "").strip()
    return text or None


def _normalised_iban(iban: str | None) -> str | None:
    if iban is None:
        return None
    return "".join(iban.split()).upper() or None


def _date(element: etree._Element) -> date:
    match = _ISO_DATE.fullmatch(_stripped(element) or "")
    try:
        if match is None:
            raise ValueError
        return date.fromisoformat(match.group(1))
    except ValueError:
        raise CamtError(f"line {element.sourceline}: {_name(element)} is not a date") from None


def _datetime(element: etree._Element) -> datetime:
    """The date and time of ``element``, in UTC where it names no offset."""
    try:
        moment = datetime.fromisoformat(_stripped(element) or "")
    except ValueError:
        raise CamtError(f"line {element.sourceline}: {_name(element)} is not a date and time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
