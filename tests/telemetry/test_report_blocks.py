"""Report building blocks: cell formatting, rich and HTML tables, embedded PNGs, panels."""

from __future__ import annotations

import base64
import io
import re
import struct

from rich.console import Console

from evolora.telemetry.report import (
    Panel,
    Section,
    Table,
    embed_png,
    format_value,
    html_page,
    html_table,
    plot_panels,
    print_sections,
    write_html,
)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return struct.unpack(">II", data[16:24])  # IHDR width, height


def test_format_value():
    assert format_value(None) == "—"
    assert format_value(float("nan")) == "—"
    assert format_value(True) == "yes"
    assert format_value(3) == "3"
    assert format_value(0.123456) == "0.1235"
    assert format_value(1234.5678) == "1235"
    assert format_value(0.0) == "0"
    assert format_value(0.0000123) == "1.23e-05"
    assert format_value("math:1") == "math:1"


def test_html_table_escapes_cells_and_says_when_empty():
    table = Table("Costs <&>", ["name", "value"], [["<script>x</script>", 0.5], ["b", None]])
    text = html_table(table)
    assert "<script>" not in text
    assert "&lt;script&gt;x&lt;/script&gt;" in text
    assert "<caption>Costs &lt;&amp;&gt;</caption>" in text
    assert text.count("<tr>") == 3  # header + two rows
    assert "<td>0.5</td>" in text and "<td>—</td>" in text
    empty = html_table(Table("Nothing", ["a", "b"], []))
    assert '<td colspan="2">nothing recorded yet</td>' in empty


def test_png_panels_and_a_self_contained_page(tmp_path):
    panels = [
        Panel("energy", {"mean": ([1, 2, 3], [1.0, 2.0, 1.5]), "total": ([1, 2, 3], [3, 6, 4])}),
        Panel("share", {"a": ([1, 2, 3], [0.5, 0.4, 1.0]), "b": ([1, 2], [0.5, 0.6])}, "stack"),
        Panel("nothing", {"empty": ([], [])}),
    ]
    png = plot_panels(tmp_path / "plots" / "energy.png", "Energy", panels)
    data = png.read_bytes()
    width, height = _png_size(data)
    assert (width, height) == (900, 870)  # 9 x (3 x 2.6 + 0.9) inches at 100 dpi
    assert b"matplotlib.org" not in data  # no Software tag that names a web address

    tag = embed_png(png, alt="energy")
    encoded = re.fullmatch(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="energy">', tag)
    assert encoded and base64.b64decode(encoded.group(1)) == data

    sections = [
        Section("Energy", [Table("Totals", ["k", "v"], [["total", 3.0]])], [png]),
        Section("Empty", [Table("Attempts", ["gen"], [])]),
    ]
    page = write_html(tmp_path / "index.html", "Run <1>", sections, subtitle="gen 3")
    text = page.read_text(encoding="utf-8")
    assert text == html_page("Run <1>", sections, subtitle="gen 3")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "<title>Run &lt;1&gt;</title>" in text
    assert text.count('<img src="data:image/png;base64,') == 1
    assert "http" not in text.replace(encoded.group(1), "")
    assert "<h2>Energy</h2>" in text and "<h2>Empty</h2>" in text


def test_print_sections_shows_titles_rows_and_empty_tables_literally():
    buffer = io.StringIO()
    console = Console(file=buffer, width=100, force_terminal=False)
    sections = [
        Section(
            "Assimilation",
            [
                Table("Gating [totals]", ["counter", "count"], [["gate/[energy]", 2]], note="n"),
                Table("Snapshots", ["gen"], []),
            ],
        )
    ]
    print_sections(console, sections)
    out = buffer.getvalue()
    assert "Assimilation" in out
    assert "Gating [totals]" in out  # rich markup in titles and cells is printed as text
    assert re.search(r"gate/\[energy\]\s+2", out)
    assert "Snapshots" in out and "nothing recorded yet" in out
