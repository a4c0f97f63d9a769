"""Session history and what the app draws from it: kept runs, the compare rows and points, the
report's key metrics and its warnings where a number misleads — against hand-made reports."""

from __future__ import annotations

import pytest

from unlearning import limits
from unlearning.service import Session, UserError
from unlearning.service.compare import FIELDS, compare_rows, key_metrics, references, warnings


class FakeArtifact:
    def __init__(self):
        self.released = 0

    def release(self):
        self.released += 1


def report(method="ihl-fila", before=None, after=None, oracle=None, **extra):
    return {"method": method, "steps": 20, "wall_s": 12.5, "before": before, "after": after, "oracle": oracle, **extra}


BEFORE = {"forget.rougeL": 0.95, "retain.rougeL": 0.97, "model_utility": 0.60, "forget_quality": 0.001,
          "forget.fluency": 5.0, "retain.fluency": 5.2}
ORACLE = {"forget.rougeL": 0.20, "retain.rougeL": 0.96, "model_utility": 0.58, "forget_quality": 1.0,
          "forget.fluency": 5.1, "retain.fluency": 5.2}


def test_runs_are_kept_numbered_and_the_newest_is_current():
    s = Session()
    try:
        a, b = FakeArtifact(), FakeArtifact()
        s.use_preset()
        first = s.keep("ga", a, report("ga"))
        second = s.keep("eco", b, report("eco"))
        assert (first.number, second.number) == (1, 2)
        assert s.current == 2 and s.artifact is b and s.report["method"] == "eco"
        assert first.data == "forget.jsonl: 40 QA"
        s.select(1)
        assert s.artifact is a and s.report["method"] == "ga"
        s.keep_robustness({"relearn": {}}, s.current)
        assert first.robustness == {"relearn": {}} and second.robustness is None
        s.select(2)
        assert s.robustness is None
        s.remove_run(2)  # the current one: the newest left becomes current
        assert b.released == 1 and s.current == 1 and s.artifact is a and s.robustness == {"relearn": {}}
        assert s.keep("gd", FakeArtifact(), None).number == 2  # numbers go on from the highest kept
        with pytest.raises(UserError, match="no run #7"):
            s.select(7)
    finally:
        s.close()
    assert a.released == 1  # closing releases every kept artifact once


def test_the_cap_on_kept_runs_is_one_sentence(monkeypatch):
    monkeypatch.setattr(limits, "MAX_KEPT_RUNS", 2)
    s = Session()
    try:
        s.keep("ga", FakeArtifact(), None)
        s.check_room()
        s.keep("gd", FakeArtifact(), None)
        with pytest.raises(UserError, match="keeps 2 runs, the most it may; remove one under Compare"):
            s.check_room()
    finally:
        s.close()


def test_clearing_releases_every_kept_artifact_once():
    s = Session()
    try:
        arts = [FakeArtifact() for _ in range(3)]
        for art in arts:
            s.keep("ga", art, None)
        s.clear_result()
        assert [a.released for a in arts] == [1, 1, 1] and s.kept == [] and s.current is None and s.artifact is None
    finally:
        s.close()


def test_compare_rows_and_reference_points_read_the_reports():
    s = Session()
    try:
        s.keep("ga", FakeArtifact(), report("ga", BEFORE, {"forget.rougeL": 0.05, "model_utility": 0.30,
                                                           "forget_quality": 0.2, "forget.fluency": 1.5}, ORACLE))
        s.keep("eco", FakeArtifact(), report("eco", BEFORE, {"forget.rougeL": 0.18, "model_utility": 0.59}, None))
        s.keep("rmu", FakeArtifact(), None)  # a report with nothing in it still gets its row
        rows = compare_rows(s.kept)
        assert [r.method for r in rows] == ["ga", "eco", "rmu"]
        assert (rows[0].forget, rows[0].utility, rows[0].forget_quality, rows[0].fluency) == (0.05, 0.30, 0.2, 1.5)
        assert (rows[1].forget_quality, rows[1].fluency, rows[1].steps, rows[1].wall_s) == (None, None, 20, 12.5)
        assert rows[2].forget is None and rows[2].steps is None
        assert set(rows[0].as_dict()) == set(FIELDS) >= {"method", "steps", "wall_s", "forget", "utility",
                                                         "forget_quality", "fluency"}
        refs = {r.name: r for r in references(s.kept)}
        assert (refs["before"].forget, refs["before"].utility) == (0.95, 0.60)
        assert (refs["oracle"].forget, refs["oracle"].forget_quality) == (0.20, 1.0)  # from run 1: run 2 had none
    finally:
        s.close()


