"""The HTML reports render in a browser: every picture's file exists, tables are whole, no Markdown leaks.

The demo's report is made from a fake results dict and tiny PNGs (no demo run);
the converter is also checked on the constructs it promises.
"""

from html.parser import HTMLParser
from pathlib import Path

import numpy as np

from selfpose.demo import write_report
from selfpose.utils.markdown import inline, markdown_to_html, page

MARKDOWN_SYNTAX = ("|---", "![", "](", "**", "## ")


class Page(HTMLParser):
    """Tags, image sources and visible text of an HTML page; checks that tags nest."""

    VOID = {"img", "meta", "br", "hr", "link", "input"}

    def __init__(self, text: str):
        super().__init__()
        self.stack, self.tags, self.imgs, self.text, self.errors = [], [], [], [], []
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        if tag == "table":
            self.tables.append([])
        if tag == "tr":
            self.tables[-1].append([])
        if tag in ("td", "th"):
            self._cell = []
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self.stack and self.stack[-1] in ("style", "title"):
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def _png(path: Path) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((8, 8, 3), 128, np.uint8))


FAKE = {
    "budget": {"labels": 0.01}, "seconds": {"synth": 1.0, "pretrain": 2.0}, "train_frames": 1200,
    "test_frames": 300, "pretrain_steps": 30, "labelled_frames": 12, "check_ok": True,
    "full_method": {"mpjpe": 120.0, "n_mpjpe": 110.0, "p_mpjpe": 80.0, "frames": 300, "box_iou": 0.61},
    "random_same_crop": {"mpjpe": 180.0, "n_mpjpe": 170.0, "p_mpjpe": 120.0, "frames": 300, "box_iou": 0.61},
    "box_camera_ridge": {"mpjpe": 200.0, "n_mpjpe": 190.0, "p_mpjpe": 130.0, "frames": 300, "box_iou": None},
    "box_camera_knn": {"mpjpe": 210.0, "n_mpjpe": 195.0, "p_mpjpe": 125.0, "frames": 300, "box_iou": None},
    "mean_pose": {"mpjpe": 220.0, "n_mpjpe": 205.0, "p_mpjpe": 140.0, "frames": 300, "box_iou": float("nan")},
    "kmeans_v": 0.3, "kmeans_i": 0.9, "chance": 0.25, "pose_from_v": {"val_n_mpjpe": 100.0}, "pose_from_i": None,
}
# The demo's real captions: parentheses, colons and '|' inside alt texts broke the old converter.
PICTURES = {
    "Training curves": "training_curves.png",
    "Input | crop | decoded crop | mask | recomposed (training data, last picture log)": "reconstruction.png",
    "Detections on held-out people (yellow: predicted, cyan: true)": "detections.png",
    "Predicted (dashed) vs true 3D, held-out people": "poses.png",
    "Transfers: row = pose (v), column = appearance (i)": "analysis/transfers.png",
}


def test_demo_report_html_renders(tmp_path):
    for rel in PICTURES.values():
        _png(tmp_path / rel)
    md = write_report(tmp_path, FAKE, PICTURES)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    doc = Page(html)
    assert not doc.errors and doc.stack == []
    # Every picture, by its own path, and the file is there.
    assert [i["src"] for i in doc.imgs] == list(PICTURES.values())
    for img in doc.imgs:
        assert (tmp_path / img["src"]).is_file(), img
    assert [i["alt"] for i in doc.imgs] == list(PICTURES)
    # One whole table: a header row, the full method and the four references, five cells each.
    assert len(doc.tables) == 1
    table = doc.tables[0]
    assert [r[0] for r in table] == ["method", "full method (DSL-STN-Dec-Split)", "random encoder, same crop",
                                     "box + camera only (ridge)", "box + camera only (10-NN)", "mean pose"]
    assert all(len(r) == 5 for r in table)
    assert table[1][1] == "110.0" and table[3][4] == "–" and table[5][4] == "–"   # no IoU (None, NaN): a dash
    text = "".join(doc.text)
    for syntax in MARKDOWN_SYNTAX:
        assert syntax not in text, syntax
    assert not [line for line in text.splitlines() if line.strip().startswith("|")]   # no leaked table row
    assert "selfpose demo" in text and "Data check: passed" in text
    assert html.count("<img") == md.read_text().count("![")


def test_converter_constructs():
    body = markdown_to_html(
        "# Title\n\nSome **bold** and *soft* text with `a|b` and a [link](x.html).\n"
        "Second line of the paragraph.\n\n"
        "| a | b (mm) |\n|:---|---:|\n| 1 | 2 |\n| x \\| y | 3 |\n\n"
        "- one\n- two\n\n1. first\n2. second\n\n"
        "```\ncode <b>\n```\n\n---\n\n![A (b): c](d/e.png)\n")
    doc = Page(body)
    assert not doc.errors and doc.stack == []
    assert doc.tags.count("p") == 2 and "h1" in doc.tags and "hr" in doc.tags
    assert doc.tables == [[["a", "b (mm)"], ["1", "2"], ["x | y", "3"]]]
    assert '<td style="text-align:right">2</td>' in body
    assert "<strong>bold</strong>" in body and "<em>soft</em>" in body and "<code>a|b</code>" in body
    assert '<a href="x.html">link</a>' in body
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in body and "<ol>" in body
    assert "<pre><code>code &lt;b&gt;</code></pre>" in body
    assert doc.imgs == [{"src": "d/e.png", "alt": "A (b): c"}]


def test_inline_escapes_and_leaves_plain_stars():
    assert inline("2 * 3 * 4 <x> & y") == "2 * 3 * 4 &lt;x&gt; &amp; y"
    assert inline("P0–P3, **not** ok") == "P0–P3, <strong>not</strong> ok"
    assert inline('![a"b](c.png)') == '<img src="c.png" alt="a&quot;b">'


def test_page_is_a_whole_document():
    html = page("# T\n\ntext", "a <title>")
    doc = Page(html)
    assert not doc.errors and doc.stack == []
    assert doc.tags[:4] == ["html", "head", "meta", "title"] and "<title>a &lt;title&gt;</title>" in html
