from __future__ import annotations

from typing import Any

import pytest

from router.catalog.modelfile import Modelfile, from_fields, merge, parameters_text, parse_modelfile, render
from router.errors import BadRequest

LLAMA = Modelfile(base="llama3")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FROM llama3", LLAMA),
        ("from llama3\n", LLAMA),
        ("# a comment\n\n   # indented comment\n\tFROM   llama3   \n\n", LLAMA),
        ('FROM "./models/my model.gguf"', Modelfile(base="./models/my model.gguf")),
        ("\ufeffFROM llama3\r\nSYSTEM hi\r\n", Modelfile(base="llama3", system="hi")),
        # Case-insensitive instructions; a bare value runs to the end of the line, trimmed.
        ("FROM llama3\nSyStEm   You are a pirate.  ", Modelfile(base="llama3", system="You are a pirate.")),
        # Triple quotes span lines and keep inner whitespace; double quotes may span lines too (Ollama).
        (
            'FROM llama3\nTEMPLATE """{{ .System }}\n  {{ .Prompt }} """',
            Modelfile(base="llama3", template="{{ .System }}\n  {{ .Prompt }} "),
        ),
        ('FROM llama3\nSYSTEM "two\nlines"', Modelfile(base="llama3", system="two\nlines")),
        ('FROM llama3\nSYSTEM """say "hi""""', Modelfile(base="llama3", system='say "hi"')),
        ('FROM llama3\nSYSTEM """a""" b"""', Modelfile(base="llama3", system='a""" b')),
        # The last SYSTEM wins; an empty one means "unset", as in Ollama.
        ("FROM llama3\nSYSTEM one\nSYSTEM two", Modelfile(base="llama3", system="two")),
        ('FROM llama3\nSYSTEM one\nSYSTEM ""', LLAMA),
        # Typed values; repeated stop accumulates, any other repeat is last-wins.
        (
            "FROM llama3\nPARAMETER temperature 1\nPARAMETER top_k 40\nPARAMETER seed -1\nPARAMETER top_k +7\n"
            "PARAMETER use_mmap false\nPARAMETER min_p .05\nPARAMETER penalize_newline T\nPARAMETER mirostat_eta 1e-3",
            Modelfile(
                base="llama3",
                parameters={
                    "temperature": 1.0,
                    "top_k": 7,
                    "seed": -1,
                    "use_mmap": False,
                    "min_p": 0.05,
                    "penalize_newline": True,
                    "mirostat_eta": 0.001,
                },
            ),
        ),
        (
            'FROM llama3\nPARAMETER stop <|im_end|>\nparameter stop "<|im_start|>"\nPARAMETER stop "\n"\n'
            'PARAMETER stop " ok "',
            Modelfile(base="llama3", parameters={"stop": ["<|im_end|>", "<|im_start|>", "\n", " ok "]}),
        ),
        (
            'FROM llama3\nMESSAGE user Is Paris in France?\nMESSAGE assistant "Yes."\nmessage system """be\nbrief"""\n'
            "MESSAGE tool {}",
            Modelfile(
                base="llama3",
                messages=(
                    {"role": "user", "content": "Is Paris in France?"},
                    {"role": "assistant", "content": "Yes."},
                    {"role": "system", "content": "be\nbrief"},
                    {"role": "tool", "content": "{}"},
                ),
            ),
        ),
        (
            'FROM llama3\nLICENSE MIT\nLICENSE """Apache\n2.0"""',
            Modelfile(base="llama3", license=("MIT", "Apache\n2.0")),
        ),
        # REQUIRES is checked, then ignored: it names a minimum Ollama version.
        ("REQUIRES 0.14.0\nFROM llama3", LLAMA),
    ],
)
def test_parse_valid(text: str, expected: Modelfile) -> None:
    assert parse_modelfile(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: no FROM line"),
        ("# only a comment\nSYSTEM hi\n", "line 2: no FROM line"),
        ("FROM a\nFROM b", "line 2: a second FROM line"),
        ("SYSTEM hi\nFROM", "line 2: FROM needs a model name or a path"),
        ("FROM a\n\nPARAMETER temprature 0.7", 'line 3: unknown parameter "temprature"'),
        ("FROM a\nPARAMETER Temperature 0.7", 'line 2: unknown parameter "Temperature"'),
        ("FROM a\nPARAMETER temperature hot", 'line 2: parameter "temperature" must be a number, got "hot"'),
        ("FROM a\nPARAMETER temperature nan", 'line 2: parameter "temperature" must be a number, got "nan"'),
        ("FROM a\nPARAMETER temperature 1e999", 'line 2: parameter "temperature" must be a number, got "1e999"'),
        ("FROM a\nPARAMETER top_k 1.5", 'line 2: parameter "top_k" must be an integer, got "1.5"'),
        ("FROM a\nPARAMETER num_ctx 4_096", 'line 2: parameter "num_ctx" must be an integer, got "4_096"'),
        ("FROM a\nPARAMETER seed 9223372036854775808", 'line 2: parameter "seed" must be an integer'),
        ("FROM a\nPARAMETER use_mmap yes", 'line 2: parameter "use_mmap" must be a boolean'),
        ("FROM a\nPARAMETER temperature 0.7 # warm", 'line 2: parameter "temperature" must be a number'),
        ("FROM a\nPARAMETER temperature", "line 2: PARAMETER needs a parameter name and a value"),
        ("FROM a\nMESSAGE user", "line 2: MESSAGE needs a role and content"),
        ("FROM a\n\n\n\nMESSAGE bot hello", 'line 5: invalid message role "bot"'),
        ("FROM a\nMESSAGE User hello", 'line 2: invalid message role "User"'),
        ("FROM a\nADAPTER ./lora.gguf", "line 2: LoRA adapters are not supported by Herd"),
        ("FROM a\nDRAFT small", "line 2: draft models for speculative decoding are not supported by Herd"),
        ("FROM a\nRENDERER qwen3", "line 2: RENDERER names Ollama-internal prompt code"),
        ("FROM a\nSTOP x", 'line 2: unknown instruction "STOP"'),
        # A forgotten quote: the template's second line is read as an instruction.
        ("FROM a\nTEMPLATE {{ .System }}\n{{ .Prompt }}", 'line 3: unknown instruction "{{"'),
        ('FROM a\nSYSTEM """never\nclosed\n', 'line 2: unterminated """ quote'),
        ('FROM a\nSYSTEM ok\nSYSTEM "never closed', 'line 3: unterminated " quote'),
        ('FROM a\nTEMPLATE """x\nSYSTEM """\nFROM b', "line 4: a second FROM line"),
        ("REQUIRES latest\nFROM a", "line 1: requires must be a valid semver"),
    ],
)
def test_parse_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_modelfile(text)
    assert info.value.status == 400
    assert info.value.message.startswith(message), info.value.message


