"""``wikirag attribute`` and ``wikirag eval-attribution`` (registered by :mod:`app.cli.main`)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from app.cli.common import EXIT_OK, EXIT_USAGE, CommandError, open_retriever, retrieval_settings
from app.settings import Settings

WME_SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples" / "wme"


def cmd_attribute(args: argparse.Namespace, settings: Settings) -> int:
    from app.attribution.verifier import AnswerAttributor, AttributeOptions, MalformedPassageIds

    answer = sys.stdin.read()
    if not answer.strip():
        print("wikirag attribute: the answer (read from stdin) is empty", file=sys.stderr)
        return EXIT_USAGE
    limit = args.max_answer_chars or settings.max_answer_chars
    if len(answer) > limit:
        print(
            f"wikirag attribute: the answer has {len(answer)} characters; the most accepted "
            f"is {limit} (--max-answer-chars)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    attributor = AnswerAttributor(open_retriever(settings))
    options = AttributeOptions(
        passage_ids=tuple(args.passage_ids) if args.passage_ids else None,
        wikis=tuple(args.wikis) if args.wikis else None,
        languages=tuple(args.languages) if args.languages else None,
        k=args.k,
        search_fallback=not args.no_search_fallback,
    )
    try:
        result = attributor.attribute(answer, options)
    except MalformedPassageIds as exc:
        raise CommandError(str(exc)) from None
    data = result.as_dict()
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return EXIT_OK
    _print_readable(data)
    return EXIT_OK


def _print_readable(data: dict[str, Any]) -> None:
    from app.attribution.verifier import MIN_WORD_ORDER

    for n, sentence in enumerate(data["sentences"], start=1):
        print(f"{n}. [{sentence['label']} {sentence['score']:.2f}] {sentence['text']}")
        for c in sentence["citations"]:
            quote = c["quote"] if len(c["quote"]) <= 200 else c["quote"][:197] + "..."
            print(
                f"     {c['label']} {c['score']:.2f}  {c['passage_id']}  {c['attribution']['url']}"
            )
            print(f"       “{quote}”")
            missing = c["missing_numbers"] + c["missing_names"]
            if c.get("disagreement"):
                print(f"       contradicts: {c['disagreement']['reason']}")
            elif missing:
                print(f"       not in the passage: {', '.join(missing)}")
            elif c["cross_language"]:
                print("       in another language: only its names and numbers were compared")
            elif c["word_order"] < MIN_WORD_ORDER:
                print(
                    f"       the passage has these words in another order ({c['word_order']:.2f})"
                )
    if data["unknown_passage_ids"]:
        print(f"unknown passage ids: {', '.join(data['unknown_passage_ids'])}")
    print()
    print(data["footnoted"]["text"])


def _eval_claims(args: argparse.Namespace, settings: Settings) -> int:
    from app.attribution.verifier import AnswerAttributor
    from app.evaluation.claims import GOLD_LABELS, PREDICTED, evaluate_claims, load_claims

    claims = list(load_claims(args.claims))
    attributor = AnswerAttributor(open_retriever(settings))
    result = evaluate_claims(attributor, claims)
    if args.output:
        from indexer.generation import write_json_atomic

        write_json_atomic(args.output, result)
    print(f"{result['claims']} claims; thresholds {result['thresholds']}")
    print(f"{'label':<13} {'precision':>9} {'recall':>6} {'gold':>5} {'predicted':>9}")
    for label, m in result["per_label"].items():
        print(
            f"{label:<13} {m['precision']!s:>9} {m['recall']!s:>6} {m['gold']:>5} "
            f"{m['predicted']:>9}"
        )
    print(
        f"false 'supported' on contradicted or unsupported claims: "
        f"{result['false_supported']} ({result['false_supported_rate']}); contradicted claims "
        f"citing the contradicting passage: {result['contradicted_cites_evidence']}"
    )
    print("confusion (gold \\ predicted): " + "  ".join(PREDICTED))
    for gold in GOLD_LABELS:
        row = result["confusion"][gold]
        print(f"  {gold:<13} " + "  ".join(f"{row[p]:>{len(p)}}" for p in PREDICTED))
    print("by kind: " + "  ".join(f"{k} {v['accuracy']}" for k, v in result["by_kind"].items()))
    lat = result["latency_ms"]
    print(f"latency per claim: p50 {lat['p50']} ms, max {lat['max']} ms")
    return EXIT_OK


def cmd_eval_attribution(args: argparse.Namespace, settings: Settings) -> int:
    from app.attribution.verifier import AnswerAttributor
    from app.evaluation.attribution import evaluate_attribution, heldout_store

    if args.claims is not None:
        return _eval_claims(args, settings)

    sources = args.heldout or sorted(WME_SAMPLES.glob("*_namespace_0.tar.gz"))
    attributor = AnswerAttributor(open_retriever(settings))
    with tempfile.TemporaryDirectory() as tmp:
        held = heldout_store(sources, Path(tmp) / "heldout.sqlite")
        try:
            result = evaluate_attribution(attributor, held, per_kind=args.per_kind, seed=args.seed)
        finally:
            held.close()
    if args.output:
        from indexer.generation import write_json_atomic

        write_json_atomic(args.output, result)
    t = result["thresholds"]
    print(
        f"{result['items']} sentences; thresholds: supported ≥ {t['supported']}, "
        f"partial ≥ {t['partial']} (calibrated on the calibration half)"
    )
    print(
        f"{'half':<12} {'n':>4} {'precision':>9} {'recall':>6} {'top1':>5}  supported rate by kind"
    )
    for half in ("calibration", "report"):
        m = result[half]
        rates = "  ".join(f"{k} {v['supported_rate']}" for k, v in m["by_kind"].items() if v["n"])
        print(
            f"{half:<12} {m['n']:>4} {m['precision']!s:>9} {m['recall']!s:>6} "
            f"{m['top1_passage_accuracy']!s:>5}  {rates}"
        )
    lat = result["latency_5_sentences"]
    print(f"5-sentence answer latency: p50 {lat.get('p50_s')} s, max {lat.get('max_s')} s")
    return EXIT_OK


def add_attribute_parsers(commands: Any) -> None:
    attribute = commands.add_parser(
        "attribute",
        help="cite the Wikipedia passages behind each sentence of an answer (stdin)",
        description="Read an answer on stdin, split it into sentences and, for each, find the "
        "passages that support it (--passage-id ones first, then the whole index), with a "
        "support label (supported / partial / contradicted / unsupported), a quote and the "
        "attribution; "
        "print the answer with footnotes and its references.",
    )
    attribute.add_argument("--index", dest="index_dir", type=Path, help="index directory")
    attribute.add_argument("--model", help="embedding model (default: the index's own)")
    attribute.add_argument(
        "--passage-id", dest="passage_ids", action="append", help="a passage the answer used"
    )
    attribute.add_argument("--wiki", dest="wikis", action="append", help="only this wiki")
    attribute.add_argument(
        "--language", dest="languages", action="append", help="only this language"
    )
    attribute.add_argument("-k", type=int, default=3, help="citations per sentence (default 3)")
    attribute.add_argument(
        "--no-search-fallback",
        action="store_true",
        help="with --passage-id: do not search the index for unsupported sentences",
    )
    attribute.add_argument("--max-answer-chars", type=int, help="longest answer (default 5000)")
    attribute.add_argument("--json", action="store_true", help="print the result as JSON")
    attribute.set_defaults(handler=cmd_attribute, settings_from=retrieval_settings)

    evaluate = commands.add_parser(
        "eval-attribution",
        help="measure answer attribution (precision / recall of 'supported')",
        description="Draw positives (verbatim, words dropped, clauses reordered) from the "
        "index's passages and negatives (sentences of articles not in the index, positives "
        "with a number or a name changed), calibrate the thresholds on one half and report "
        "precision and recall of 'supported', top-1 passage accuracy and latency on the other.",
    )
    evaluate.add_argument("--index", dest="index_dir", type=Path, help="index directory")
    evaluate.add_argument("--model", help="embedding model (default: the index's own)")
    evaluate.add_argument(
        "--heldout",
        type=Path,
        action="append",
        help="export with the articles negatives are drawn from (repeatable; default: the "
        "bundled WME samples; articles whose title is indexed are left out)",
    )
    evaluate.add_argument(
        "--claims",
        type=Path,
        help="labelled claims (JSONL: claim, label supported/contradicted/unsupported, kind, "
        "evidence_passage_text_prefix): report precision and recall per label and kind, the "
        "confusion matrix and the false-supported rate instead of the generated sentences",
    )
    evaluate.add_argument("--per-kind", type=int, default=40, help="sentences per kind")
    evaluate.add_argument("--seed", type=int, default=13)
    evaluate.add_argument("--output", type=Path, help="write the figures as JSON here")
    evaluate.set_defaults(handler=cmd_eval_attribution, settings_from=retrieval_settings)