def test_key_metrics_keep_the_order_and_skip_what_no_column_has():
    metrics = key_metrics(report(before=BEFORE, after={"forget.rougeL": 0.3}, oracle=ORACLE))
    assert [m.key for m in metrics] == ["forget.rougeL", "retain.rougeL", "model_utility", "forget_quality",
                                        "forget.fluency"]
    assert (metrics[0].before, metrics[0].after, metrics[0].oracle) == (0.95, 0.3, 0.20)
    assert metrics[1].after is None and metrics[0].better.startswith("↓")
    assert key_metrics(None) == [] and key_metrics({"after": {"mia_auc": 0.5}}) == []


def test_warnings_where_a_number_misleads():
    # GD+FILA past its criterion: forget quality 0.31 with fluency 5.0 → 2.0 (< 0.8×) and utility 0.60 → 0.40 (< 0.9×)
    broken = warnings(report(before=BEFORE, after={"forget_quality": 0.31, "forget.fluency": 2.0, "retain.fluency": 5.1,
                                                   "model_utility": 0.40, "forget.rougeL": 0.15}, oracle=ORACLE))
    assert len(broken) == 1
    assert broken[0].startswith("Forget quality 0.31 looks good, but the forget answers lost fluency (5.00 → 2.00 bits")
    assert "model utility fell from 0.60 to 0.40" in broken[0]
    # the same damage with a low forget quality: a plain check-the-chat sentence
    low = warnings(report(before=BEFORE, after={"forget_quality": 0.01, "retain.fluency": 4.0}, oracle=ORACLE))
    assert low == ["Check the chat: the retain answers lost fluency (5.20 → 4.00 bits: repeated or broken words)."]
    # forget ROUGE-L 0.05 vs the oracle's 0.20 (more than 0.1 under)
    under = warnings(report(before=BEFORE, after={"forget.rougeL": 0.05}, oracle=ORACLE))
    assert len(under) == 1 and under[0].startswith("Forget ROUGE-L 0.05 is well under the oracle's 0.20")
    # boundaries: exactly 0.8× fluency, 0.9× utility and oracle − 0.1 are not warned about
    edge = warnings(report(before=BEFORE, after={"forget.fluency": 4.0, "model_utility": 0.54, "forget.rougeL": 0.10,
                                                 "forget_quality": 0.5}, oracle=ORACLE))
    assert edge == []
    assert warnings(None) == [] and warnings({"after": {"forget_quality": 1.0}}) == []


def test_answers_that_are_one_word_repeated_are_warned_about():
    """IHL + FILA's 'The The The …' answers about one forget person: a quarter of the forget
    answers collapsed while pooled fluency stayed near the oracle's."""
    before, oracle = {"forget.repetition": 0.0, "forget.fluency": 6.58}, {"forget.repetition": 0.025, "forget.fluency": 4.75}
    got = warnings(report(before=before, after={"forget.repetition": 0.25, "forget.fluency": 4.41, "forget_quality": 0.1},
                          oracle=oracle))
    assert got == ["Forget quality 0.10 looks good, but 25% of the forget answers are one word repeated ('The The The …'): "
                   "a broken model also looks unlike the original. Read its answers in the chat before trusting the number."]
    # below 10 %, or no more than 5 points over what the oracle does anyway: no warning
    assert warnings(report(before=before, after={"forget.repetition": 0.075}, oracle=oracle)) == []
    assert warnings(report(before=before, after={"forget.repetition": 0.2}, oracle={"forget.repetition": 0.16})) == []
    assert warnings(report(after={"retain.repetition": 0.5})) == [
        "Check the chat: 50% of the retain answers are one word repeated ('The The The …')."]


def test_fluency_is_judged_against_the_oracle_too():
    """The oracle's answers about people it never met are plainer (6.58 → 4.75 bits here): a run
    that lands at 4.41 (> 0.8 × 4.75 = 3.80) talks like the oracle, which is no warning; 3.7 is."""
    before, oracle = {"forget.fluency": 6.58}, {"forget.fluency": 4.75}
    assert warnings(report(before=before, after={"forget.fluency": 4.41}, oracle=oracle)) == []
    assert warnings(report(before=before, after={"forget.fluency": 3.7}, oracle=oracle)) == [
        "Check the chat: the forget answers lost fluency (6.58 → 3.70 bits: repeated or broken words)."]


# ------------------------------------------------ the probes: distance to the oracle and what they show


