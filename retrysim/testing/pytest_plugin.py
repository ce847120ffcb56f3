"""retrysim's pytest plugin: tests of retrying code run in virtual time, with seeded jitter.

pytest loads it through retrysim's ``pytest11`` entry point (``-p no:retrysim`` turns it off);
nothing else imports it, so retrysim itself never needs pytest. A test opts in with
``@pytest.mark.retrysim`` (``seed=N`` to replay one) or by asking for the ``virtual_time`` or
``faults`` fixture. Its body then runs inside a :class:`retrysim.testing.VirtualTime`:
tenacity's sleeps, tenacity's clock and ``asyncio.sleep`` follow one virtual clock, and jitter
is drawn from the test's seed, which a failure's report prints. Fixtures set up and tear down
in real time.

A test that would never end is stopped: one whose virtual clock would pass ``max_time`` (default
a virtual day) or that makes more than ``max_steps`` tenacity attempts and sleeps (default
100,000: a loop with zero waits never moves the clock). It fails with
:class:`retrysim.testing.VirtualLimitError`, the cap named in the message. The marker's
``max_time=``/``max_steps=`` set them for one test, the ``retrysim_max_time`` and
``retrysim_max_steps`` ini options for the suite.

Async tests: one marked ``asyncio`` runs on pytest-asyncio's loop and one using anyio's
``anyio_backend`` on anyio's (asyncio backend), each driven by the virtual clock once the test
starts (:mod:`retrysim.testing.loops`); an ``async def`` test neither plugin runs is run here,
on a fresh loop. The plugin's own imports are deferred to the first test that opts in, so a
suite that never does pays nothing for it.
"""

from __future__ import annotations

import inspect
import secrets
import sys
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from retrysim.testing import Faults, VirtualTime

MARKER = "retrysim"
SECTION = "retrysim virtual time"
_STATE = pytest.StashKey["VirtualTime"]()
_MARKER_HELP = (
    "retrysim(seed=None, max_time=None, max_steps=None): run the test in virtual time: "
    "tenacity's sleeps and clock and asyncio.sleep follow one virtual clock (the virtual_time "
    "fixture reads it), jitter is drawn from the seed (random per test unless given; a "
    "failure's report prints it); the test fails once its clock would pass max_time virtual "
    "seconds or it makes more than max_steps tenacity attempts and sleeps (defaults: the "
    "retrysim_max_time and retrysim_max_steps ini options)"
)
_KEYWORDS = ("seed", "max_time", "max_steps")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("retrysim", "retrysim virtual time")
    group.addoption(
        "--retrysim-seed",
        type=int,
        default=None,
        metavar="N",
        help="seed every virtual-time test without a seed= of its own with N "
        "(default: a random seed per test, printed when the test fails)",
    )
    parser.addini(
        "retrysim_max_time",
        "virtual seconds a retrysim test's clock may reach before it fails (default 86400)",
        default=None,
    )
    parser.addini(
        "retrysim_max_steps",
        "tenacity attempts and sleeps a retrysim test may make before it fails (default 100000)",
        default=None,
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER_HELP)


def _wants_virtual_time(item: pytest.Item) -> bool:
    return item.get_closest_marker(MARKER) is not None or "virtual_time" in getattr(
        item, "fixturenames", ()
    )


def _seed_of(item: pytest.Item) -> int:
    """The marker's ``seed=``, else ``--retrysim-seed``, else a fresh random one."""
    marker = item.get_closest_marker(MARKER)
    if marker is not None:
        if marker.args or set(marker.kwargs) - set(_KEYWORDS):
            pytest.fail(
                f"{item.nodeid}: @pytest.mark.retrysim takes only seed=N, max_time=SECONDS "
                "and max_steps=N",
                pytrace=False,
            )
        seed = marker.kwargs.get("seed")
        if seed is not None:
            if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
                pytest.fail(
                    f"{item.nodeid}: retrysim seed= is a non-negative integer, not {seed!r}",
                    pytrace=False,
                )
            return seed
    option: int | None = item.config.getoption("retrysim_seed")
    if option is not None:
        return option
    # Random by default, like hypothesis: any seed must pass, and a failing one is printed.
    return secrets.randbits(32)


