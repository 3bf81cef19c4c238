"""Answer attribution on labelled claims: precision and recall per label, the confusion matrix,
labels per kind and the false-"supported" rate (``wikirag eval-attribution --claims``), plus
the latency of 5-sentence answers, on the bundled sample index.

    python -m benchmarks.attribution_claims --index var/multilingual/multilingual-e5-small

Claims: ``data/samples/attribution/claims-dev.jsonl``. Answers for the latency: the claims in
file order, five per answer, attributed one at a time (one worker, in process). Results:
``benchmarks/results/attribution_claims.json`` and the ``attribution-claims`` section of
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks._common import (
    SAMPLES,
    machine_info,
    md_table,
    percentile,
    update_results_md,
    write_result,
)

CLAIMS = SAMPLES / "attribution" / "claims-dev.jsonl"


def main() -> None:
    from app.attribution.verifier import AnswerAttributor
    from app.evaluation.claims import GOLD_LABELS, PREDICTED, evaluate_claims, load_claims
    from app.retrieval.retriever import HybridRetriever, LoadedIndex, published_model
    from indexer.embedding import open_embedder

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True, help="the sample index")
    parser.add_argument("--claims", type=Path, default=CLAIMS)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    embedder = open_embedder(published_model(args.index), threads=1)
    index = LoadedIndex.open(args.index, embedder.info)
    attributor = AnswerAttributor(HybridRetriever(index, embedder))
    claims = list(load_claims(args.claims))
    result = evaluate_claims(attributor, claims)
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
    latency = {
        "answers": len(ms),
        "p50_ms": round(percentile(ms, 50), 1),
        "p99_ms": round(percentile(ms, 99), 1),
    }
    result["latency_5_sentences"] = latency
    result["machine"] = machine_info()
    print({k: v for k, v in result.items() if k not in ("rows", "by_kind")})
    if args.no_write:
        return
    write_result("attribution_claims", result)
    per_label = result["per_label"]
    body = (
        f"`{args.claims.name}` ({result['claims']} claims) over `{args.index}` "
        f"(model {result['model']}; thresholds supported ≥ "
        f"{result['thresholds']['supported']}, partial ≥ {result['thresholds']['partial']}, "
        f"contradicted ≥ {result['thresholds']['contradicted']}). A claim is supported only "
        "when every sentence is.\n\n"
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
        "Targets (issue 18): false supported ≤ 2 %, supported precision ≥ 0.97 and recall ≥ "
        "0.85, contradicted recall ≥ 0.75, unsupported precision ≥ 0.90, 5-sentence p50 ≤ "
        "150 ms and p99 ≤ 600 ms."
    )
    update_results_md("attribution-claims", body)
    print(body)


if __name__ == "__main__":
    main()
