"""Language-aware search over HTTP, on a real index of three wikis in two languages (simplewiki
and enwikiversity in English, ruwiki in Russian) built with the multilingual embedder: the
query's language is detected and reported, BM25 scores only passages in the query's language,
``cross_lingual: false`` keeps the answer in that language, and an English question finds the
Russian passage that answers it. Also: ``wikirag eval`` reads the multilingual fields and
reports per language and per kind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.evaluation.retrieval import evaluate, load_questions
from app.retrieval.ranking import SearchRequest
from app.retrieval.retriever import HybridRetriever, LoadedIndex
from indexer.embedding import E5Embedder
from indexer.errors import InvalidInput

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def e5(e5_embedder: E5Embedder) -> E5Embedder:
    return e5_embedder


@pytest.fixture(scope="module")
def index_dir(e5_index: Path) -> Path:
    return e5_index


@pytest.fixture(scope="module")
def client(e5_client: TestClient) -> TestClient:
    return e5_client


def _search(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/search", json={"k": 10, **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_the_query_language_is_detected_and_reported(client: TestClient) -> None:
    russian = _search(client, query="Кто разработал язык программирования Squirrel?")
    assert russian["query_language"]["language"] == "ru"
    assert russian["query_language"]["detected"] is True
    assert russian["query_language"]["confidence"] >= 0.8
    english = _search(client, query="When did Einstein receive the Nobel Prize?")
    assert english["query_language"]["language"] == "en"
    given = _search(client, query="Einstein", query_language="ru")
    assert given["query_language"] == {"language": "ru", "confidence": 1.0, "detected": False}


def test_bm25_scores_only_passages_in_the_query_language(client: TestClient) -> None:
    body = _search(client, query="Кто разработал язык программирования Squirrel?")
    lexical = [r for r in body["results"] if r["scores"]["lexical"] is not None]
    assert lexical, "the Russian question has Russian BM25 matches"
    assert {r["wiki"] for r in lexical} == {"ruwiki"}
    english = _search(client, query="Einstein theory of relativity Nobel Prize")
    scored = [r for r in english["results"] if r["scores"]["lexical"] is not None]
    assert scored and {r["language"] for r in scored} <= {"en", "simple"}
    # keywords alone (mode "lexical") are looked up in every language: a name is one word
    name = _search(client, query="Squirrel Lua", mode="lexical")
    assert name["query_language"]["language"] == "en"
    assert name["results"] and {r["wiki"] for r in name["results"]} == {"ruwiki"}
    assert _search(client, query="Squirrel Lua", mode="lexical", languages=["en"])["results"] == []


def test_cross_lingual_false_keeps_results_in_the_query_language(client: TestClient) -> None:
    question = "Who designed the Squirrel programming language?"
    kept = _search(client, query=question, cross_lingual=False)
    assert kept["results"] and {r["language"] for r in kept["results"]} <= {"en", "simple"}
    crossing = _search(client, query=question)
    assert "ruwiki" in {r["wiki"] for r in crossing["results"][:3]}
    russian = _search(client, query="Кто разработал Squirrel?", cross_lingual=False)
    assert russian["results"] and {r["wiki"] for r in russian["results"]} == {"ruwiki"}


def test_an_english_question_finds_the_russian_answer(client: TestClient) -> None:
    body = _search(client, query="Who designed the Squirrel programming language?")
    assert body["query_language"]["language"] == "en"
    top = body["results"][0]
    assert top["wiki"] == "ruwiki" and top["text"].startswith("Squirrel — интерпретируемый")
    # no BM25 across languages: English words scored against Russian text are noise
    assert top["scores"]["lexical"] is None
    filtered = _search(client, query="What are the main features of Squirrel?", languages=["ru"])
    assert filtered["results"] and all(r["scores"]["lexical"] is None for r in filtered["results"])


def test_an_unknown_query_language_is_a_422(client: TestClient) -> None:
    response = client.post("/v1/search", json={"query": "Einstein", "query_language": "xx"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown-language"


def test_eval_reads_multilingual_fields_and_reports_per_language_and_kind(
    index_dir: Path, e5: E5Embedder, tmp_path: Path
) -> None:
    rows = [
        {"id": "q1", "question": "Кто разработал язык Squirrel?", "answers": ["скриптового"],
         "question_language": "ru", "languages": None, "kind": "mono"},
        {"id": "q2", "question": "What is Squirrel for?", "answers": ["скриптового"],
         "question_language": "en", "languages": ["ru"], "kind": "cross"},
        {"id": "q3", "question": "Who was Albert Einstein?", "answers": ["physicist"],
         "question_language": "en", "languages": ["simple"], "kind": "mono"},
    ]  # fmt: skip
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    questions = list(load_questions(path))
    assert questions[1].languages == ("ru",) and questions[1].kind == "cross"
    assert questions[0].languages is None and questions[0].question_language == "ru"
    index = LoadedIndex.open(index_dir, e5.info)
    try:
        retriever = HybridRetriever(index, e5)
        assert retriever.query_language(SearchRequest("What is Squirrel for?")).language == "en"
        result = evaluate(retriever, questions, progress=False)
    finally:
        index.close()
    assert result["questions"] == 3
    assert set(result["by_language"]) == {"en", "ru"} and set(result["by_kind"]) == {
        "cross",
        "mono",
    }
    assert result["by_language"]["en"]["questions"] == 2
    assert result["by_kind"]["mono"]["questions"] == 2
    assert {k: v["questions"] for k, v in result["by_language_kind"].items()} == {
        "en/cross": 1,
        "en/mono": 1,
        "ru/mono": 1,
    }
    # the Russian question's answer is in a Russian passage it finds
    assert result["by_language_kind"]["ru/mono"]["modes"]["hybrid"]["top5"] == 1.0
    assert result["by_language_kind"]["en/cross"]["modes"]["dense"]["top5"] == 1.0
    for part in (*result["by_language"].values(), *result["by_kind"].values()):
        assert set(part["modes"]) == {"hybrid", "dense", "lexical"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"question": "q", "answers": ["a"], "languages": "fr"}', "languages must be"),
        ('{"question": "q", "answers": ["a"], "languages": []}', "languages must be"),
        ('{"question": "q", "answers": ["a"], "kind": 3}', "kind must be"),
    ],
)
def test_bad_multilingual_fields_are_named(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n", "utf-8")
    with pytest.raises(InvalidInput, match=f"line 1 is not a question: {message}"):
        list(load_questions(path))


def test_every_passage_and_citation_carries_its_wikidata_item(client: TestClient) -> None:
    body = _search(client, query="Albert Einstein Nobel Prize", k=20)
    items = {(r["wiki"], r["wikidata_id"]) for r in body["results"]}
    assert ("simplewiki", "Q937") in items and ("enwikiversity", "Q937") in items
    assert all(r["wikidata_id"] in {"Q937", "Q1200182"} for r in body["results"])
    top = body["results"][0]
    passage = client.get(f"/v1/passages/{top['passage_id']}")
    assert passage.status_code == 200 and passage.json()["wikidata_id"] == "Q937"
    cited = client.get(f"/v1/citations/{top['wiki']}/revisions/{top['revision_id']}")
    assert cited.status_code == 200 and cited.json()["wikidata_id"] == "Q937"


def test_group_by_entity_keeps_the_best_passages_per_wikidata_item(client: TestClient) -> None:
    # Einstein is one item (Q937) in simplewiki and in enwikiversity: two articles, one entity.
    query = "Albert Einstein Nobel Prize"
    plain = _search(client, query=query, k=20)["results"]
    grouped = _search(client, query=query, k=20, group_by="entity")["results"]
    assert [r["wikidata_id"] for r in grouped] == ["Q937", "Q1200182"]
    assert grouped[0]["passage_id"] == plain[0]["passage_id"]  # the best passage of the item
    two = _search(client, query=query, k=20, group_by="entity", per_group=2)["results"]
    assert [r["wikidata_id"] for r in two] == ["Q937", "Q937", "Q1200182", "Q1200182"]
    assert [r["passage_id"] for r in two[:2]] == [r["passage_id"] for r in plain[:2]]
    articles = _search(client, query=query, k=20, group_by="article")["results"]
    assert sorted(r["wiki"] for r in articles) == ["enwikiversity", "ruwiki", "simplewiki"]
    bad = client.post("/v1/search", json={"query": query, "group_by": "item"})
    assert bad.status_code == 422


def test_the_cli_takes_the_query_language_cross_lingual_and_entity_flags(
    index_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.cli.main import main

    base = ["search", "--index", str(index_dir), "--model", "multilingual-e5-small"]
    question = "Who designed the Squirrel programming language?"
    assert main([*base, question, "-k", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("query language: en (detected, ") and "Squirrel" in out
    assert main([*base, question, "--no-cross-lingual", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["wikidata_id"] == "Q937" for r in rows)  # English passages only
    assert main([*base, "Einstein", "--max-per-entity", "1", "--json", "-k", "20"]) == 0
    assert [r["wikidata_id"] for r in json.loads(capsys.readouterr().out)] == ["Q937", "Q1200182"]
    assert main([*base, "Einstein", "--query-language", "ru", "-k", "1"]) == 0
    assert capsys.readouterr().out.startswith("query language: ru (given)")
    assert main([*base, "Einstein", "--query-language", "xx"]) == 1
    err = capsys.readouterr().err
    assert "--query-language 'xx' is not a language of the index" in err and "ru" in err