def _fields(**overrides: Any) -> dict[str, Any]:
    defaults = {"base": "llama3", "system": None, "template": None, "parameters": None, "messages": None}
    return defaults | {"license": None} | overrides


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, LLAMA),
        ({"base": "  llama3 ", "system": "", "template": "", "license": ""}, LLAMA),
        (
            {
                "system": "Be brief.",
                "template": "{{ .Prompt }}",
                "parameters": {"temperature": 1, "num_ctx": 4096.0, "stop": "END", "seed": None, "use_mmap": True},
                "messages": [{"role": "USER", "content": "hi", "images": []}, {"role": "assistant"}],
                "license": ["MIT", "Apache-2.0"],
            },
            Modelfile(
                base="llama3",
                system="Be brief.",
                template="{{ .Prompt }}",
                parameters={"temperature": 1.0, "num_ctx": 4096, "stop": ["END"], "use_mmap": True},
                messages=({"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}),
                license=("MIT", "Apache-2.0"),
            ),
        ),
        ({"parameters": {"stop": []}, "license": "MIT"}, Modelfile(base="llama3", license=("MIT",))),
    ],
)
def test_from_fields(overrides: dict[str, Any], expected: Modelfile) -> None:
    assert from_fields(**_fields(**overrides)) == expected


@pytest.mark.parametrize(
    ("overrides", "message", "param"),
    [
        ({"base": ""}, "from is required", "from"),
        ({"parameters": {"temprature": 0.7}}, 'unknown parameter "temprature"', "parameters"),
        ({"parameters": {"top_k": 1.5}}, 'parameter "top_k" must be an integer', "parameters"),
        ({"parameters": {"top_k": True}}, 'parameter "top_k" must be an integer', "parameters"),
        ({"parameters": {"temperature": "0.7"}}, 'parameter "temperature" must be a number', "parameters"),
        ({"parameters": {"use_mmap": 1}}, 'parameter "use_mmap" must be a boolean', "parameters"),
        ({"parameters": {"stop": ["a", 1]}}, 'parameter "stop" must be a string or an array', "parameters"),
        ({"parameters": ["temperature"]}, "parameters must be an object", "parameters"),
        ({"messages": [{"role": "bot", "content": "x"}]}, "invalid message role 'bot'", "messages"),
        ({"messages": ["hello"]}, "invalid message role None", "messages"),
        ({"messages": [{"role": "user", "content": ["part"]}]}, "message content must be a string", "messages"),
        ({"system": 3}, "system must be a string", "system"),
        ({"license": 3}, "license must be a string or an array", "license"),
        ({"system": 'a"""\nb'}, 'system has a line ending in """', None),
        ({"parameters": {"stop": ['x """ \n']}}, 'stop has a line ending in """', None),
        ({"messages": [{"role": "user", "content": '"""\n"""'}]}, 'message content has a line ending in """', None),
    ],
)
def test_from_fields_errors(overrides: dict[str, Any], message: str, param: str | None) -> None:
    with pytest.raises(BadRequest) as info:
        from_fields(**_fields(**overrides))
    assert info.value.message.startswith(message), info.value.message
    assert info.value.param == param


