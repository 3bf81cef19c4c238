"""Answer attribution quality and latency (``python -m benchmarks.attribution_eval``).

Builds a small index of five real sample articles (simplewiki "Albert Einstein", enwiki
"Squirrel", frwiki "Alexandros Ioannis Ginnis", ruwiki and enwikiversity samples), draws
negatives from the other sample articles (none of whose titles is indexed), and runs
:func:`app.evaluation.attribution.evaluate_attribution`: thresholds calibrated on one half, figures
reported on the other. Writes ``results/attribution_eval.json`` and the ``attribution``
section of ``RESULTS.md``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from app.attribution.verifier import AnswerAttributor
from app.evaluation.attribution import evaluate_attribution, heldout_store, subset_source
from app.retrieval.retriever import HybridRetriever, LoadedIndex, serving_embedder
from benchmarks._common import (
    LoadSampler,
    machine_info,
    machine_line,
    md_table,
    update_results_md,
    write_result,
)
from indexer.build import BuildOptions, build_index
from indexer.ingest import IngestOptions

WME = Path(__file__).resolve().parent.parent / "data" / "samples" / "wme"
INDEXED = {
    "simplewiki_namespace_0.tar.gz": ["Albert Einstein"],
    "enwiki_namespace_0.tar.gz": ["Squirrel"],
    "frwiki_namespace_0.tar.gz": ["Alexandros Ioannis Ginnis"],
}
WHOLE = ["ruwiki_namespace_0.tar.gz", "enwikiversity_namespace_0.tar.gz"]
HELDOUT = ["enwiki_namespace_0.tar.gz", "frwiki_namespace_0.tar.gz", "ptwiki_namespace_0.tar.gz"]


def run(work: Path, per_kind: int) -> dict[str, Any]:
    sources = [
        subset_source(WME / name, titles, work / f"{name.split('_')[0]}-subset.ndjson.gz")
        for name, titles in INDEXED.items()
    ] + [WME / name for name in WHOLE]
    # as the service embeds: ONNX (verified against PyTorch), one thread
    embedder = serving_embedder(None, 1, query_encoder="onnx")
    embedder.load()
    options = BuildOptions(ingest=IngestOptions(progress=False), progress=False)
    build_index(sources, work / "index", options, embedder=embedder)
    index = LoadedIndex.open(work / "index", embedder.info)
    attributor = AnswerAttributor(HybridRetriever(index, embedder))
    held = heldout_store([WME / name for name in HELDOUT], work / "heldout.sqlite")
    return evaluate_attribution(attributor, held, per_kind=per_kind)


def markdown(result: dict[str, Any], info: dict[str, Any], load: dict[str, Any]) -> str:
    rows = []
    for half in ("calibration", "report"):
        m = result[half]
        rows.append(
            [half, m["n"], m["precision"], m["recall"], m["top1_passage_accuracy"]]
            + [m["by_kind"][k]["supported_rate"] for k in m["by_kind"]]
        )
    kinds = list(result["report"]["by_kind"])
    t = result["thresholds"]
    lat = result["latency_5_sentences"]
    dist = "; ".join(
        f"{kind} {d['min']} / {d['median']} / {d['max']}"
        for kind, d in result["best_score_by_kind"].items()
    )
    return f"""## Answer attribution (`python -m benchmarks.attribution_eval`)

`POST /v1/attribute` / `wikirag attribute` without passage ids (whole-index search), scorer
`{result["scorer"]}`. Index: {", ".join(result["indexed_articles"])}. Negatives from articles not
in the index: {", ".join(result["heldout_articles"])}. Positives: verbatim sentences of indexed
passages, `dropped` (1–2 words left out), `reordered` (halves swapped at a comma); negatives:
held-out sentences, `changed_number` (one number changed), `changed_name` (one name replaced).
Thresholds calibrated on the calibration half (by passage / by held-out article):
**supported ≥ {t["supported"]}, partial ≥ {t["partial"]}**, then measured on the report half.
Precision/recall are of the label `supported`; top-1 = the best citation is the passage the
positive came from; the last columns are the share of each kind labelled `supported`.

{md_table(["half", "sentences", "precision", "recall", "top-1", *kinds], rows)}

Best candidate score per kind (min / median / max, all items):
{dist}

Latency of a 5-sentence answer: p50 **{lat.get("p50_s")} s**, max {lat.get("max_s")} s
({lat.get("answers")} answers, embedding cache off; ONNX, one thread, as the service runs);
{result["per_sentence_s"]} s per sentence during the evaluation.

{machine_line(info, load)}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-kind", type=int, default=40, help="sentences per kind")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    info = machine_info()
    with tempfile.TemporaryDirectory() as tmp, LoadSampler() as sampler:
        result = run(Path(tmp), args.per_kind)
    load = sampler.summary()
    result["machine"] = info
    result["load"] = load
    text = markdown(result, info, load)
    print(text)
    if not args.no_write:
        write_result("attribution_eval", result)
        update_results_md("attribution", text)


if __name__ == "__main__":
    main()
