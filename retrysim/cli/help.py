"""Help that reads cleanly: ``-h`` as well as ``--help``, no ``<bool>`` after plain flags.

Typer prints each option's Python type as its metavar (``--json <bool>``, ``--help <bool>``).
For a flag that takes no value that is noise; the command classes here give flags an empty
metavar before help is drawn. Options that take a value declare their own metavar (``N``,
``FILE``, ``KEY=VALUE``) where they are defined.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand, TyperGroup

#: Every command and group accepts both.
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}


def _quiet_flags(params: list[Any]) -> list[Any]:
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        elif param.param_type_name == "argument":
            # An argument's name is its metavar (SCENARIO, FILE...); its Python type beside it
            # (<str>, <list[Path]>) says nothing its help does not.
            param.display_type_rich = _no_type
    return params


def _no_type(ctx: Any) -> None:
    return None


class Command(TyperCommand):
    """A Typer command whose flags show no metavar in help."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _quiet_flags(super().get_params(ctx))


class Group(TyperGroup):
    """A Typer group whose flags show no metavar in help."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _quiet_flags(super().get_params(ctx))
