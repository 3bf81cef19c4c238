"""Answer attribution (app/attribution/verifier.py, POST /v1/attribute, `wikirag attribute`)
against the real tiny index of tests/test_api.py (simplewiki "Albert Einstein", the ruwiki
and enwikiversity samples), built once per session and shared with it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.attribution.verifier import (
    AnswerAttributor,
    AttributeOptions,
    MalformedPassageIds,
    SupportLabel,
    check_agreement,
    numbers_in,
    split_sentences,
)
from app.retrieval.retriever import HybridRetriever, LoadedIndex
from indexer.embedding.text import embedding_text
from indexer.store import PassageRecord
from tests.conftest import ROOT
from tests.test_api import error_of, service_settings, shared_embedder, shared_index

pytestmark = pytest.mark.slow

UNRELATED = "The Pacific Ocean is the largest and deepest of the oceanic divisions of Earth."


# -- sentence splitting (no index) ----------------------------------------------------------


def _texts(text: str) -> list[str]:
    spans = split_sentences(text)
    for s in spans:
        assert text[s.start : s.end] == s.text
    return [s.text for s in spans]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Dr. Smith paid 3.5 dollars, e.g. in coins. Then he left!  Why? Nobody knows.",
            [
                "Dr. Smith paid 3.5 dollars, e.g. in coins.",
                "Then he left!",
                "Why?",
                "Nobody knows.",
            ],
        ),
        (
            "J. R. R. Tolkien was born in 1892. He moved to the U.S. in 1900 and Mr. Brown too.",
            [
                "J. R. R. Tolkien was born in 1892.",
                "He moved to the U.S. in 1900 and Mr. Brown too.",
            ],
        ),
        (
            "Einstein wurde am 14. März 1879 in Ulm geboren, z. B. laut Dr. Müller. Er starb 1955.",
            [
                "Einstein wurde am 14. März 1879 in Ulm geboren, z. B. laut Dr. Müller.",
                "Er starb 1955.",
            ],
        ),
        (
            "M. Dupont a payé 3,5 euros, etc. Il est parti. « Pourquoi ? » Personne.",
            ["M. Dupont a payé 3,5 euros, etc. Il est parti.", "« Pourquoi ? »", "Personne."],
        ),
        (
            "Эйнштейн родился в 1879 г. в Ульме, т. е. в Германии. Он умер в 1955 г. Конец.",
            ["Эйнштейн родился в 1879 г. в Ульме, т. е. в Германии.", "Он умер в 1955 г. Конец."],
        ),
        (
            "O Sr. Silva nasceu em 1950. Viveu em Lisboa.\n\nFim da lista",
            ["O Sr. Silva nasceu em 1950.", "Viveu em Lisboa.", "Fim da lista"],
        ),
    ],
)
def test_split_sentences_keeps_abbreviations_initials_and_decimals(
    text: str, expected: list[str]
) -> None:
    assert _texts(text) == expected


def test_split_sentences_offsets_skip_whitespace() -> None:
    text = "  First one.   Second one.  "
    spans = split_sentences(text)
    assert [(s.start, s.end) for s in spans] == [(2, 12), (15, 26)]
    assert split_sentences("   ") == []


def test_numbers_are_normalised() -> None:
    assert numbers_in("In 1921, 3,5 % of 12,000 people") == {"1921", "3.5", "12000"}


# -- the attributor against the real index ---------------------------------------------------


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_index(tmp_path_factory)


@pytest.fixture(scope="module")
def attributor(index_dir: Path) -> Iterator[AnswerAttributor]:
    embedder = shared_embedder()
    index = LoadedIndex.open(index_dir, embedder.info)
    yield AnswerAttributor(HybridRetriever(index, embedder))
    index.close()


@pytest.fixture(scope="module")
def year_sentence(attributor: AnswerAttributor) -> tuple[PassageRecord, str]:
    """A sentence with a year, taken verbatim from an indexed simplewiki passage."""
    for record in attributor.store.iter_current_passages():
        if record.wiki != "simplewiki":
            continue
        for span in split_sentences(record.text):
            words = span.text.split()
            if 10 <= len(words) <= 40 and re.search(r"\b1[89]\d\d\b", span.text):
                return record, span.text
    raise AssertionError("no sentence with a year in the simplewiki sample")


def _change_year(sentence: str) -> str:
    return re.sub(r"\b(1[89]\d\d)\b", lambda m: str(int(m.group(1)) + 1), sentence, count=1)


def test_verbatim_sentence_is_supported_by_its_passage_with_a_quote(
    attributor: AnswerAttributor, year_sentence: tuple[PassageRecord, str]
) -> None:
    record, sentence = year_sentence
    result = attributor.attribute(sentence)
    (attributed,) = result.sentences
    assert attributed.label is SupportLabel.SUPPORTED
    best = attributed.citations[0]
    assert best.passage_id == record.passage_id
    assert best.quote in record.text and sentence in best.quote
    assert record.text[best.quote_start : best.quote_end] == best.quote
    assert best.agreement.ok
    assert best.attribution.revision_id == record.revision_id
    # the quote states it word for word: the score is 1.0, whatever the cosine of one
    # sentence with its whole passage
    assert best.score == 1.0 and best.components["verbatim"] == 1.0
    assert best.components["lexical"] == 1.0 and 0 < best.components["dense"] < 1.0


def test_changed_year_is_not_supported(
    attributor: AnswerAttributor, year_sentence: tuple[PassageRecord, str]
) -> None:
    record, sentence = year_sentence
    changed = _change_year(sentence)
    assert changed != sentence
    (attributed,) = attributor.attribute(changed).sentences
    assert attributed.label is not SupportLabel.SUPPORTED
    for citation in attributed.citations:
        if citation.passage_id == record.passage_id:
            assert citation.agreement.missing_numbers
    agreement = check_agreement(changed, record, (0, len(record.text)))
    assert agreement.missing_numbers or not set(numbers_in(changed)) <= numbers_in(record.text)


def test_unrelated_sentence_is_unsupported(attributor: AnswerAttributor) -> None:
    (attributed,) = attributor.attribute(UNRELATED).sentences
    assert attributed.label is SupportLabel.UNSUPPORTED
    assert attributed.citations == ()


def test_passage_ids_are_checked_first_and_unknown_ones_reported(
    attributor: AnswerAttributor, year_sentence: tuple[PassageRecord, str]
) -> None:
    record, sentence = year_sentence
    unknown = "simplewiki:1:999"
    options = AttributeOptions(passage_ids=(unknown, record.passage_id), search_fallback=False)
    result = attributor.attribute(f"{sentence} {UNRELATED}", options)
    assert result.unknown_passage_ids == (unknown,)
    first, second = result.sentences
    assert first.label is SupportLabel.SUPPORTED
    assert first.citations[0].passage_id == record.passage_id
    assert second.label is SupportLabel.UNSUPPORTED
    with pytest.raises(MalformedPassageIds) as caught:
        attributor.attribute(sentence, AttributeOptions(passage_ids=("not-an-id",)))
    assert caught.value.ids == ["not-an-id"]


def test_footnotes_and_references_carry_full_attribution(
    attributor: AnswerAttributor, year_sentence: tuple[PassageRecord, str]
) -> None:
    record, sentence = year_sentence
    answer = f"{sentence} {UNRELATED}"
    result = attributor.attribute(answer, AttributeOptions(passage_ids=(record.passage_id,)))
    footnoted = result.footnoted
    assert footnoted.text.startswith(sentence + "[1] " + UNRELATED)
    assert UNRELATED + "[" not in footnoted.text
    assert "\n\nReferences\n[1] " in footnoted.text
    assert footnoted.markdown.startswith(sentence + "[^1] ")
    assert "\n[^1]: " in footnoted.markdown
    assert '<sup><a href="#wikirag-ref-1">[1]</a></sup>' in footnoted.html
    assert '<li id="wikirag-ref-1">' in footnoted.html
    (reference,) = result.references
    attribution = reference.attribution
    assert reference.number == 1 and reference.passage.passage_id == record.passage_id
    assert f"oldid={record.revision_id}" in attribution.url
    assert "action=history" in attribution.authors_url
    assert attribution.license.identifier == record.license.identifier
    assert attribution.text in footnoted.text
    data = result.as_dict()
    json.dumps(data)
    assert data["references"][0]["attribution"]["url"] == attribution.url
    assert data["sentences"][0]["citations"][0]["quote"] in record.text


def test_dense_scores_are_the_stored_passage_vectors_and_only_sentences_are_embedded(
    index_dir: Path, year_sentence: tuple[PassageRecord, str]
) -> None:
    """The dense part of a support score is the cosine of the sentence's embedding with the
    passage's vector as the index stores it (the passage embedded as the build embeds it:
    title and section first), so attribution embeds the answer's sentences and nothing else;
    attributing the same answer again runs the model on nothing new."""
    embedder = shared_embedder()
    index = LoadedIndex.open(index_dir, embedder.info)
    try:
        retriever = HybridRetriever(index, embedder)
        attributor = AnswerAttributor(retriever)
        _, sentence = year_sentence
        answer = f"{sentence} {UNRELATED} Einstein was a physicist."
        before = retriever._encode.cache_info()
        passages_embedded: list[int] = []
        encode = embedder.encode

        def counted(texts: Any, **kwargs: Any) -> Any:  # the real model, calls counted
            passages_embedded.append(len(texts))
            return encode(texts, **kwargs)

        embedder.encode = counted  # type: ignore[method-assign]
        try:
            first = attributor.attribute(answer)
        finally:
            del embedder.encode
        after = retriever._encode.cache_info()
        assert after.misses - before.misses == 3  # the three sentences, no quote windows
        assert passages_embedded == []  # every cited passage's vector came from the index
        cited = [(s.text, c) for s in first.sentences for c in s.citations]
        assert cited, "the verbatim sentence has citations"
        context = index.manifest.model.embed_context
        for text, citation in cited:
            passage = embedder.encode([embedding_text(citation.passage, context)])[0]
            assert citation.components["dense"] == pytest.approx(
                float(np.clip(embedder.encode_query(text) @ passage, 0, 1)), abs=2e-3
            )
        again = AnswerAttributor(retriever).attribute(answer)
        assert retriever._encode.cache_info().misses == after.misses
        assert again.as_dict()["sentences"] == first.as_dict()["sentences"]
    finally:
        index.close()


def test_each_text_of_an_answer_is_embedded_once_even_with_the_cache_off(
    index_dir: Path, year_sentence: tuple[PassageRecord, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sentence's vector serves its search and its scores, and a window quoted for two
    sentences is embedded once, without the retriever's cache
    (``WIKIRAG_ENCODE_CACHE_SIZE=0``)."""
    embedder = shared_embedder()
    embedded: list[str] = []
    real = embedder.encode_query

    def counting(text: str) -> np.ndarray:
        embedded.append(text)
        return real(text)

    monkeypatch.setattr(embedder, "encode_query", counting)
    index = LoadedIndex.open(index_dir, embedder.info)
    try:
        _, sentence = year_sentence
        answer = f"{sentence} {sentence}"
        uncached = AnswerAttributor(HybridRetriever(index, embedder, encode_cache_size=0))
        result = uncached.attribute(answer)
        assert embedded.count(sentence) == 1
        assert len(embedded) == len(set(embedded))
        assert len(result.sentences) == 2 and result.sentences[0].citations
        cached = AnswerAttributor(HybridRetriever(index, embedder)).attribute(answer)
        assert cached.as_dict()["sentences"] == result.as_dict()["sentences"]
    finally:
        index.close()


