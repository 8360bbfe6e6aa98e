"""Build invoice.docx, the docx engine's invoice template, from code so it can be reviewed as a diff.

Run from the repository root: ``.venv/bin/python templates/invoice/docx/build_template.py``.

The layout follows DIN 5008 Form B like ../typst/main.typ (positions in mm from the top-left
corner of the sheet): the letterhead, the address field (return line, then the address at
x 25 / y 62.7 in 80 × 27.3) and the information block (x 125 / y 50) are frames anchored to the
page in the first-page header (no fold or hole marks: the print file adds them); the body starts at y 98.46; pages 2 and following carry a running header.
The Jinja2 tags are docxtpl's: ``{%p ... %}`` paragraphs and ``{%tr ... %}`` table rows vanish
when the template is filled; "\\n" in a value becomes a line break.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

from docx import Document
from docx.enum.section import WD_SECTION
from docx.oxml import parse_xml
from docx.shared import Mm, Pt

HERE = Path(__file__).resolve().parent
W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
INK, MUTED, HAIRLINE, ACCENT = "1D2430", "5B6472", "B9BFC8", "23456B"
LABELS = '{%p from "labels.jinja" import labels %}'
WORDS = '{%p set w = labels["en" if lang == "en" else "de"] %}'


def twips(mm: float) -> int:
    """Millimetres in twentieths of a point."""
    return round(mm * 1440 / 25.4)


def run(
    text: str,
    *,
    size: float | None = None,
    color: str | None = None,
    bold: bool = False,
    semibold: bool = False,
    underline: bool = False,
) -> str:
    """One ``w:r`` with its text and character formatting."""
    props = ""
    if semibold:
        props += '<w:rFonts w:ascii="Inter Semi Bold" w:hAnsi="Inter Semi Bold" w:cs="Inter Semi Bold"/>'
    if bold:
        props += "<w:b/>"
    if color:
        props += f'<w:color w:val="{color}"/>'
    if size:
        props += f'<w:sz w:val="{round(size * 2)}"/><w:szCs w:val="{round(size * 2)}"/>'
    if underline:
        props += '<w:u w:val="single"/>'
    return f'<w:r><w:rPr>{props}</w:rPr><w:t xml:space="preserve">{escape(text)}</w:t></w:r>'


def field(instruction: str, *, size: float, color: str) -> str:
    """A simple field (PAGE, NUMPAGES) with character formatting."""
    return f'<w:fldSimple w:instr=" {instruction} ">{run("1", size=size, color=color)}</w:fldSimple>'


def paragraph(*runs: str, props: str = "", after: float = 0) -> str:
    """One ``w:p``; ``after`` is the space below in points."""
    spacing = f'<w:spacing w:before="0" w:after="{round(after * 20)}"/>'
    return f"<w:p {W}><w:pPr>{props}{spacing}</w:pPr>{''.join(runs)}</w:p>"


def control(tag: str) -> str:
    """A paragraph holding only a docxtpl ``{%p ... %}`` tag; it vanishes when filled."""
    return f'<w:p {W}><w:r><w:t xml:space="preserve">{escape(tag)}</w:t></w:r></w:p>'


def frame(x: float, y: float, width: float, height: float | None = None, *, exact: bool = False) -> str:
    """Paragraph properties placing the paragraph in a frame anchored to the page."""
    rule = f'w:h="{twips(height)}" w:hRule="{"exact" if exact else "atLeast"}" ' if height else ""
    return (
        f'<w:framePr w:w="{twips(width)}" {rule}w:wrap="through" w:vAnchor="page" w:hAnchor="page" '
        f'w:x="{twips(x)}" w:y="{twips(y)}"/>'
    )


def border(side: str, points: float, color: str, space: int = 0) -> str:
    """One border line (``side`` top/left/bottom) of ``points`` width."""
    return f'<w:{side} w:val="single" w:sz="{round(points * 8)}" w:space="{space}" w:color="{color}"/>'


def cell(width: float, *paragraphs: str, props: str = "") -> str:
    """One table cell of ``width`` mm."""
    width_xml = f'<w:tcW w:w="{twips(width)}" w:type="dxa"/>'
    return f"<w:tc><w:tcPr>{width_xml}{props}</w:tcPr>{''.join(paragraphs)}</w:tc>"


def row(*cells: str, header: bool = False) -> str:
    """One table row; ``header`` rows repeat on every page."""
    props = "<w:trPr><w:cantSplit/>" + ("<w:tblHeader/>" if header else "") + "</w:trPr>"
    return f"<w:tr>{props}{''.join(cells)}</w:tr>"


def control_row(tag: str, columns: int) -> str:
    """A row holding only a docxtpl ``{%tr ... %}`` tag; it vanishes when filled."""
    return (
        "<w:tr>"
        + cell(10, control(tag))
        + "".join(cell(10, paragraph()) for _ in range(columns - 1))
        + "</w:tr>"
    )


def table(
    widths: list[float],
    rows: list[str],
    *,
    align: str = "left",
    margins: tuple[float, float] = (1.2, 1.1),
    props: str = "",
) -> str:
    """A table with fixed column widths (mm) and cell margins (horizontal, vertical mm)."""
    horizontal, vertical = (twips(m) for m in margins)
    grid = "".join(f'<w:gridCol w:w="{twips(width)}"/>' for width in widths)
    return (
        f'<w:tbl {W}><w:tblPr><w:tblW w:w="{twips(sum(widths))}" w:type="dxa"/><w:jc w:val="{align}"/>'
        f'<w:tblLayout w:type="fixed"/>{props}<w:tblCellMar><w:top w:w="{vertical}" w:type="dxa"/>'
        f'<w:left w:w="{horizontal}" w:type="dxa"/><w:bottom w:w="{vertical}" w:type="dxa"/>'
        f'<w:right w:w="{horizontal}" w:type="dxa"/></w:tblCellMar></w:tblPr>'
        f"<w:tblGrid>{grid}</w:tblGrid>{''.join(rows)}</w:tbl>"
    )


def right() -> str:
    """Right-aligned paragraph properties."""
    return '<w:jc w:val="right"/>'


def first_page_header() -> list[str]:
    """Letterhead, address field and information block, each in a page-anchored frame."""
    info = (
        "[(w.customer, recipient.customer_number), (w.number, number), (w.date, issue_date), "
        "(w.supply, delivery_date), (w.due, due_date), (w.order, order_reference), "
        "(w.buyer_reference, buyer_reference), (w.buyer_vat_id, recipient.vat_id)]"
    )
    info_tab = f'<w:tabs><w:tab w:val="left" w:pos="{twips(37)}"/></w:tabs>'
    return [
        control(LABELS),
        control(WORDS),
        paragraph(run("{{ seller.name }}", size=17, color=ACCENT, semibold=True), props=frame(25, 16, 90)),
        paragraph(
            run(
                '{{ (seller.address + [seller.phone, seller.email]) | select | join("\\n") }}',
                size=8,
                color=MUTED,
            ),
            props=frame(125, 16, 70),
        ),
        control("{%p if seller.return_address %}"),
        paragraph(
            run("{{ seller.return_address }}", size=6.5, color=MUTED, underline=True),
            props=frame(25, 57.7, 80, 3.5, exact=True),
        ),
        control("{%p endif %}"),
        paragraph(
            run('{{ recipient.address | select | join("\\n") }}', size=10),
            props=frame(25, 62.7, 80, 27.3, exact=True) + '<w:spacing w:line="276" w:lineRule="auto"/>',
        ),
        control(f"{{%p for label, value in {info} if value %}}"),
        paragraph(
            run("{{ label }}", size=8.5, color=MUTED),
            run("\t{{ value }}", size=8.5),
            props=frame(125, 50, 75) + info_tab,
            after=3,
        ),
        control("{%p endfor %}"),
        paragraph(props='<w:spacing w:line="20" w:lineRule="exact"/>'),
    ]


def running_header() -> list[str]:
    """Pages 2 and following: the title and the page number."""
    tab = f'<w:tabs><w:tab w:val="right" w:pos="{twips(165)}"/></w:tabs>'
    return [
        control(LABELS),
        control(WORDS),
        paragraph(
            run("{{ w.title }} {{ number }}\t{{ w.page }} ", size=8, color=MUTED),
            field("PAGE", size=8, color=MUTED),
            run(" {{ w.of }} ", size=8, color=MUTED),
            field("NUMPAGES", size=8, color=MUTED),
            props=tab,
        ),
    ]


def footer() -> list[str]:
    """Every page: page x of y, then the company data (§35a GmbHG) in four columns."""
    size = 7
    columns = [
        ("[seller.name] + seller.address", 31.4),
        (
            '[(w.office ~ ": " ~ seller.registered_office) if seller.registered_office else none, '
            "seller.register, "
            '(w.directors ~ ": " ~ seller.managing_directors) if seller.managing_directors else none]',
            43.6,
        ),
        (
            '[(w.vat_id ~ " " ~ seller.vat_id) if seller.vat_id else none, '
            '(w.tax_number ~ " " ~ seller.tax_number) if seller.tax_number else none]',
            33.1,
        ),
        (
            '[seller.bank, ("IBAN " ~ seller.iban) if seller.iban else none, '
            '("BIC " ~ seller.bic) if seller.bic else none]',
            56.9,
        ),
    ]
    top = f"<w:tcBorders>{border('top', 0.4, HAIRLINE)}</w:tcBorders>"
    cells = [
        cell(
            width,
            paragraph(run(f'{{{{ ({items}) | select | join("\\n") }}}}', size=size, color=MUTED)),
            props=top,
        )
        for items, width in columns
    ]
    return [
        control(LABELS),
        control(WORDS),
        paragraph(
            run("{{ w.page }} ", size=7.5, color=MUTED),
            field("PAGE", size=7.5, color=MUTED),
            run(" {{ w.of }} ", size=7.5, color=MUTED),
            field("NUMPAGES", size=7.5, color=MUTED),
            props=right(),
            after=1,
        ),
        table([width for _, width in columns], [row(*cells)], margins=(0, 0.8)),
        paragraph(props='<w:spacing w:line="20" w:lineRule="exact"/>'),
    ]


def body() -> list[str]:
    """The invoice: title, line table, totals with the payment code, payment and bank details."""
    widths = [8, 84, 11, 12, 19, 10, 21]
    head_rule = f"<w:tcBorders>{border('bottom', 0.6, MUTED)}</w:tcBorders>"
    line_rule = f"<w:tcBorders>{border('bottom', 0.4, HAIRLINE)}</w:tcBorders>"
    numeric = ["right", "left", "right", "left", "right", "right", "right"]
    heads = ["position", "description", "quantity", "unit", "unit_price", "rate", "amount"]
    values = ["position", "description", "quantity", 'unit or ""', "unit_price", 'tax_rate or ""', "total"]

    def align(index: int) -> str:
        return right() if numeric[index] == "right" else ""

    header = row(
        *(
            cell(
                widths[i],
                paragraph(
                    run(f"{{{{ w.{heads[i]} }}}}", size=7.5, color=MUTED, semibold=True), props=align(i)
                ),
                props=head_rule,
            )
            for i in range(7)
        ),
        header=True,
    )
    line = row(
        *(
            cell(
                widths[i],
                paragraph(run(f"{{{{ line.{values[i]} }}}}", size=8.5), props=align(i)),
                props=line_rule,
            )
            for i in range(7)
        )
    )
    lines = table(
        widths,
        [header, control_row("{%tr for line in lines %}", 7), line, control_row("{%tr endfor %}", 7)],
        margins=(0.9, 1.1),
    )

    qr = cell(
        67,
        paragraph(
            run("{{ payment_qr | svg_image(17) }}"),
            run("  {{ w.scan if payment_qr else '' }}", size=6.5, color=MUTED),
        ),
        props='<w:vMerge w:val="restart"/><w:vAlign w:val="bottom"/>',
    )
    qr_more = cell(67, paragraph(), props="<w:vMerge/>")
    gross_rule = f"<w:tcBorders>{border('top', 0.6, MUTED)}</w:tcBorders>"
    totals = table(
        [67, 70, 28],
        [
            row(
                qr,
                cell(70, paragraph(run("{{ w.net }}"))),
                cell(28, paragraph(run("{{ totals.net }}"), props=right())),
            ),
            control_row("{%tr for group in taxes or [] %}", 3),
            row(
                qr_more,
                cell(70, paragraph(run("{{ w.tax.format(rate=group.rate, base=group.net) }}"))),
                cell(28, paragraph(run("{{ group.tax }}"), props=right())),
            ),
            control_row("{%tr endfor %}", 3),
            row(
                qr_more,
                cell(70, paragraph(run("{{ w.gross }}", bold=True)), props=gross_rule),
                cell(28, paragraph(run("{{ totals.gross }}", bold=True), props=right()), props=gross_rule),
            ),
        ],
        margins=(0, 0.9),
    )

    bank_rows = (
        '[(w.account, seller.bank), ("IBAN", seller.iban), ("BIC", seller.bic), (w.reference, number)]'
    )
    accent = f"<w:tcBorders>{border('left', 1.5, ACCENT)}</w:tcBorders>"
    bank = table(
        [40, 80],
        [
            control_row(f"{{%tr for label, value in {bank_rows} if value %}}", 2),
            row(
                cell(40, paragraph(run("{{ label }}", size=9, color=MUTED)), props=accent),
                cell(80, paragraph(run("{{ value }}", size=9))),
            ),
            control_row("{%tr endfor %}", 2),
        ],
        margins=(3, 0.6),
    )

    return [
        control(LABELS),
        control(WORDS),
        # The body of page 1 starts at y 98.46: 22 mm top margin plus this 76.46 mm spacer.
        paragraph(
            props=f'<w:spacing w:line="{twips(76.46)}" w:lineRule="exact"/><w:rPr><w:sz w:val="2"/></w:rPr>'
        ),
        paragraph(run("{{ w.title }} {{ number }}", size=13, color=ACCENT, semibold=True), after=10),
        paragraph(run("{{ w.intro }}"), after=8),
        lines,
        paragraph(after=4),
        totals,
        paragraph(after=4),
        control("{%p if tax_exemption_reason %}"),
        paragraph(run("{{ tax_exemption_reason }}"), after=8),
        control("{%p endif %}"),
        paragraph(run("{{ w.supply_note.format(date=delivery_date) }}"), after=8),
        paragraph(
            run("{% if due_date %}{{ w.pay_by[0] }}"),
            run("{{ due_date }}", bold=True),
            run(
                "{{ w.pay_by[1] }}{% else %}{{ w.pay }}{% endif %}"
                "{% if payment_terms %} {{ payment_terms }}{% endif %}"
            ),
            after=8,
        ),
        control("{%p if seller.iban %}"),
        bank,
        paragraph(after=4),
        control("{%p endif %}"),
        control("{%p if note %}"),
        paragraph(run("{{ note }}"), after=8),
        control("{%p endif %}"),
        control("{%p if default_notice %}"),
        paragraph(run("{{ w.default_notice }}"), after=8),
        control("{%p endif %}"),
    ]


def replace_content(container: object, parts: list[str]) -> None:
    """Replace the paragraphs of a python-docx header, footer or body with ``parts``."""
    element = getattr(container, "_element", container)
    keep = [child for child in element if child.tag.endswith("}sectPr")]
    for child in list(element):
        element.remove(child)
    for part in parts:
        element.append(parse_xml(part))
    for child in keep:
        element.append(child)


def build(target: Path) -> None:
    """Write the template to ``target``."""
    document = Document()
    section = document.sections[0]
    section.start_type = WD_SECTION.NEW_PAGE
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.left_margin, section.right_margin = Mm(25), Mm(20)
    section.top_margin, section.bottom_margin = Mm(22), Mm(32)
    section.header_distance, section.footer_distance = Mm(12), Mm(6)
    section.different_first_page_header_footer = True

    normal = document.styles["Normal"]
    normal.font.name = "Inter"
    normal.font.size = Pt(9.5)
    rpr = normal.element.get_or_add_rPr()
    rpr.append(parse_xml(f'<w:color {W} w:val="{INK}"/>'))
    rpr.append(parse_xml(f'<w:lang {W} w:val="de-DE"/>'))
    normal.paragraph_format.space_after = Pt(0)
    normal.paragraph_format.line_spacing = 1.15

    properties = document.core_properties
    properties.author = "{{ seller.name | safe }}"
    properties.title = '{{ "Invoice" if lang == "en" else "Rechnung" }} {{ number | safe }}'
    properties.comments = properties.subject = properties.keywords = ""
    properties.last_modified_by = "postroom"
    properties.revision = 1

    replace_content(section.first_page_header, first_page_header())
    replace_content(section.header, running_header())
    replace_content(section.first_page_footer, footer())
    replace_content(section.footer, footer())
    replace_content(document.element.body, body())
    document.save(str(target))


if __name__ == "__main__":
    build(HERE / "invoice.docx")
    print(f"wrote {HERE / 'invoice.docx'}")
