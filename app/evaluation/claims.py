"""Answer attribution measured on labelled claims (``wikirag eval-attribution --claims``).

A claims file holds one JSON object per line: ``claim`` (one or more sentences), ``label``
(``supported``, ``contradicted`` or ``unsupported``: what the indexed text says, not world
truth), ``kind`` (paraphrase, negation, wrong_number…), and ``evidence_passage_text_prefix``
(the start of the passage that supports or contradicts it; empty for unsupported claims).
Every claim is attributed as an answer; its label is ``supported`` when every sentence is,
``contradicted`` when one is, ``unsupported`` when none is backed, else ``partial``.

Reported: precision and recall per label, the confusion matrix (gold × predicted), the
labels per kind, the false-"supported" rate on contradicted and unsupported claims, whether
the passage cited for a contradicted claim is the one that contradicts it, and latency.

>>> claim_label(["supported", "supported"]), claim_label(["supported", "contradicted"])
('supported', 'contradicted')
>>> claim_label(["unsupported"]), claim_label(["supported", "unsupported"])
('unsupported', 'partial')
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.attribution.verifier import AnswerAttributor, AttributeOptions, SupportLabel
from indexer.errors import InvalidInput

GOLD_LABELS = ("supported", "contradicted", "unsupported")
PREDICTED = tuple(label.value for label in SupportLabel)


@dataclass(frozen=True, slots=True)
class Claim:
    id: str
    claim: str
    label: str
    kind: str
    language: str
    evidence_prefix: str


def load_claims(path: Path) -> Iterator[Claim]:
    """The claims of a JSONL file; a malformed line is an :class:`InvalidInput` naming it."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("not a JSON object")
                claim, label = row.get("claim"), row.get("label")
                if not isinstance(claim, str) or not claim.strip():
                    raise ValueError("claim must be a non-empty string")
                if label not in GOLD_LABELS:
                    raise ValueError(f"label must be one of {', '.join(GOLD_LABELS)}")
                prefix = row.get("evidence_passage_text_prefix") or ""
                if not isinstance(prefix, str):
                    raise ValueError("evidence_passage_text_prefix must be a string")
                yield Claim(
                    id=str(row.get("id", number)),
                    claim=claim,
                    label=label,
                    kind=str(row.get("kind") or label),
                    language=str(row.get("language") or ""),
                    evidence_prefix=prefix,
                )
            except (ValueError, json.JSONDecodeError) as exc:
                raise InvalidInput(f"{path}: line {number} is not a claim: {exc}") from exc


def claim_label(sentence_labels: Sequence[str]) -> str:
    """The label of a claim from its sentences' labels."""
    if sentence_labels and all(s == "supported" for s in sentence_labels):
        return "supported"
    if "contradicted" in sentence_labels:
        return "contradicted"
    if all(s == "unsupported" for s in sentence_labels):
        return "unsupported"
    return "partial"


def _ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else round(numerator / denominator, 4)


def evaluate_claims(
    attributor: AnswerAttributor,
    claims: Sequence[Claim],
    options: AttributeOptions | None = None,
) -> dict[str, Any]:
    """Attribute every claim and measure the labels (see the module docstring)."""
    options = attributor.options(options)
    rows: list[dict[str, Any]] = []
    latencies: list[float] = []
    for claim in claims:
        started = time.perf_counter()
        result = attributor.attribute(claim.claim, options)
        latencies.append((time.perf_counter() - started) * 1000)
        labels = [s.label.value for s in result.sentences]
        predicted = claim_label(labels)
        cited = None
        for sentence in result.sentences:
            if sentence.label.value == predicted and sentence.citations:
                cited = sentence.citations[0]
                break
        rows.append(
            {
                "id": claim.id,
                "kind": claim.kind,
                "language": claim.language,
                "gold": claim.label,
                "predicted": predicted,
                "cited_evidence": bool(
                    cited is not None
                    and claim.evidence_prefix
                    and cited.passage.text.startswith(claim.evidence_prefix)
                ),
                "reason": None
                if cited is None or cited.disagreement is None
                else cited.disagreement.describe(),
                "score": None if cited is None else cited.score,
                "components": None if cited is None else cited.components,
            }
        )
    return {
        **summarise(rows, latencies),
        "thresholds": {
            "supported": options.supported_threshold,
            "partial": options.partial_threshold,
            "contradicted": options.contradicted_threshold,
        },
        "model": attributor.retriever.embedder.model_id,
    }


def summarise(rows: Sequence[dict[str, Any]], latencies: Sequence[float]) -> dict[str, Any]:
    """The figures of :func:`evaluate_claims` from its per-claim rows."""
    confusion = {gold: dict.fromkeys(PREDICTED, 0) for gold in GOLD_LABELS}
    for row in rows:
        confusion[row["gold"]][row["predicted"]] += 1
    per_label = {}
    for label in GOLD_LABELS:
        tp = confusion[label][label]
        predicted = sum(confusion[g][label] for g in GOLD_LABELS)
        gold = sum(confusion[label].values())
        per_label[label] = {
            "precision": _ratio(tp, predicted),
            "recall": _ratio(tp, gold),
            "predicted": predicted,
            "gold": gold,
        }
    negatives = [r for r in rows if r["gold"] != "supported"]
    false_supported = sum(1 for r in negatives if r["predicted"] == "supported")
    by_kind: dict[str, Any] = {}
    for kind in sorted({r["kind"] for r in rows}):
        members = [r for r in rows if r["kind"] == kind]
        counts = Counter(r["predicted"] for r in members)
        right = sum(1 for r in members if r["predicted"] == r["gold"])
        by_kind[kind] = {
            "n": len(members),
            "gold": members[0]["gold"],
            "accuracy": _ratio(right, len(members)),
            "predicted": {label: counts.get(label, 0) for label in PREDICTED},
        }
    contradicted = [r for r in rows if r["gold"] == "contradicted" and r["predicted"] == r["gold"]]
    ordered = sorted(latencies)
    return {
        "claims": len(rows),
        "per_label": per_label,
        "confusion": confusion,
        "false_supported_rate": _ratio(false_supported, len(negatives)),
        "false_supported": false_supported,
        "contradicted_cites_evidence": _ratio(
            sum(1 for r in contradicted if r["cited_evidence"]), len(contradicted)
        ),
        "by_kind": by_kind,
        "latency_ms": {
            "p50": round(ordered[len(ordered) // 2], 1) if ordered else None,
            "max": round(ordered[-1], 1) if ordered else None,
        },
        "rows": list(rows),
    }
