"""Tests pinning behaviour of ``retrysim/sim/failures.py`` that its mutation run found untested
(``python scripts/mutate.py --module failures``): how an answer's record code reads back as the
value the attempt returned, and which codes are answers rather than errors."""

from __future__ import annotations

from retrysim.model.scenario import parse_scenario
from retrysim.sim import records as rec
from retrysim.sim.engine import simulate
from retrysim.sim.failures import ANSWER_BASE, CODES, Answers, is_answer


def test_a_served_request_and_a_rejected_none_both_read_back_as_none() -> None:
    """Code 0 (a served request) and ``result:None``'s code both stand for the value None a
    served request returns, with or without scenario answers; each answer's code reads back
    its own value."""
    for answers in (Answers(), Answers((503, "busy"))):
        assert answers.value(0) is None
        assert answers.value(answers.none_code) is None
    answers = Answers((503, "busy"))
    assert answers.value(ANSWER_BASE) == 503
    assert answers.value(ANSWER_BASE + 1) == "busy"


def test_answer_codes_are_answers_and_error_codes_are_not() -> None:
    """A served request's code and every error's code are not answers; every code of a run's
    answers table (its first answer's, ANSWER_BASE, and ``result:None``'s) is."""
    assert is_answer(0) is False
    for name, code in CODES.items():
        assert is_answer(code) is False, name
    answers = Answers((503, "busy"))
    for code in (answers.code(503), answers.code("busy"), answers.none_code):
        assert is_answer(code) is True, answers.names[code]
    assert is_answer(Answers().none_code) is True


def test_the_reference_path_records_served_attempts_as_the_fast_path_does() -> None:
    """On tenacity's own ``iter()`` (the reference path) a served attempt hands tenacity the
    value None as its result: the run's records equal the fast path's, flaky failures retried
    and every call ending in success."""
    scenario = parse_scenario(
        {
            "seed": 3,
            "duration": 5,
            "policy": {"max_attempts": 10, "min_wait": 0.01, "max_wait": 0.02},
            "clients": {"count": 20, "calls_per_client": 2, "think_time": 0.1},
            "service": {"kind": "ideal", "latency": {"dist": "constant", "value": 0.01}},
            "faults": [{"kind": "flaky", "probability": 0.3, "error": "ConnectionError"}],
        }
    )
    reference = simulate(scenario, engine="reference")
    fast = simulate(scenario, engine="fast")
    assert (reference.calls["outcome"] == rec.SUCCEEDED).all()
    assert (reference.attempts["outcome"] == rec.FAILED).any()
    assert len(reference.calls) == 40
    # byte for byte: a record's unset times are NaN, which no == holds equal
    assert reference.attempts.tobytes() == fast.attempts.tobytes()
    assert reference.calls.tobytes() == fast.calls.tobytes()
