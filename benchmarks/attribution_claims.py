"""Answer attribution on labelled claims: precision and recall per label, the confusion matrix,
labels per kind and the false-"supported" rate (``wikirag eval-attribution --claims``), plus
the latency of 5-sentence answers, on the bundled sample index.

    python -m benchmarks.attribution_claims --index var/multilingual/multilingual-e5-small \
        --index var/multilingual/all-MiniLM-L6-v2

Claims: ``data/samples/attribution/claims-dev.jsonl``. Answers for the latency: the claims in
file order, five per answer, attributed one at a time (one worker, in process). Results:
``benchmarks/results/attribution_claims.json`` and the ``attribution-claims`` section of
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from benchmarks._common import (
    SAMPLES,
    machine_info,
    md_table,
    percentile,
    update_results_md,
    write_result,
)

CLAIMS = SAMPLES / "attribution" / "claims-dev.jsonl"


# Supported thresholds the operating-point table sweeps (the others stay the model's).
SWEEP = (0.7, 0.75, 0.8, 0.85, 0.88, 0.9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--index",
        type=Path,
        action="append",
        required=True,
        help="a sample index (repeat: one table per index, e.g. its e5 and MiniLM builds)",
    )
    parser.add_argument("--claims", type=Path, default=CLAIMS)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    runs = [run_index(index, args.claims) for index in args.index]
    result = {"runs": runs, "machine": machine_info()}
    if args.no_write:
        print([{k: v for k, v in r.items() if k not in ("rows", "by_kind")} for r in runs])
        return
    write_result("attribution_claims", result)
    body = "\n\n".join(section(run, args.claims) for run in runs) + (
        "\n\nTargets (issue 18): false supported ≤ 2 %, supported precision ≥ 0.97 and recall "
        "≥ 0.85, contradicted recall ≥ 0.75, unsupported precision ≥ 0.90, 5-sentence p50 ≤ "
        "150 ms and p99 ≤ 600 ms."
    )
    update_results_md("attribution-claims", body)
    print(body)


def run_index(index_dir: Path, claims_path: Path) -> dict[str, Any]:
    """The claims' figures on one index, the supported-threshold sweep and the latency."""
    from app.attribution.verifier import AnswerAttributor, AttributeOptions
    from app.evaluation.claims import evaluate_claims, load_claims
    from app.retrieval.retriever import HybridRetriever, LoadedIndex, published_model
    from indexer.embedding import open_embedder

    embedder = open_embedder(published_model(index_dir), threads=1)
    index = LoadedIndex.open(index_dir, embedder.info)
    attributor = AnswerAttributor(HybridRetriever(index, embedder))
    claims = list(load_claims(claims_path))
    result = evaluate_claims(attributor, claims)
    result["index"] = str(index_dir)
    sweep = []
    for threshold in SWEEP:
        point = evaluate_claims(attributor, claims, AttributeOptions(supported_threshold=threshold))
        supported = point["per_label"]["supported"]
        sweep.append(
            {
                "supported_threshold": threshold,
                "false_supported": point["false_supported"],
                "false_supported_rate": point["false_supported_rate"],
                "supported_precision": supported["precision"],
                "supported_recall": supported["recall"],
            }
        )
    result["sweep"] = sweep
    answers = [" ".join(c.claim for c in claims[i : i + 5]) for i in range(0, len(claims) - 4, 5)]
    # a fresh retriever without the embedding cache: the claims above filled it
    cold = AnswerAttributor(HybridRetriever(index, embedder, encode_cache_size=0))
    cold.attribute("Albert Einstein was a physicist.")  # warm-up
    ms: list[float] = []
    for answer in answers:
        started = time.perf_counter()
        cold.attribute(answer)
        ms.append((time.perf_counter() - started) * 1000)
    index.close()
    result["latency_5_sentences"] = {
        "answers": len(ms),
        "p50_ms": round(percentile(ms, 50), 1),
        "p99_ms": round(percentile(ms, 99), 1),
    }
    return result


def section(result: dict[str, Any], claims: Path) -> str:
    """The Markdown of one index's figures."""
    from app.evaluation.claims import GOLD_LABELS, PREDICTED

    per_label = result["per_label"]
    latency = result["latency_5_sentences"]
    t = result["thresholds"]
    return (
        f"**{result['model']}** — `{claims.name}` ({result['claims']} claims) over "
        f"`{result['index']}` (thresholds supported ≥ {t['supported']}, partial ≥ "
        f"{t['partial']}, contradicted ≥ {t['contradicted']}). A claim is supported only when "
        "every sentence is.\n\n"
        + md_table(
            ["label", "precision", "recall", "gold", "predicted"],
            [
                [label, m["precision"], m["recall"], m["gold"], m["predicted"]]
                for label, m in per_label.items()
            ],
        )
        + "\n\nConfusion (rows: gold, columns: predicted):\n\n"
        + md_table(
            ["gold", *PREDICTED],
            [[gold, *(result["confusion"][gold][p] for p in PREDICTED)] for gold in GOLD_LABELS],
        )
        + "\n\nBy kind:\n\n"
        + md_table(
            ["kind", "gold", "n", "right", *PREDICTED],
            [
                [kind, k["gold"], k["n"], k["accuracy"], *(k["predicted"][p] for p in PREDICTED)]
                for kind, k in result["by_kind"].items()
            ],
        )
        + f'\n\nFalse "supported" on contradicted or unsupported claims: '
        f"**{result['false_supported']} of "
        f"{per_label['contradicted']['gold'] + per_label['unsupported']['gold']} "
        f"({result['false_supported_rate']})**; contradicted claims citing the passage that "
        f"contradicts them: {result['contradicted_cites_evidence']}. Latency of a 5-sentence "
        f"answer (in process, one thread, embedding cache off, {latency['answers']} answers): p50 "
        f"{latency['p50_ms']} ms, p99 {latency['p99_ms']} ms.\n\n"
        "Operating points (the supported threshold alone varied; the model's others kept):\n\n"
        + md_table(
            ["supported ≥", "false supported", "rate", "supported precision", "recall"],
            [
                [
                    p["supported_threshold"],
                    p["false_supported"],
                    p["false_supported_rate"],
                    p["supported_precision"],
                    p["supported_recall"],
                ]
                for p in result["sweep"]
            ],
        )
    )


if __name__ == "__main__":
    main()
