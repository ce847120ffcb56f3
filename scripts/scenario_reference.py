"""Rewrite README's "Scenario reference" from the scenario models, or check that it is current.

    python scripts/scenario_reference.py          # rewrite the block (atomically)
    python scripts/scenario_reference.py --check  # exit 1 if the README's block is stale

The block lies between the ``START`` and ``END`` markers below and is exactly
``retrysim.model.reference.markdown()`` with a line saying where it comes from;
tests/test_scenario_reference.py fails when the README's block is anything else. Keys that say
nothing of what they model are listed on stderr: give them a ``description=``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the models of this checkout, whatever is installed
README = ROOT / "README.md"
START = "<!-- scenario-reference:start -->"
END = "<!-- scenario-reference:end -->"
GENERATED = (
    "<!-- Generated from the scenario models by `python scripts/scenario_reference.py`; "
    "edit the models, not this block. -->"
)


def block() -> str:
    """What belongs between the markers."""
    from retrysim.model.reference import markdown

    return f"\n{GENERATED}\n\n{markdown()}"


def current(text: str) -> str:
    """What is between the markers of ``text``; ValueError unless each is there once, in order."""
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise ValueError(f"README.md needs one {START} and, after it, one {END}")
    return text.split(START, 1)[1].split(END, 1)[0]


def spliced(text: str) -> str:
    """``text`` with the block between the markers made current."""
    current(text)  # the markers are there
    head, rest = text.split(START, 1)
    return head + START + block() + END + rest.split(END, 1)[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is stale")
    args = parser.parse_args(argv)
    from retrysim.model.reference import undocumented
    from retrysim.output import write_text

    for where in undocumented():
        print(f"warning: no description: {where}", file=sys.stderr)
    text = README.read_text(encoding="utf-8")
    try:
        wanted = spliced(text)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if wanted == text:
        print("README.md: the scenario reference is current")
        return 0
    if args.check:
        print(
            "README.md: the scenario reference is stale; run python scripts/scenario_reference.py",
            file=sys.stderr,
        )
        return 1
    write_text(README, wanted)
    print("README.md: scenario reference rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
