"""Names and inputs go into the Temporal UI's markdown summaries and details escaped (issue 28)."""

import re

import pytest

from gecko_temporal.core.events import current_details, md_code, md_text, run_details, run_summary

HOSTILE = [
    "[l](javascript:alert(1))",
    "<img src=x onerror=alert(1)>",
    "**bold** _em_ `code` # head",
    "line\n# heading\n- item",
    "![i](http://x/y.png)",
    "a & b <b>",
]


def _unescaped(markdown: str) -> str:
    """What a CommonMark renderer shows for text made of md_text's escapes (entities, backslashes)."""
    text = re.sub(r"\\(.)", r"\1", markdown)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@pytest.mark.parametrize("name", HOSTILE)
def test_md_text_leaves_no_active_markdown_or_html(name):
    out = md_text(name)
    assert "<" not in out and ">" not in out and "\n" not in out
    assert not re.search(r"(?<!\\)[\[\]()`*_#!]", out), out  # every markdown character escaped
    assert _unescaped(out) == " ".join(name.splitlines())  # and people still read the same text


@pytest.mark.parametrize("text", ["plain", "a`b", "``x``", "`", ""])
def test_md_code_cannot_be_closed_early(text):
    out = md_code(text)
    fence = re.match(r"`+", out).group()
    assert out.endswith(fence) and fence not in out[len(fence) : -len(fence)]
    assert out[len(fence) : -len(fence)].strip(" ") == text.strip(" ") or text == ""


def test_ui_texts_escape_pipeline_node_session_and_input_names():
    evil = "[l](javascript:alert(1))<img src=x onerror=alert(1)>"
    texts = [
        run_summary(evil, 2, evil),
        run_details(evil, [evil, "ok"], evil, "layered", evil, evil),
        current_details("running", {evil: 1}, {evil: {"prompt": evil}}, 0, 2, 1, evil),
    ]
    for text in texts:
        outside_code = re.sub(r"(`+) .*? \1|(`+)[^`]*\2", "", text)
        assert "](" not in outside_code and "<img" not in outside_code, text
    assert run_summary("Pipe", 2, '"hi"') == 'Pipe: 2 nodes, input "hi"'


@pytest.mark.parametrize(
    "text, shown",
    [
        ("/tmp/pytest-of-root/test_the_ui_run0/gate.txt", "/tmp/pytest-of-root/test_the_ui_run0/gate.txt"),
        ("snake_case_name", "snake_case_name"),
        ("_private", "\\_private"),
        ("- not a list", "\\- not a list"),
        ("+ not a list", "\\+ not a list"),
        ("12. not a list", "12\\. not a list"),
        ("3) not a list", "3\\) not a list"),
        ("v1.2-rc", "v1.2-rc"),
        ("a ~~strike~~ b", "a \\~\\~strike\\~\\~ b"),
    ],
)
def test_md_text_escapes_only_what_could_act(text, shown):
    assert md_text(text) == shown
    assert _unescaped(md_text(text)) == text