def _cap(item: pytest.Item, name: str, whole: bool) -> float | None:
    """The marker's ``max_time=``/``max_steps=``, else the ini option's, else None (the
    default); a bad one fails the test naming where it came from."""
    marker = item.get_closest_marker(MARKER)
    value: object
    if marker is not None and marker.kwargs.get(name) is not None:
        value, where = marker.kwargs[name], f"@pytest.mark.retrysim({name}=...)"
    else:
        value, where = item.config.getini(f"retrysim_{name}"), f"the retrysim_{name} ini option"
        if value is None or value == "":
            return None
        value = _number(str(value), whole)
    if whole:
        wanted = "a whole number of at least 1"
        good = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    else:
        wanted = "a positive number of virtual seconds (inf: no cap)"
        good = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    if not good:
        pytest.fail(f"{item.nodeid}: {where} is {wanted}, not {value!r}", pytrace=False)
    assert isinstance(value, int | float)
    return value


def _number(text: str, whole: bool) -> object:
    """An ini option's text as the number it spells (the text itself if it spells none)."""
    try:
        return int(text) if whole else float(text)
    except ValueError:
        return text


def _virtual_time(item: pytest.Item) -> VirtualTime | None:
    """The item's virtual time, made on first need (None for a test that did not opt in)."""
    found = item.stash.get(_STATE, None)
    if found is not None or not _wants_virtual_time(item):
        return found
    from retrysim.testing import VirtualTime

    seed = _seed_of(item)
    caps: dict[str, Any] = {}
    max_time, max_steps = _cap(item, "max_time", False), _cap(item, "max_steps", True)
    if max_time is not None:
        caps["max_time"] = max_time
    if max_steps is not None:
        caps["max_steps"] = max_steps
    state = item.stash[_STATE] = VirtualTime(seed, **caps)
    item.user_properties.append(("retrysim_seed", seed))  # junitxml and report hooks see it
    return state


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _virtual_time(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """Run the test's body with the virtual time active.

    An async test function is swapped, for the call, for one that first puts the loop it runs
    on onto the virtual clock: whoever runs it (pytest-asyncio, anyio or this plugin) calls
    ``item.obj`` then, so each gets virtual time without knowing.
    """
    state = item.stash.get(_STATE, None)
    if state is None or not isinstance(item, pytest.Function):
        return (yield)
    original = item.obj
    swapped = inspect.iscoroutinefunction(original)
    if swapped:
        item.obj = state.virtualised(original)
    try:
        with state:
            return (yield)
    finally:
        if swapped:
            item.obj = original


def _run_elsewhere(item: pytest.Function) -> bool:
    """Whether pytest-asyncio or anyio will run this async test (so this plugin must not)."""
    if "anyio_backend" in item.funcargs:
        return True
    pytest_asyncio = sys.modules.get("pytest_asyncio")
    is_async_test = getattr(pytest_asyncio, "is_async_test", None)
    return bool(is_async_test is not None and is_async_test(item))


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run a virtual-time ``async def`` test that no async plugin claims, on a fresh loop."""
    state = pyfuncitem.stash.get(_STATE, None)
    if state is None or not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    if _run_elsewhere(pyfuncitem):
        return None
    names = pyfuncitem._fixtureinfo.argnames  # what pytest's own pyfunc_call passes
    state.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True


def replay_note(state: VirtualTime) -> str:
    """What a failure's report says: the seed to replay it, and what the clock saw."""
    shown = ", ".join(f"{s:.6g}" for s in state.sleeps[:20])
    more = f", ... ({len(state.sleeps)} in all)" if len(state.sleeps) > 20 else ""
    return (
        f"seed={state.seed}: replay with @pytest.mark.retrysim(seed={state.seed}) "
        f"or --retrysim-seed={state.seed}\n"
        f"virtual time {state.now:.6g} s, {state.attempts} tenacity attempt(s), "
        f"sleeps [{shown}{more}]\n"
        f"caps: max_time={state.max_time:g} s, max_steps={state.max_steps:,}"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    state = item.stash.get(_STATE, None)
    if state is not None and report.failed:
        note = replay_note(state)
        # In the traceback's own block, which --show-capture=no does not hide; a failure
        # without one (pytest.fail(pytrace=False)) gets a report section instead.
        addsection: Any = getattr(report.longrepr, "addsection", None)
        if callable(addsection):
            addsection(SECTION, note)
        else:
            report.sections.append((SECTION, note))
    return report


@pytest.fixture
def virtual_time(request: pytest.FixtureRequest) -> VirtualTime:
    """The test's virtual clock: ``now``, ``sleeps``, ``attempts``, ``advance(s)``, ``seed``.

    Asking for it puts the test in virtual time, as ``@pytest.mark.retrysim`` does.
    """
    state = _virtual_time(request.node)
    assert state is not None  # the fixture's own name opts the test in
    return state


@pytest.fixture
def faults(virtual_time: VirtualTime) -> Faults:
    """``outage``, ``flaky``, ``latency`` and ``wrap`` on the test's virtual clock and seed."""
    from retrysim.testing import Faults

    return Faults(virtual_time.seed)
