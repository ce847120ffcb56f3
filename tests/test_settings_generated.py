"""The ``RETRY__*`` settings are generated from the policy options, so they cannot drift.

Every option marked ``FromSettings`` is a setting with the option's type, limits and the default
its mark documents; a value the policy would refuse is refused when the settings load, naming
the variable (``RETRY__WORKER_MAX_WAIT=2e9`` once loaded and then failed every decorated call,
naming ``max_wait``).
"""

from __future__ import annotations

import ast
import math
import types
import typing
from pathlib import Path
from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from typer.testing import CliRunner

from retrysim.cli.app import app
from retrysim.retry.options import (
    GLOBAL_OPTIONS,
    OPTION_NAMES,
    PER_OPERATION_OPTIONS,
    FromSettings,
    PolicyOptions,
    setting_source,
    settings_field,
)
from retrysim.retry.settings import OPERATIONS, RetrySettings, SettingsError, load_settings
from tests.test_cli_settings import assert_one_line_error

ROOT = Path(__file__).resolve().parent.parent
FROM_SETTINGS = [name for name in OPTION_NAMES if setting_source(name) is not None]
#: (option, settings field) for every option read from the settings, for every operation.
PAIRS = sorted(
    {(name, settings_field(name, op)) for name in FROM_SETTINGS for op in OPERATIONS},
)


def shape(annotation: Any, metadata: list[Any]) -> tuple[Any, list[Any]]:
    """A field's type without its "not given" None, and its validation metadata: bounds,
    finiteness and validators, wherever written (in the type's ``Annotated`` or the field's),
    but not the FromSettings mark, which only says where the value comes from."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kept = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        assert len(kept) == 1
        annotation = kept[0]
    inner: list[Any] = []
    if typing.get_origin(annotation) is Annotated:
        annotation, *inner = typing.get_args(annotation)
    marks = [item for item in [*inner, *metadata] if not isinstance(item, FromSettings)]
    return annotation, marks


def test_every_option_read_from_the_settings_has_its_settings() -> None:
    assert set(FROM_SETTINGS) == {*PER_OPERATION_OPTIONS, *GLOBAL_OPTIONS}
    assert {field for _, field in PAIRS} <= set(RetrySettings.model_fields)
    assert len(PAIRS) == len(PER_OPERATION_OPTIONS) * len(OPERATIONS) + len(GLOBAL_OPTIONS)


@pytest.mark.parametrize(("option", "field"), PAIRS)
def test_a_settings_bounds_and_type_are_its_options(option: str, field: str) -> None:
    """The same ge/le/gt bounds, finiteness and validators, and the option's type without
    its "not given" None."""
    option_info = PolicyOptions.model_fields[option]
    setting_info = RetrySettings.model_fields[field]
    kind, marks = shape(option_info.annotation, option_info.metadata)
    assert shape(setting_info.annotation, setting_info.metadata) == (kind, marks)
    assert marks, "every option read from the settings is checked somehow"
    assert setting_info.description == option_info.description


@pytest.mark.parametrize(("option", "field"), PAIRS)
def test_a_settings_default_is_the_one_its_option_documents(option: str, field: str) -> None:
    mark = setting_source(option)
    assert mark is not None
    operation = field.removesuffix(f"_{option}") if mark.per_operation else ""
    assert RetrySettings.model_fields[field].default == mark.default(operation)


def test_the_documented_defaults_are_kept() -> None:
    defaults = RetrySettings.defaults()
    assert {op: defaults.for_operation(op) for op in OPERATIONS} == {
        "worker": (3, 1.0, 10.0),
        "storage": (5, 0.5, 5.0),
        "scheduler": (3, 1.0, 8.0),
        "api": (4, 1.0, 15.0),
    }
    assert (defaults.profile, defaults.jitter) == ("documented", 1.0)


def _accepts(annotation: Any, info: Any, value: Any) -> bool:
    try:
        field: Any = Annotated[annotation, info]  # a type built at run time
        TypeAdapter(field).validate_python(value)
    except ValidationError:
        return False
    return True


NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.sampled_from([0, 0.0, -0.0, 1, 1e9, 1e9 + 1, 2e9, 10_000, 10_001, math.inf, math.nan]),
)


@settings(max_examples=200, deadline=None)
@given(pair=st.sampled_from([p for p in PAIRS if p[0] != "profile"]), value=NUMBERS)
def test_a_value_is_a_valid_setting_exactly_when_it_is_a_valid_option(
    pair: tuple[str, str], value: float
) -> None:
    option, field = pair
    option_info = PolicyOptions.model_fields[option]
    setting_info = RetrySettings.model_fields[field]
    as_option = _accepts(option_info.annotation, option_info, value)
    as_setting = _accepts(setting_info.annotation, setting_info, value)
    assert as_option == as_setting


@pytest.mark.parametrize("value", ["documented", "bindu", "linear", ""])
def test_the_profile_setting_checks_names_as_the_option_does(value: str) -> None:
    option_info = PolicyOptions.model_fields["profile"]
    setting_info = RetrySettings.model_fields["profile"]
    assert _accepts(option_info.annotation, option_info, value) == _accepts(
        setting_info.annotation, setting_info, value
    )


# --- the 2e9 example ---------------------------------------------------------------------------


def test_a_wait_the_policy_refuses_is_refused_when_the_settings_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETRY__WORKER_MAX_WAIT", "2e9")
    with pytest.raises(SettingsError) as info:
        load_settings(None)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("RETRY__WORKER_MAX_WAIT: ")
    assert "less than or equal to 1000000000" in message  # what is allowed
    assert "(got '2e9')" in message  # the value as typed
    assert "max_wait:" not in message  # the variable, not the option, is named


def test_the_largest_allowed_wait_still_loads_and_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    from retrysim.retry import build_policy

    monkeypatch.setenv("RETRY__WORKER_MAX_WAIT", "1e9")
    loaded = load_settings(None)
    assert build_policy("worker", loaded).max_wait == 1e9


def test_a_bad_wait_in_a_env_file_is_refused_naming_the_variable_and_file(tmp_path: Path) -> None:
    path = tmp_path / "prod.env"
    path.write_text("RETRY__STORAGE_MIN_WAIT=5e9\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"RETRY__STORAGE_MIN_WAIT: .*'5e9' from .*prod\.env"):
        load_settings(path)


def test_retrysim_settings_refuses_it_in_one_line_with_exit_2() -> None:
    result = CliRunner().invoke(
        app, ["settings"], env={"RETRY__WORKER_MAX_WAIT": "2e9", "NO_COLOR": "1"}
    )
    assert_one_line_error(result, "RETRY__WORKER_MAX_WAIT", "2e9", "less than or equal to")


# --- what type checkers are told ---------------------------------------------------------------


def _declared(path: Path, class_name: str) -> dict[str, str]:
    """The annotations a class declares under ``if TYPE_CHECKING:`` (for type checkers only)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, ast.If) and ast.unparse(item.test) == "TYPE_CHECKING":
                    for line in item.body:
                        if isinstance(line, ast.AnnAssign) and isinstance(line.target, ast.Name):
                            found[line.target.id] = ast.unparse(line.annotation)
    return found


def test_type_checkers_are_told_the_generated_option_fields_types() -> None:
    declared = _declared(ROOT / "retrysim" / "retry" / "settings.py", "RetrySettings")
    generated = {field: RetrySettings.model_fields[field].annotation for _, field in PAIRS}
    assert set(declared) == set(generated)
    for field, annotation in generated.items():
        assert annotation is not None
        name = getattr(annotation, "__name__", None) or str(annotation)  # float | None
        assert declared[field] == name, field
