"""Measure answer attribution (:mod:`app.attribution.verifier`) on real Wikipedia sentences.

Data, drawn from an index and from held-out articles:

* positives, from the index's current passages: ``verbatim`` sentences; ``dropped`` (one or
  two words left out, never a number or a name); ``reordered`` (the two halves of a sentence
  swapped at a comma);
* negatives: ``heldout`` (real sentences of sample articles that are not in the index — their
  titles are not indexed in any wiki), ``changed_number`` (a positive with one number changed)
  and ``changed_name`` (a positive with one name replaced by a name from another article).

Every item belongs to the ``calibration`` or ``report`` half: positives by a hash of their
passage id, held-out sentences by article. Thresholds are chosen on the calibration half
(the lowest supported threshold with precision ≥ 0.97 there and ≤ 5 % of changed numbers
supported) and reported on the other half.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
import statistics
import tarfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.attribution.verifier import (
    AnswerAttributor,
    AttributeOptions,
    Citation,
    LexicalDenseScorer,
    names_in,
    numbers_in,
    split_sentences,
)
from app.retrieval.retriever import HybridRetriever
from indexer.store import PassageRecord, PassageStore

POSITIVE_KINDS = ("verbatim", "dropped", "reordered")
NEGATIVE_KINDS = ("heldout", "changed_number", "changed_name")


@dataclass(frozen=True, slots=True)
class EvalItem:
    kind: str
    text: str
    split: str  # "calibration" or "report"
    source_passage_id: str | None  # the passage a positive was taken from
    article: str

    @property
    def positive(self) -> bool:
        return self.kind in POSITIVE_KINDS


@dataclass(frozen=True, slots=True)
class Outcome:
    item: EvalItem
    # (score, numbers and names agree, passage id) of every candidate, best first
    candidates: tuple[tuple[float, bool, str], ...]
    seconds: float


def _half(key: str) -> str:
    return "calibration" if hashlib.sha1(key.encode()).digest()[0] % 2 == 0 else "report"


def _good_sentence(text: str) -> bool:
    words = text.split()
    return 8 <= len(words) <= 60 and text[-1:] in ".!?" and not text.startswith(("(", "["))


def _sentences(passages: Iterable[PassageRecord]) -> list[tuple[PassageRecord, str]]:
    out = []
    for p in passages:
        for span in split_sentences(p.text):
            if _good_sentence(span.text):
                out.append((p, span.text))
    return out


def drop_words(text: str, rng: random.Random) -> str | None:
    """``text`` with one or two words left out (not the first, not numbers or names)."""
    words = text.split(" ")
    names = set(names_in(text))
    droppable = [
        i
        for i, w in enumerate(words[1:-1], start=1)
        if not numbers_in(w) and w.strip(",;:") not in names and len(w) > 2
    ]
    if len(droppable) < 2:
        return None
    drop = set(rng.sample(droppable, min(len(droppable), rng.choice((1, 2)))))
    return " ".join(w for i, w in enumerate(words) if i not in drop)


def reorder(text: str) -> str | None:
    """The two halves of ``text`` swapped at its first comma ("A, B." → "B, a.")."""
    body, end = text[:-1], text[-1]
    head, sep, tail = body.partition(", ")
    if not sep or len(head.split()) < 3 or len(tail.split()) < 3:
        return None
    first = head[0].lower() + head[1:] if not names_in(head[:1] + " " + head) else head
    return f"{tail[0].upper()}{tail[1:]}, {first}{end}"


def change_number(text: str, rng: random.Random) -> str | None:
    matches = [m for m in re.finditer(r"\b\d{1,4}\b", text)]
    if not matches:
        return None
    m = rng.choice(matches)
    value = int(m.group(0))
    if 1000 <= value <= 2100:
        new = value + rng.choice((-3, -2, -1, 1, 2, 3))
    else:
        new = value + rng.choice((1, 2, 3)) if value < 10 else value * 2 + 1
    return text[: m.start()] + str(new) + text[m.end() :]


def change_name(text: str, other_names: Sequence[str], rng: random.Random) -> str | None:
    names = [n for n in names_in(text) if len(n) > 3]
    if not names or not other_names:
        return None
    old = rng.choice(names)
    candidates = [n for n in other_names if n.lower() not in text.lower()]
    if not candidates:
        return None
    return re.sub(rf"\b{re.escape(old)}\b", rng.choice(candidates), text, count=1)


def _round_robin(
    pool: list[tuple[PassageRecord, str]], rng: random.Random
) -> list[tuple[PassageRecord, str]]:
    """The sentences shuffled within each article, then one article after the other in
    turn, so that small articles (and their languages) are drawn too."""
    by_article: dict[tuple[str, int], list[tuple[PassageRecord, str]]] = {}
    for p, s in pool:
        by_article.setdefault((p.wiki, p.page_id), []).append((p, s))
    queues = [by_article[key] for key in sorted(by_article)]
    for queue in queues:
        rng.shuffle(queue)
    out: list[tuple[PassageRecord, str]] = []
    for i in range(max((len(q) for q in queues), default=0)):
        out.extend(q[i] for q in queues if i < len(q))
    return out


def build_dataset(
    index_store: PassageStore,
    heldout: Sequence[PassageRecord],
    *,
    per_kind: int = 50,
    seed: int = 13,
) -> list[EvalItem]:
    """The items (see the module docstring); at most ``per_kind`` of each kind."""
    rng = random.Random(seed)
    indexed = list(index_store.iter_current_passages())
    pool = _round_robin(_sentences(indexed), rng)
    items: list[EvalItem] = []
    counts = dict.fromkeys(POSITIVE_KINDS + NEGATIVE_KINDS, 0)
    names_by_article: dict[str, list[str]] = {}
    for p, s in pool:
        names_by_article.setdefault(p.title, []).extend(n for n in names_in(s) if len(n) > 3)

    def add(kind: str, text: str | None, p: PassageRecord | None, article: str, key: str) -> None:
        if text is None or counts[kind] >= per_kind:
            return
        counts[kind] += 1
        items.append(EvalItem(kind, text, _half(key), p.passage_id if p else None, article))

    for p, s in pool:
        others = [n for t, ns in names_by_article.items() if t != p.title for n in ns]
        add("verbatim", s, p, f"{p.wiki}:{p.title}", p.passage_id)
        add("dropped", drop_words(s, rng), p, f"{p.wiki}:{p.title}", p.passage_id)
        add("reordered", reorder(s), p, f"{p.wiki}:{p.title}", p.passage_id)
        add("changed_number", change_number(s, rng), p, f"{p.wiki}:{p.title}", p.passage_id)
        add("changed_name", change_name(s, others, rng), p, f"{p.wiki}:{p.title}", p.passage_id)
    negatives = _sentences(heldout)
    rng.shuffle(negatives)
    for p, s in negatives:
        add("heldout", s, None, f"{p.wiki}:{p.title}", f"{p.wiki}:{p.title}")
    return items


def heldout_passages(heldout_store: PassageStore, index_store: PassageStore) -> list[PassageRecord]:
    """Current passages of ``heldout_store`` whose article title is in no indexed wiki."""
    indexed_titles = {p.title.casefold() for p in index_store.iter_current_passages()}
    return [
        p for p in heldout_store.iter_current_passages() if p.title.casefold() not in indexed_titles
    ]


def run_items(attributor: AnswerAttributor, items: Sequence[EvalItem]) -> list[Outcome]:
    outcomes = []
    options = AttributeOptions()
    for item in items:
        started = time.perf_counter()
        citations: list[Citation] = attributor.candidates(item.text, (), options)
        outcomes.append(
            Outcome(
                item,
                tuple((c.score, c.agreement.ok, c.passage_id) for c in citations),
                time.perf_counter() - started,
            )
        )
    return outcomes


def _supported(outcome: Outcome, threshold: float) -> bool:
    return any(score >= threshold and ok for score, ok, _ in outcome.candidates)


def metrics(outcomes: Sequence[Outcome], threshold: float) -> dict[str, Any]:
    """Precision / recall of ``supported``, per-kind supported rates, top-1 accuracy."""
    labelled = [(o, _supported(o, threshold)) for o in outcomes]
    tp = sum(1 for o, s in labelled if s and o.item.positive)
    fp = sum(1 for o, s in labelled if s and not o.item.positive)
    positives = sum(1 for o in outcomes if o.item.positive)
    rates = {}
    for kind in POSITIVE_KINDS + NEGATIVE_KINDS:
        of_kind = [s for o, s in labelled if o.item.kind == kind]
        rates[kind] = {
            "n": len(of_kind),
            "supported_rate": round(sum(of_kind) / len(of_kind), 3) if of_kind else None,
        }
    top1 = [_top(o, threshold) == o.item.source_passage_id for o in outcomes if o.item.positive]
    return {
        "n": len(outcomes),
        "precision": round(tp / (tp + fp), 3) if tp + fp else None,
        "recall": round(tp / positives, 3) if positives else None,
        "top1_passage_accuracy": round(sum(top1) / len(top1), 3) if top1 else None,
        "by_kind": rates,
    }


def _top(outcome: Outcome, threshold: float) -> str | None:
    ranked = sorted(
        outcome.candidates, key=lambda c: (c[0] >= threshold and c[1], c[0]), reverse=True
    )
    return ranked[0][2] if ranked else None


def calibrate(outcomes: Sequence[Outcome]) -> dict[str, float]:
    """Thresholds from calibration outcomes (the middle of each range of equally good
    values, for the widest margin). ``supported``: the middle of the range of
    thresholds with precision ≥ 0.97, recall ≥ 0.90 and ≤ 5 % of changed numbers supported
    (the widest margin on both sides); failing that, the lowest threshold with that precision.
    ``partial``: the threshold below it that best separates sentences with some support
    (positives and changed ones) from held-out sentences (balanced accuracy)."""
    grid = [round(0.30 + 0.01 * i, 2) for i in range(70)]
    feasible, precise = [], []
    for t in grid:
        m = metrics(outcomes, t)
        changed = m["by_kind"]["changed_number"]["supported_rate"] or 0.0
        if (m["precision"] or 0.0) >= 0.97 and changed <= 0.05:
            precise.append(t)
            if (m["recall"] or 0.0) >= 0.90:
                feasible.append(t)
    if feasible:
        supported = round((feasible[0] + feasible[-1]) / 2, 2)
    else:
        supported = precise[0] if precise else grid[-1]
    related = [o.candidates[0][0] if o.candidates else 0.0 for o in outcomes]
    kinds = [o.item.kind != "heldout" for o in outcomes]
    accuracies: dict[float, float] = {}
    for t in grid:
        if t > supported:
            break
        hits = [r >= t for r in related]
        pos = [h for h, k in zip(hits, kinds, strict=True) if k]
        neg = [not h for h, k in zip(hits, kinds, strict=True) if not k]
        accuracies[t] = (sum(pos) / max(1, len(pos)) + sum(neg) / max(1, len(neg))) / 2
    if not accuracies:
        return {"supported": supported, "partial": supported}
    top = max(accuracies.values())
    best = [t for t, a in accuracies.items() if a == top]
    return {"supported": supported, "partial": round((best[0] + best[-1]) / 2, 2)}


def score_distribution(outcomes: Sequence[Outcome]) -> dict[str, dict[str, float]]:
    """Min / median / max of the best candidate score, per kind."""
    out = {}
    for kind in POSITIVE_KINDS + NEGATIVE_KINDS:
        best = [
            o.candidates[0][0] if o.candidates else 0.0 for o in outcomes if o.item.kind == kind
        ]
        if best:
            out[kind] = {
                "min": round(min(best), 3),
                "median": round(statistics.median(best), 3),
                "max": round(max(best), 3),
            }
    return out


def latency(
    attributor: AnswerAttributor, items: Sequence[EvalItem], answers: int = 10, seed: int = 7
) -> dict[str, float]:
    """p50 / max seconds of :meth:`AnswerAttributor.attribute` on 5-sentence answers drawn
    from ``items`` (whole-index search, no passage ids), with the retriever's embedding cache
    off: the evaluation has already embedded these sentences and their windows."""
    rng = random.Random(seed)
    r = attributor.retriever
    uncached = AnswerAttributor(
        HybridRetriever(r.index, r.embedder, r.defaults, encode_cache_size=0),
        None if isinstance(attributor.scorer, LexicalDenseScorer) else attributor.scorer,
    )
    times = []
    for _ in range(answers):
        answer = " ".join(item.text for item in rng.sample(list(items), 5))
        started = time.perf_counter()
        uncached.attribute(answer)
        times.append(time.perf_counter() - started)
    return {
        "answers": answers,
        "p50_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
    }


def evaluate_attribution(
    attributor: AnswerAttributor,
    heldout_store: PassageStore,
    *,
    per_kind: int = 50,
    seed: int = 13,
    latency_answers: int = 10,
) -> dict[str, Any]:
    """The whole evaluation: dataset, scoring, calibration, report (JSON-ready)."""
    index_store = attributor.store
    heldout = heldout_passages(heldout_store, index_store)
    items = build_dataset(index_store, heldout, per_kind=per_kind, seed=seed)
    started = time.perf_counter()
    outcomes = run_items(attributor, items)
    scoring_seconds = time.perf_counter() - started
    calibration = [o for o in outcomes if o.item.split == "calibration"]
    report = [o for o in outcomes if o.item.split == "report"]
    thresholds = calibrate(calibration)
    return {
        "items": len(items),
        "indexed_articles": sorted({i.article for i in items if i.positive}),
        "languages": sorted({p.language for p in index_store.iter_current_passages()}),
        "heldout_articles": sorted({i.article for i in items if i.kind == "heldout"}),
        "thresholds": thresholds,
        "calibration": metrics(calibration, thresholds["supported"]),
        "report": metrics(report, thresholds["supported"]),
        "best_score_by_kind": score_distribution(outcomes),
        "per_sentence_s": round(scoring_seconds / max(1, len(items)), 3),
        "latency_5_sentences": latency(attributor, items, latency_answers) if items else {},
        "scorer": attributor.scorer.name,
    }


def subset_source(source: Path, titles: Iterable[str], target: Path) -> Path:
    """The articles of a WME snapshot (tar.gz of NDJSON) named in ``titles``, as an
    ``.ndjson.gz`` file at ``target`` (for building a small evaluation index)."""
    wanted = set(titles)
    with tarfile.open(source) as archive, gzip.open(target, "wt", encoding="utf-8") as out:
        for member in archive.getmembers():
            handle = archive.extractfile(member) if member.name.endswith(".ndjson") else None
            if handle is None:
                continue
            for line in handle:
                article = json.loads(line)
                if article.get("name") in wanted:
                    out.write(json.dumps(article, ensure_ascii=False) + "\n")
    return target


def heldout_store(sources: Sequence[Path], path: Path) -> PassageStore:
    """A passage store ingested from ``sources`` (the articles negatives are drawn from)."""
    from indexer.ingest import IngestOptions, ingest_sources

    store = PassageStore(path)
    ingest_sources(list(sources), store, IngestOptions(progress=False))
    return store