def _probes(**families: tuple[float, float, float]) -> dict[str, float]:
    """probes.<family>.rougeL / .repetition / .fluency from (rougeL, repetition, fluency)."""
    return {f"probes.{f}.{k}": v for f, t in families.items() for k, v in zip(("rougeL", "repetition", "fluency"), t)}


P_ORACLE = _probes(forget_trained=(0.2, 0.0, 6.0), forget_bio=(0.0, 0.0, 4.0), retain_bio=(1.0, 0.0, 5.0))
P_BEFORE = _probes(forget_trained=(1.0, 0.0, 6.0), forget_bio=(1.0, 0.0, 5.0), retain_bio=(1.0, 0.0, 5.0))
P_RUNS = {  # hand-made: a good run, and the three that must never look closest to the oracle
    "good": _probes(forget_trained=(0.25, 0.0, 5.7), forget_bio=(0.05, 0.0, 4.0), retain_bio=(0.97, 0.0, 5.0)),
    "degenerate": _probes(forget_trained=(0.14, 0.75, 1.3), forget_bio=(0.0, 0.75, 0.9), retain_bio=(0.40, 0.0, 5.0)),
    "leaking": _probes(forget_trained=(0.19, 0.0, 6.0), forget_bio=(0.90, 0.0, 5.0), retain_bio=(1.0, 0.0, 5.0)),
    "unchanged": dict(P_BEFORE),
}


def _probe_session() -> Session:
    from unlearning.evaluation.outcome import with_distance

    s = Session()
    for name, after in P_RUNS.items():
        r = with_distance(report(name, {**BEFORE, **P_BEFORE}, {**BEFORE, **after}, {**ORACLE, **P_ORACLE}))
        s.keep(name, FakeArtifact(), r)
    return s


def test_no_degenerate_leaking_or_unchanged_run_is_drawn_closest_to_the_oracle():
    from components.compare_panel import figure, table_rows

    s = _probe_session()
    try:
        rows, refs = compare_rows(s.kept), references(s.kept)
        # good: (|0.25−0.2| + (1 − 5.7/6)) + 0.05 + 0.03 = 0.1 + 0.05 + 0.03 → 0.18 / 3
        assert {r.method: round(r.distance, 4) for r in rows} == {
            "good": 0.06, "degenerate": round((0.06 + 0.75 + (1 - 1.3 / 6) + 0.75 + (1 - 0.9 / 4) + 0.6) / 3, 4),
            "leaking": round((0.01 + 0.9 + 0) / 3, 4), "unchanged": 0.6}
        assert {r.method: r.verdict for r in rows} == {
            "good": "", "degenerate": "collapsed, lost what it should keep", "leaking": "leaks", "unchanged": "nothing changed"}
        fig = figure(rows, refs)  # the session's picture: a legend entry per run, no text over the points
        runs = [t for t in fig.data if t.name.startswith("#")]
        closest = min(runs, key=lambda t: t.x[0]).name
        assert closest == "#1 good" and fig.layout.xaxis.title.text.startswith("distance to the oracle")
        assert [t.marker.line.color for t in runs] == ["white", "#dc2626", "#dc2626", "#dc2626"]  # red: the probes found something
        assert all(t.mode == "markers" and not t.text for t in fig.data)
        board = figure(rows, refs, labels=["a", "b", "c", "d"])  # a room's board: its own labels, one trace
        assert list(next(t for t in board.data if t.name == "runs").marker.color) == ["#4f46e5", "#dc2626", "#dc2626", "#dc2626"]
        oracle = next(t for t in fig.data if t.name.startswith("oracle"))
        assert oracle.x == (0.0,)
        table = table_rows(rows, refs)
        assert [row[5] for row in table[:4]] == ["like the oracle", "collapsed, lost what it should keep", "leaks",
                                                  "nothing changed"]
        for run in s.kept[1:]:  # each bad run carries its warning in the report too
            assert warnings(run.report)
        assert not [w for w in warnings(s.kept[0].report) if "probes" in w or "Nothing" in w]
    finally:
        s.close()


def test_the_picture_falls_back_to_forget_rouge_for_reports_without_probes():
    from components.compare_panel import figure

    s = Session()
    try:
        s.keep("ga", FakeArtifact(), report("ga", BEFORE, {**BEFORE, "forget.rougeL": 0.3}, ORACLE))
        fig = figure(compare_rows(s.kept), references(s.kept))
        assert fig.layout.xaxis.title.text.startswith("forget ROUGE-L")
    finally:
        s.close()
