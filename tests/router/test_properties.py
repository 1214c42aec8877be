"""Property tests (hypothesis) on what parses and encodes untrusted text: the Modelfile parser and
renderer, the template renderer, and both protocols' encoders."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from router.api.ollama import encode as ollama_encode
from router.api.openai import encode as openai_encode
from router.catalog.modelfile import from_fields, parse_modelfile, render
from router.convert import template
from router.errors import BadRequest

# Any text a client may send, line and paragraph separators and lone surrogates' neighbours included.
TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=200)
LINE = st.text(st.characters(blacklist_categories=["Cs", "Cc", "Zl", "Zp"]), min_size=1, max_size=40).filter(
    lambda s: s.strip() == s and s
)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_a_modelfile_parser_answers_anything_with_a_modelfile_or_a_400(text: str) -> None:
    try:
        parse_modelfile(text)
    except BadRequest:  # a clear 400; any other exception fails the test
        pass


@settings(max_examples=200, deadline=None)
@given(
    system=TEXT, tmpl=TEXT, temperature=st.floats(0, 2), stop=st.lists(LINE, max_size=3), lic=st.lists(TEXT, max_size=2)
)
def test_a_rendered_modelfile_parses_back_to_the_same(
    system: str, tmpl: str, temperature: float, stop: list[str], lic: list[str]
) -> None:
    params: dict[str, object] = {"temperature": temperature} | ({"stop": stop} if stop else {})
    mf = from_fields(base="base:1", system=system, template=tmpl, parameters=params, messages=None, license=lic)
    assert parse_modelfile(render("m:1", mf)) == mf


@settings(max_examples=300, deadline=None)
@given(TEXT, st.dictionaries(st.sampled_from(["System", "Prompt", "Response"]), TEXT))
def test_templates_render_or_refuse_clearly(text: str, values: dict[str, str]) -> None:
    try:
        template.render(text, values)
    except BadRequest:
        pass


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_ollama_lines_are_one_ascii_line_that_reads_back(text: str) -> None:
    line = ollama_encode.chat_chunk("m", "t", text)
    assert line.endswith(b"\n") and b"\n" not in line[:-1] and line.isascii()
    assert len(line.decode().splitlines()) == 1  # ollama-python splits on every line boundary
    assert json.loads(line)["message"]["content"] == text


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_sse_frames_are_one_event_that_reads_back(text: str) -> None:
    frame = openai_encode.ChatChunks("id", 1, "m", include_usage=False).content(text)
    assert frame.startswith(b"data: ") and frame.endswith(b"\n\n") and b"\n" not in frame[:-2] and frame.isascii()
    assert json.loads(frame[len(b"data: ") :])["choices"][0]["delta"]["content"] == text