# -- HTTP -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = service_settings(
        index_dir, tmp_path_factory.mktemp("attr-svc"), max_answer_chars=400
    )
    with TestClient(create_app(settings, embedder=shared_embedder())) as test_client:
        yield test_client


def test_http_attribute(client: TestClient, year_sentence: tuple[PassageRecord, str]) -> None:
    record, sentence = year_sentence
    response = client.post(
        "/v1/attribute",
        json={
            "answer": f"{sentence} {UNRELATED}",
            "passage_ids": [record.passage_id, "simplewiki:1:9"],
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["unknown_passage_ids"] == ["simplewiki:1:9"]
    first, second = body["sentences"]
    assert (first["label"], second["label"]) == ("supported", "unsupported")
    assert first["start"] == 0 and first["end"] == len(sentence)
    citation = first["citations"][0]
    assert citation["passage_id"] == record.passage_id
    assert citation["quote"] in record.text
    assert citation["attribution"]["license"]["identifier"] == record.license.identifier
    assert body["references"][0]["passage_id"] == record.passage_id
    assert body["footnoted"]["text"].startswith(sentence + "[1]")
    assert body["generation"]


def test_http_attribute_errors(client: TestClient) -> None:
    error_of(client.post("/v1/attribute", json={"answer": "   "}), 422, "empty-answer")
    details = error_of(
        client.post("/v1/attribute", json={"answer": "x" * 401}), 422, "answer-too-long"
    )["details"]
    assert details == {"length": 401, "max_answer_chars": 400}
    error_of(
        client.post("/v1/attribute", json={"answer": "A sentence.", "passage_ids": ["bad id"]}),
        400,
        "malformed-passage-id",
    )
    error_of(
        client.post("/v1/attribute", json={"answer": "A sentence.", "wikis": ["xxwiki"]}),
        422,
        "unknown-wiki",
    )
    error_of(client.post("/v1/attribute", json={"answer": "A.", "extra": 1}), 422)
    error_of(client.post("/v1/attribute", json={}), 422)
    error_of(client.post("/v1/attribute", json={"answer": "A.", "k": 0}), 422)


# -- CLI --------------------------------------------------------------------------------------


def _cli(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )


def test_cli_attribute(index_dir: Path, year_sentence: tuple[PassageRecord, str]) -> None:
    record, sentence = year_sentence
    proc = _cli(
        "attribute", "--index", str(index_dir), "--json", "--passage-id", record.passage_id,
        "--no-search-fallback", stdin=sentence,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["sentences"][0]["label"] == "supported"
    assert data["references"][0]["passage_id"] == record.passage_id
    empty = _cli("attribute", "--index", str(index_dir), stdin="  \n")
    assert empty.returncode == 2 and "empty" in empty.stderr
