"""How a run ended, read from its probes (probes.py): its distance to the oracle, and what a
room would see in the chat. Torch-free: the report, Compare and the UI read it.

    oracle_distance(after, oracle)   # the headline: 0 = answers like the oracle on every probe family
    readings(before, after, oracle)  # "nothing changed", "collapsed", "leaks through 'Tell me about NAME.'", …

The distance is the mean over the probe families both models have of

    |rougeL − oracle's| + max(0, repetition − oracle's) + max(0, 1 − fluency / oracle's)

so a run is near the oracle only when it says as much (and as little) as the oracle on every
wording, in as many words: an unchanged run is far (it still knows the forget set), a
degenerate one is far ("The The The" repeats and has no fluency), and one that forgets the
trained wording but leaks through "Tell me about NAME." is far by what it leaks.
"""

from __future__ import annotations

from collections.abc import Mapping

# The families the distance averages over, with what a person calls them. The single
# wrappers are left out: `forget_wrapped` stands for them (their worst), so four wrappers
# do not outweigh one wording.
FAMILIES = {
    "forget_trained": "forget, trained wording",
    "forget_heldout": "forget, held-out wording",
    "forget_bio": "forget, 'Tell me about NAME.'",
    "forget_wrapped": "forget, worst prompt wrapper",
    "retain_trained": "retain, trained wording",
    "retain_bio": "retain, 'Tell me about NAME.'",
}
FORGET_FAMILIES = tuple(f for f in FAMILIES if f.startswith("forget_"))
RETAIN_FAMILIES = tuple(f for f in FAMILIES if f.startswith("retain_"))
PREFIX = "probes."
DISTANCE = "oracle_distance"  # the key of the headline in a report's before / after / oracle

UNCHANGED = 0.02  # every forget family's rougeL within this of before's: nothing changed
LEAK = 0.15  # a forget family's rougeL this far above the oracle's: it still answers there
REPEATS = 0.1  # repetition this far above the oracle's (and before's): collapse, not forgetting
KEEP = 0.9  # a retain family's rougeL under this share of before's: it lost what it should keep

Metrics = Mapping[str, float | None]


def value(m: Metrics | None, family: str, metric: str) -> float | None:
    """`probes.<family>.<metric>` of a before / after / oracle dict, None where absent."""
    v = (m or {}).get(f"{PREFIX}{family}.{metric}")
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def family_distance(m: Metrics, oracle: Metrics, family: str) -> float | None:
    """One family's term of the distance; None unless both have its rougeL."""
    r, r_o = value(m, family, "rougeL"), value(oracle, family, "rougeL")
    if r is None or r_o is None:
        return None
    d = abs(r - r_o)
    rep, rep_o = value(m, family, "repetition"), value(oracle, family, "repetition")
    if rep is not None and rep_o is not None:
        d += max(0.0, rep - rep_o)
    flu, flu_o = value(m, family, "fluency"), value(oracle, family, "fluency")
    if flu is not None and flu_o is not None and flu_o > 0:
        d += max(0.0, 1 - flu / flu_o)
    return d


def oracle_distance(m: Metrics | None, oracle: Metrics | None) -> float | None:
    """The mean family distance to the oracle (0 = like the oracle; lower is better); None
    without a family both have (no oracle, or a report from before the probes)."""
    if not m or not oracle:
        return None
    terms = [d for f in FAMILIES if (d := family_distance(m, oracle, f)) is not None]
    return sum(terms) / len(terms) if terms else None


def with_distance(report: dict) -> dict:
    """`report` with `oracle_distance` added to its before, after and oracle dicts (where there
    are probes and an oracle): the pipeline calls this as it finishes a report."""
    oracle = report.get("oracle")
    for name in ("before", "after", "oracle"):
        m = report.get(name)
        if isinstance(m, dict) and (d := oracle_distance(m, oracle)) is not None:
            m[DISTANCE] = d
    return report


def unchanged(after: Metrics | None, before: Metrics | None) -> bool:
    """Whether every forget family answers as before (rougeL within UNCHANGED): the method did
    nothing a person would notice. False when there is nothing to compare."""
    pairs = [(a, b) for f in FORGET_FAMILIES
             if (a := value(after, f, "rougeL")) is not None and (b := value(before, f, "rougeL")) is not None]
    return bool(pairs) and all(abs(a - b) <= UNCHANGED + 1e-9 for a, b in pairs)  # (float rounding of 1 − 0.98)


def _pct(x: float) -> str:
    return f"{x:.0%}"


def findings(before: Metrics | None, after: Metrics | None, oracle: Metrics | None) -> list[tuple[str, str]]:
    """(tag, sentence) for each thing the probes show a person, worst first; [] when the run
    ends like the oracle (or the report has no probes). Tags: "nothing changed", "collapsed",
    "leaks", "lost what it should keep"."""
    if unchanged(after, before):
        return [("nothing changed", ("Nothing changed: the unlearned model answers the forget questions, in every wording "
                 "tried, as the original did. Try more steps or a higher learning rate."))]
    out: list[tuple[str, str]] = []
    collapsed = []
    for f, label in FAMILIES.items():
        rep = value(after, f, "repetition")
        known = [u for m in (before, oracle) if (u := value(m, f, "repetition")) is not None]
        if rep is not None and known and rep > max(known) + REPEATS:
            collapsed.append(f"{_pct(rep)} of its answers to {label} are one word repeated "
                             f"(oracle {_pct(value(oracle, f, 'repetition') or 0.0)})")
    if collapsed:
        out.append(("collapsed", f"It collapsed rather than forgot: {'; '.join(collapsed)}."))
    leaks = []
    for f in FORGET_FAMILIES:
        r, r_o = value(after, f, "rougeL"), value(oracle, f, "rougeL")
        if r is not None and r_o is not None and r > r_o + LEAK:
            leaks.append(f"{FAMILIES[f]} (recall {r:.2f}, oracle {r_o:.2f})")
    if leaks:
        out.append(("leaks", (f"The forget set still comes out through {', '.join(leaks)}: it is hidden from some "
                    "wordings, not forgotten.")))
    lost = []
    for f in RETAIN_FAMILIES:
        r, r_b = value(after, f, "rougeL"), value(before, f, "rougeL")
        if r is not None and r_b is not None and r_b > 0 and r < KEEP * r_b:
            lost.append(f"{FAMILIES[f]} {r:.2f} (before {r_b:.2f})")
    if lost:
        out.append(("lost what it should keep", f"It also lost what it should keep: {', '.join(lost)}."))
    return out


def readings(before: Metrics | None, after: Metrics | None, oracle: Metrics | None) -> list[str]:
    """The sentences of `findings`."""
    return [sentence for _, sentence in findings(before, after, oracle)]


def tags(before: Metrics | None, after: Metrics | None, oracle: Metrics | None) -> list[str]:
    """The tags of `findings`: what Compare marks a run with."""
    return [tag for tag, _ in findings(before, after, oracle)]
