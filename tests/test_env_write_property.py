"""The law of the ``.env`` merge, checked with python-dotenv on generated files.

Any Unicode (U+2028, U+0085, form feeds, lone CRs in values and whitespace), any line endings,
single- and double-quoted values that span lines, comments, ``export`` prefixes, blank lines,
lines python-dotenv cannot parse, a byte-order mark; then a set of ``RETRY__*`` variables to
set. After :func:`retrysim.env_write.merge_text`, python-dotenv (``dotenv_values`` on a
stream, as read raw and as a plain ``open()`` reads it with universal newlines) must read
every other variable as before and each set one as its new value, and every binding the merge
did not change must keep its exact text. Pure text, no file system: 10,000 examples.
"""

from __future__ import annotations

import io
import itertools
import logging
from collections.abc import Iterator

import pytest
from dotenv import dotenv_values
from dotenv.parser import parse_stream
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrysim.env_write import EnvFileError, merge_text

TARGETS = ("RETRY__WORKER_MAX_ATTEMPTS", "RETRY__WORKER_MAX_WAIT", "RETRY__PROFILE")
ODD = "\u2028\u2029\x85\x0c\x0b\x1c\x1d\x1e\r\n\t \u00a0\ufeff'\"#=\\$"

plain = st.text(max_size=6)  # any Unicode (hypothesis draws a whole string at once: fast)
odd = st.sampled_from(ODD)  # and, somewhere in it, one of the characters that break readers
anything = st.one_of(plain, st.tuples(plain, odd, plain).map("".join))
one_line = anything.map(lambda text: text.replace("\r", "\u2028").replace("\n", "\x85"))
endings = st.sampled_from(["\n", "\r\n", "\r"])
NAMES = (*TARGETS, *(t.lower() for t in TARGETS), "A", "B_2", "RETRY__OTHER", "RETRY__X_Y")
keys = st.one_of(
    st.sampled_from([*NAMES, *(f"'{name}'" for name in NAMES)]),
    st.text(min_size=1, max_size=5).filter(lambda k: not any(c in "=#'" or c.isspace() for c in k)),
)
values = st.one_of(
    one_line,
    anything.map(lambda t: "'" + t.replace("\\", "\\\\").replace("'", "\\'") + "'"),
    anything.map(lambda t: '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    st.sampled_from(["", "'unclosed", '"unclosed', "x # comment", "'q' # c", "${A}"]),
)
#: Whitespace before, ``export``, the ``=`` and its spacing, a comment after: one draw.
SHAPES = list(
    itertools.product(
        ["", " ", "\u2028", "\x0c"],
        ["", "export ", "export\t"],
        ["=", " = ", "= ", "\t=", ""],
        ["", " # note", "  #", "#x"],
    )
)


def binding(shape: tuple[str, str, str, str], key: str, value: str) -> str:
    space, export, equals, comment = shape
    return space + export + key + equals + (value if equals else "") + comment


lines = st.one_of(
    st.builds(binding, st.sampled_from(SHAPES), keys, values),
    st.sampled_from(["", " ", "\t", "\u2028", "\x85", "\x0c", "# comment", "  # a 'quote"]),
    one_line,  # anything at all, parsable or not
)


def env_file(body: list[tuple[str, str]], unended: bool, bom: bool) -> str:
    text = "".join(line + ending for line, ending in body)
    if body and unended:  # the last line without its line ending
        text = text[: -len(body[-1][1])]
    return ("\ufeff" if bom else "") + text


env_files = st.builds(
    env_file, st.lists(st.tuples(lines, endings), max_size=8), st.booleans(), st.booleans()
)


def writable(value: str) -> bool:
    """What retrysim may write: no line break (a plain open() would read it back as another),
    no ``${`` (python-dotenv would expand it); merge_text refuses the rest as a bug."""
    return not any(part in value for part in ("${", "\r", "\n"))


new_values = st.one_of(
    st.sampled_from(["6", "2.5", "true", "standard", "0"]),
    anything.filter(writable),
)
to_set = st.dictionaries(st.sampled_from(TARGETS), new_values, min_size=1)


@pytest.fixture(autouse=True, scope="module")
def quiet_dotenv() -> Iterator[None]:
    """python-dotenv logs a warning per line it cannot parse: thousands here, all expected."""
    logger = logging.getLogger("dotenv.main")
    logger.disabled = True
    yield
    logger.disabled = False


def read(text: str, universal: bool) -> dict[str, str | None]:
    stream = io.StringIO(text, newline=None) if universal else io.StringIO(text)
    return dict(dotenv_values(stream=stream, interpolate=False))


def others(values: dict[str, str | None], names: dict[str, str]) -> dict[str, str | None]:
    return {k: v for k, v in values.items() if k.lower() not in names}


@pytest.mark.slow  # about 35 s of CPU: 10,000 generated files
@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(env_files, to_set, st.sampled_from(["", "retrysim tune on a\nb\rc"]))
def test_the_merge_changes_only_what_it_sets(text: str, wanted: dict[str, str], note: str) -> None:
    try:
        merged, _ = merge_text(text, wanted, note)
    except EnvFileError:  # refused only where python-dotenv itself cannot read a line
        assert any(b.error for b in parse_stream(io.StringIO(text)))
        return
    names = {name.lower(): name for name in wanted}
    for universal in (False, True):
        before, after = read(text, universal), read(merged, universal)
        assert others(after, names) == others(before, names)
        for key, value in after.items():
            if key.lower() in names:
                assert value == wanted[names[key.lower()]]
        assert names.keys() <= {key.lower() for key in after}
    old = list(parse_stream(io.StringIO(text)))
    new = list(parse_stream(io.StringIO(merged)))
    lead = "\ufeff" if text.startswith("\ufeff") else ""
    done = lead
    for index, was in enumerate(old):  # the file's own bindings, one for one, in place
        now = new[index]
        if was.key is not None and was.key.lower() in names:
            assert (now.key, now.value) == (was.key, wanted[names[was.key.lower()]])
        elif index < len(old) - 1:
            assert now.original.string == was.original.string
        else:  # the last may run on into appended lines: its text must still come first
            assert merged[len(done) :].startswith(was.original.string)
        done += now.original.string
    assert merged.startswith(lead)