PARENT = Modelfile(
    base="hf://Qwen/Qwen2.5-0.5B-Instruct",
    parameters={"temperature": 0.7, "stop": ["<|im_end|>"], "num_ctx": 4096},
    system="parent system",
    template="parent template",
    license=("Apache-2.0",),
    messages=({"role": "user", "content": "parent"},),
)


@pytest.mark.parametrize(
    ("child", "expected"),
    [
        (Modelfile(base="qwen"), PARENT),
        (
            Modelfile(base="qwen", parameters={"temperature": 0.1, "stop": ["END"]}, system="child system"),
            Modelfile(
                base=PARENT.base,
                parameters={"temperature": 0.1, "stop": ["END"], "num_ctx": 4096},
                system="child system",
                template="parent template",
                license=PARENT.license,
                messages=PARENT.messages,
            ),
        ),
        (
            Modelfile(base="qwen", template="t", license=("MIT",), messages=({"role": "user", "content": "child"},)),
            Modelfile(
                base=PARENT.base,
                parameters=PARENT.parameters,
                system="parent system",
                template="t",
                license=("MIT",),
                messages=({"role": "user", "content": "child"},),
            ),
        ),
    ],
)
def test_merge_child_wins_key_by_key(child: Modelfile, expected: Modelfile) -> None:
    assert merge(PARENT, child) == expected


def test_merge_does_not_share_the_stop_list_with_the_parent() -> None:
    merged = merge(PARENT, Modelfile(base="qwen"))
    merged.parameters["stop"].append("X")
    assert PARENT.parameters["stop"] == ["<|im_end|>"]


