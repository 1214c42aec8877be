from __future__ import annotations

import pytest

from router.convert.template import render
from router.errors import BadRequest

VALUES = {"System": "Be kind.", "Prompt": "Hi"}


@pytest.mark.parametrize(
    ("template", "values", "expected"),
    [
        ("{{ .Prompt }}", VALUES, "Hi"),
        ("{{ .System }} {{ .Prompt }}", VALUES, "Be kind. Hi"),
        ("{{ if .System }}S:{{ .System }}\n{{ end }}U:{{ .Prompt }}", VALUES, "S:Be kind.\nU:Hi"),
        ("{{ if .System }}S:{{ .System }}\n{{ end }}U:{{ .Prompt }}", {"Prompt": "Hi"}, "U:Hi"),
        ("{{ if .System }}yes{{ else }}no{{ end }}", {}, "no"),
        ("{{ if .System }}yes{{ else }}no{{ end }}", VALUES, "yes"),
        ("A  {{- .Prompt -}}  B", VALUES, "AHiB"),
        ("{{ .Prompt }}\n{{- .Response }}!", VALUES, "Hi!"),
        ("{{ if .Prompt }}{{ if .System }}both{{ end }}{{ end }}", {"Prompt": "x"}, ""),
        ("no actions", VALUES, "no actions"),
    ],
)
def test_render(template: str, values: dict[str, str], expected: str) -> None:
    assert render(template, values) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ range .Messages }}x{{ end }}", "template: unsupported action {{ range .Messages }}"),
        ("{{ if .System }}x", "template: unclosed {{ if }}"),
        ("x{{ end }}", "template: {{ end }} without {{ if }}"),
        ("{{ else }}", "template: {{ else }} without {{ if }}"),
    ],
)
def test_unsupported_templates_are_clear_errors(template: str, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        render(template, VALUES)
    assert info.value.message == message