ROUND_TRIP = [
    "FROM llama3",
    'FROM "./my models/x.gguf"\nSYSTEM " padded "',
    'FROM llama3\nTEMPLATE """{{ if .System }}<|system|>{{ .System }}{{ end }}\n<|user|>\n{{ .Prompt }}"""',
    'FROM llama3\nSYSTEM """He said "hi"\nthen left."""',
    'FROM llama3\nSYSTEM """"quoted" start and end """"',
    'FROM llama3\nSYSTEM """""\nstarts with two quotes"""',
    'FROM llama3\nSYSTEM "a\n\n  b"\nLICENSE ""\nLICENSE """MIT\nLicense"""',
    'FROM llama3\nPARAMETER stop <|im_end|>\nPARAMETER stop """\n"""\nPARAMETER stop """""""\nPARAMETER stop \'\'',
    'FROM llama3\nPARAMETER stop " lead"\nPARAMETER stop "a \\"q\\" b"\nPARAMETER stop ""',
    "FROM llama3\nPARAMETER temperature 1\nPARAMETER top_p 0.95\nPARAMETER num_ctx 131072\nPARAMETER min_p 1e-7\n"
    "PARAMETER repeat_penalty 1e6\nPARAMETER use_mmap false\nPARAMETER seed -42",
    'FROM llama3\nMESSAGE user ""\nMESSAGE assistant " two\nlines "\nMESSAGE user """say "x"\nnow"""',
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_render_round_trips(text: str) -> None:
    mf = parse_modelfile(text)
    assert mf != Modelfile() and parse_modelfile(render("m:latest", mf)) == mf


def test_from_fields_values_round_trip() -> None:
    mf = from_fields(
        **_fields(
            system='ends with a quote"',
            parameters={"stop": ['"', '""', "\n", "  "], "temperature": 0.123456789},
            messages=[{"role": "user", "content": '"""'}],
        )
    )
    assert parse_modelfile(render("m", mf)) == mf


def test_render_layout() -> None:
    mf = Modelfile(
        base="hf://org/model",
        parameters={"temperature": 0.7, "stop": ["<|im_end|>", " "], "num_ctx": 4096},
        system="Be brief.",
        template="{{ .Prompt }}",
        license=("MIT",),
        messages=({"role": "user", "content": "hi"},),
    )
    assert render("mymodel:latest", mf) == (
        '# Modelfile generated by "herd show"\n'
        "# To build a new Modelfile based on this, replace FROM with:\n"
        "# FROM mymodel:latest\n"
        "\n"
        "FROM hf://org/model\n"
        'TEMPLATE """{{ .Prompt }}"""\n'
        'SYSTEM """Be brief."""\n'
        "PARAMETER num_ctx 4096\n"
        "PARAMETER stop <|im_end|>\n"
        'PARAMETER stop " "\n'
        "PARAMETER temperature 0.7\n"
        "MESSAGE user hi\n"
        'LICENSE """MIT"""\n'
    )


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({}, ""),
        (
            {"temperature": 0.7, "stop": ["<|im_end|>", 'say "x"\n'], "num_ctx": 4096, "use_mmap": True},
            "num_ctx                        4096\n"
            'stop                           "<|im_end|>"\n'
            'stop                           "say \\"x\\"\\n"\n'
            "temperature                    0.7\n"
            "use_mmap                       true",
        ),
        # Go's %v for floats: shortest digits, exponent form below 1e-4 and from 1e6 up.
        ({"repeat_penalty": 1.0}, "repeat_penalty                 1"),
        ({"top_p": 0.0001}, "top_p                          0.0001"),
        ({"min_p": 0.00001}, "min_p                          1e-05"),
        ({"tfs_z": 999999.5}, "tfs_z                          999999.5"),
        ({"mirostat_tau": 1234567.0}, "mirostat_tau                   1.234567e+06"),
        ({"presence_penalty": -1e21}, "presence_penalty               -1e+21"),
        ({"stop": ["\x00\t\u00a0é"]}, 'stop                           "\\x00\\t\\u00a0é"'),
    ],
)
def test_parameters_text(parameters: dict[str, Any], expected: str) -> None:
    assert parameters_text(parameters) == expected
