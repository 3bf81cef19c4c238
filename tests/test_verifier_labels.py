"""The four attribution labels over HTTP, on real sentences of a real index (simplewiki's
Albert Einstein, ruwiki and enwikiversity, built with the multilingual embedder): a
restatement is supported; a negation, a changed year, a swapped place and a changed relation
are contradicted, citing the passage that says otherwise and saying what disagrees; a claim
nothing in the index bears on is unsupported. Also: the contradiction rules alone, in the
languages the service writes attribution for, and ``wikirag eval-attribution --claims``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.attribution.judgement import (
    Disagreement,
    clauses,
    entities,
    find_disagreement,
    numbers_in,
    word_order,
)
from app.attribution.verifier import (
    Agreement,
    AnswerAttributor,
    AttributeOptions,
    SupportLabel,
    label_for,
    thresholds_for,
)
from app.evaluation.claims import evaluate_claims, load_claims
from app.retrieval.retriever import HybridRetriever, LoadedIndex
from indexer.embedding import E5_MODEL_ID, E5Embedder
from indexer.errors import InvalidInput

pytestmark = pytest.mark.slow

BORN = "Einstein was born in Ulm, Württemberg, Germany, on 14 March 1879."


@pytest.fixture(scope="module")
def e5(e5_embedder: E5Embedder) -> E5Embedder:
    return e5_embedder


@pytest.fixture(scope="module")
def index_dir(e5_index: Path) -> Path:
    return e5_index


@pytest.fixture(scope="module")
def client(e5_client: TestClient) -> TestClient:
    return e5_client


def _sentence(client: TestClient, answer: str) -> dict[str, Any]:
    response = client.post("/v1/attribute", json={"answer": answer})
    assert response.status_code == 200, response.text
    sentences: list[dict[str, Any]] = response.json()["sentences"]
    assert len(sentences) == 1
    return sentences[0]


def test_a_restatement_is_supported_with_its_quote(client: TestClient) -> None:
    sentence = _sentence(client, BORN)
    assert sentence["label"] == "supported"
    top = sentence["citations"][0]
    assert top["label"] == "supported" and top["quote"] == BORN
    assert top["disagreement"] is None
    assert top["attribution"]["license"]["identifier"] == "CC-BY-SA-3.0"  # as the export says


@pytest.mark.parametrize(
    ("answer", "kind", "claim", "passage", "quote"),
    [
        (
            "Einstein was never awarded the Nobel Prize in Physics.",
            "polarity", "never", "", "Nobel Prize in Physics (1921)",
        ),
        (
            "He won the Nobel Prize in Physics in 1925.",
            "number", "1925", "1921",
            "He received the Nobel Prize in Physics in 1921 for theoretical physics.",
        ),
        (BORN.replace("1879", "1885"), "number", "1885", "1879", BORN),
        (BORN.replace("Ulm", "Munich"), "entity", "munich", "ulm", BORN),
        (BORN.replace("was born", "died"), "relation", "died", "born", BORN),
    ],
    ids=["negation", "wrong-year", "wrong-birth-year", "swapped-place", "born-for-died"],
)  # fmt: skip
def test_a_contradiction_cites_the_passage_and_says_what_disagrees(
    client: TestClient, answer: str, kind: str, claim: str, passage: str, quote: str
) -> None:
    sentence = _sentence(client, answer)
    assert sentence["label"] == "contradicted", sentence
    top = sentence["citations"][0]
    assert top["label"] == "contradicted" and quote in top["quote"]
    assert top["passage_id"].startswith("simplewiki:")
    disagreement = top["disagreement"]
    assert (disagreement["kind"], disagreement["claim"], disagreement["passage"]) == (
        kind,
        claim,
        passage,
    )
    assert disagreement["reason"]


@pytest.mark.parametrize(
    ("answer", "kind", "claim", "passage", "quote"),
    [
        # the negation belongs to the passage's other clause ("…, but was not very religious")
        ("Einstein's family was not Jewish.", "polarity", "not", "", "His family was Jewish"),
        ("Einstein was part of the Manhattan Project.", "polarity", "", "not",
         "However, he was not part of the Manhattan Project"),
        # the same words before another name: "His cousin Elsa Löwenthal nursed him"
        ("His cousin Mileva nursed him back to health.", "entity", "mileva", "elsa",
         "His cousin Elsa Löwenthal nursed him back to health."),
        ("Hans Albert was born in Zürich, Switzerland in May 1904.", "entity", "zürich", "bern",
         "Hans Albert was born in Bern, Switzerland in May 1904."),
        # roles swapped: "Einstein divorced Mileva … and married Elsa"
        ("Einstein divorced Elsa in 1919 and married Mileva.", "entity", "elsa", "mileva",
         "Einstein divorced Mileva in 14 February 1919, and married Elsa"),
        ("The theory of special relativity was published by Max Planck in 1905.", "entity",
         "max planck", "einstein",
         "The theory of special relativity was published by Einstein in 1905"),
    ],
    ids=["negated-clause", "negated-passage", "slot-before", "born-in-slot", "roles-swapped",
         "agent"],
)  # fmt: skip
def test_more_contradictions_over_http(
    client: TestClient, answer: str, kind: str, claim: str, passage: str, quote: str
) -> None:
    sentence = _sentence(client, answer)
    assert sentence["label"] == "contradicted", sentence
    top = sentence["citations"][0]
    assert quote in top["quote"] and top["passage_id"].startswith("simplewiki:8368147:")
    assert (top["disagreement"]["kind"], top["disagreement"]["claim"]) == (kind, claim)
    assert top["disagreement"]["passage"] == passage


def test_a_paraphrase_is_supported_and_a_two_fact_summary_partly(client: TestClient) -> None:
    # "He lived in the United States and became an American citizen in 1940."
    sentence = _sentence(client, "Einstein became a citizen of the United States in 1940.")
    assert sentence["label"] == "supported"
    top = sentence["citations"][0]
    assert (
        top["passage_id"] == "simplewiki:8368147:3" and "American citizen in 1940" in top["quote"]
    )
    assert top["word_order"] >= 0.6 and top["cross_language"] is False
    # a name the passage gives three sentences earlier ("Eduard Tete Einstein") is no
    # missing name (the quote covers less of the sentence, so the score is lower)
    sentence = _sentence(
        client, "Eduard Tete Einstein was born in Zürich, Switzerland in July 1910."
    )
    top = sentence["citations"][0]
    assert top["quote"].startswith("Eduard was born in Zürich, Switzerland in July 1910.")
    assert top["missing_names"] == [] and top["passage_id"] == "simplewiki:8368147:16"
    # two facts from two sentences of one passage: the quote backs the second; the first's
    # year is named as what the quote does not say
    sentence = _sentence(
        client,
        "Einstein was born in Ulm in 1879 and did not begin speaking until he was 3 years old.",
    )
    assert sentence["label"] == "partial"
    top = sentence["citations"][0]
    assert top["quote"] == "Einstein did not begin speaking until he was 3 years old."
    assert top["missing_numbers"] == ["1879"] and top["disagreement"] is None


def test_an_english_claim_is_found_in_a_russian_passage(client: TestClient) -> None:
    """Across languages the words cannot be compared: the passage is found (by the
    multilingual embedding) and cited, and backs the claim at most partly."""
    sentence = _sentence(
        client,
        "Squirrel is an interpreted programming language designed for use as a scripting "
        "language in real-time applications such as computer games.",
    )
    assert sentence["label"] == "partial"
    top = sentence["citations"][0]
    assert top["passage_id"] == "ruwiki:131059810:0" and top["cross_language"] is True
    assert top["quote"].startswith("Squirrel — интерпретируемый язык программирования")
    assert set(top["components"]) == {"dense", "cross_language"}


@pytest.mark.parametrize(
    "answer",
    [
        "The Moon is made of cheese.",
        "Paris is the capital of Germany.",
        # topical but absent: the article is about Einstein, and says neither
        "Einstein won an Olympic gold medal in fencing.",
        "Einstein played the violin in the Berlin Philharmonic.",
    ],
)
def test_a_claim_nothing_bears_on_is_unsupported(client: TestClient, answer: str) -> None:
    sentence = _sentence(client, answer)
    assert sentence["label"] == "unsupported" and sentence["citations"] == []


def test_labels_are_per_sentence_and_footnotes_only_for_support(client: TestClient) -> None:
    answer = f"{BORN} He won the Nobel Prize in Physics in 1925. The Moon is made of cheese."
    response = client.post("/v1/attribute", json={"answer": answer})
    assert response.status_code == 200
    body = response.json()
    assert [s["label"] for s in body["sentences"]] == ["supported", "contradicted", "unsupported"]
    assert body["footnoted"]["text"].startswith(BORN + "[1] He won")
    assert "[2]" not in body["footnoted"]["text"]


def test_the_multilingual_model_has_its_own_thresholds() -> None:
    assert thresholds_for(E5_MODEL_ID) == (0.88, 0.65, 0.6)
    assert thresholds_for("sentence-transformers/all-MiniLM-L6-v2") == (0.64, 0.49, 0.6)


# -- the rules alone -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claim", "sentence", "language", "expected"),
    [
        ("Lincoln didn't work as a lawyer.", "Lincoln worked as a lawyer.", "en",
         Disagreement("polarity", "not", "")),
        ("Calvi n'a pas d'aéroport.", "Calvi a un aéroport international.", "fr",
         Disagreement("polarity", "n pas", "")),
        ("Portugal não tem fronteira com Espanha.", "Portugal tem fronteira com Espanha.", "pt",
         Disagreement("polarity", "não", "")),
        ("Einstein war kein Physiker.", "Einstein war ein Physiker.", "de",
         Disagreement("polarity", "kein", "")),
        ("Эйнштейн не был физиком.", "Эйнштейн был физиком.", "ru",
         Disagreement("polarity", "не", "")),
        ("He served for twenty years.", "He served for eight years.", "en",
         Disagreement("number", "20", "8")),
        ("Merkel was born in Munich in 1954.", "Merkel was born in Hamburg in 1954.", "en",
         Disagreement("entity", "munich", "hamburg")),
        ("The lighter metals react more than the heavier ones.",
         "The heavier metals react more than the lighter ones.", "en",
         Disagreement("relation", "lighter … heavier", "heavier … lighter")),
        ("Walter Damrosch composed the piece for George Gershwin.",
         "George Gershwin composed the piece for Walter Damrosch.", "en",
         Disagreement("relation", "walter damrosch … george gershwin",
                      "george gershwin … walter damrosch")),
        ("O serviço militar deixou de ser obrigatório.", "O serviço militar é obrigatório.",
         "pt", Disagreement("polarity", "deixou", "")),
        ("Lincoln was born in Illinois.",
         "Born in Hodgenville, Kentucky, Lincoln became a lawyer in Illinois.", "en",
         Disagreement("entity", "illinois", "hodgenville")),
        ("Kant developed an atheistic metaphysics.",
         "Proceeding from the idealism of Immanuel Kant, Schopenhauer developed an atheistic "
         "metaphysics.", "en", Disagreement("entity", "kant", "schopenhauer")),
        ("Em 1999, a China transferiu a soberania de Macau para Portugal.",
         "Em 1999 deu-se a transferência de soberania de Macau para a China.", "pt",
         Disagreement("entity", "portugal", "china")),
        ("Achilles was killed by Hector.",
         "Achilles slew Hector outside Troy. Other sources say he was killed near the end of "
         "the war by Paris.", "en", Disagreement("entity", "hector", "paris")),
    ],
    ids=["en-not", "fr-ne-pas", "pt-nao", "de-kein", "ru-ne", "number-word", "entity",
         "contrary-order", "roles", "pt-deixou-de", "slot-before", "slot-after",
         "slot-across-an-article", "agent"],
)  # fmt: skip
def test_each_rule_names_what_disagrees(
    claim: str, sentence: str, language: str, expected: Disagreement
) -> None:
    assert find_disagreement(claim, sentence, language, context=sentence) == expected


@pytest.mark.parametrize(
    ("claim", "sentence", "language"),
    [
        (BORN, BORN, "en"),
        # a passive voice puts the names in the other order: not a swap
        ("An American in Paris was composed by George Gershwin for Walter Damrosch.",
         "George Gershwin composed An American in Paris for Walter Damrosch.", "en"),
        # both negated
        ("Einstein did not speak until he was three.",
         "Einstein did not begin speaking until he was 3 years old.", "en"),
        # a name the passage lacks, with no other name in its place: missing, not contradicted
        ("Einstein played the violin with Elsa.", "Einstein played the violin.", "en"),
        # a German noun is capitalised: no entity rule there
        ("Einstein wurde in Ulm geboren.", "Einstein wurde in Ulm geboren.", "de"),
        # an epithet before the name is no other name in its place
        ("The ampere is named after the French physicist André-Marie Ampère.",
         "It is named after André-Marie Ampère (1775–1836), considered the father of "
         "electrodynamics and a French physicist.", "en"),
        # a capitalised first word may be no name
        ("Em Portugal, o serviço militar obrigatório terminou em 2004.",
         "Oficialmente, o serviço militar obrigatório terminou em 2004 em Portugal.", "pt"),
        # "deixou de" and "já não" are the same polarity; "Desde" only opens the sentence
        ("Em Portugal, o serviço militar deixou de ser obrigatório desde 2004.",
         "Desde 2004, o serviço militar obrigatório já não é praticado em Portugal.", "pt"),
        # "almost no support" is an amount, not a negation
        ("Lincoln won the presidency with almost no support from the South.",
         "Lincoln gained very little support in the South and won the presidency.", "en"),
        # a year's counterpart is a year, not a dose
        ("From 1937 until he died, Huxley made his home in Los Angeles.",
         "Huxley asked his wife for LSD, 100 µg, intramuscular.", "en"),
        # the negation is in a clause on another matter
        ("The official language is Catalan.",
         "Although there is no official language at the federal level, most states have "
         "declared English their official language.", "en"),
    ],
    ids=["same", "passive", "both-negated", "missing-name", "german-nouns", "epithet",
         "sentence-opener", "same-polarity-pt", "almost-no", "year-for-a-year",
         "negation-elsewhere"],
)  # fmt: skip
def test_no_disagreement_where_none_is_stated(claim: str, sentence: str, language: str) -> None:
    assert find_disagreement(claim, sentence, language, context=sentence) is None


def test_a_negation_in_the_other_clause_of_the_sentence_contradicts() -> None:
    passage = "It is not a member of the European Union, but the euro is the official currency."
    assert find_disagreement(
        "The euro is not the official currency of Andorra.", passage, "en",
        context=f"Andorra. {passage}",
    ) == Disagreement("polarity", "not", "")  # fmt: skip
    assert clauses(passage, "en") == [
        "It is not a member of the European Union",
        "the euro is the official currency.",
    ]


def test_a_quote_with_the_words_in_another_order_supports_at_most_partly() -> None:
    claim = "Walter Damrosch commissioned the piece from George Gershwin."
    quote = "George Gershwin wrote the piece commissioned by Walter Damrosch."
    assert word_order(claim, quote) == pytest.approx(2 / 15, abs=1e-4)
    assert word_order(claim, claim) == 1.0
    options = AttributeOptions().for_model(E5_MODEL_ID)
    assert label_for(0.95, Agreement(word_order=0.95), options) is SupportLabel.SUPPORTED
    assert label_for(0.95, Agreement(word_order=0.5), options) is SupportLabel.PARTIAL
    assert Agreement(word_order=0.5).reordered and not Agreement(word_order=0.6).reordered
    # across languages: a translation's cosine backs it partly, a lower one not at all
    cross = Agreement(cross_language=True)
    assert label_for(0.9, cross, options) is SupportLabel.PARTIAL
    assert label_for(0.8, cross, options) is SupportLabel.UNSUPPORTED
    assert label_for(0.9, cross, options, Disagreement("number", "64", "32")) is (
        SupportLabel.CONTRADICTED
    )


def test_numbers_and_names_are_read_as_compared() -> None:
    assert numbers_in("twenty-five of 1,200 in 1921; sete anos") == ["1200", "1921", "25", "7"]
    assert entities("L'hôtel Nord-Sud de Calvi, by Le Corbusier's studio.") == [
        ("hôtel", "nord"),
        ("sud",),
        ("calvi",),
        ("corbusier",),
    ]


# -- eval-attribution --claims ---------------------------------------------------------------

CLAIMS = [
    {"id": "c1", "claim": BORN, "label": "supported", "kind": "verbatim_sentence",
     "language": "en", "evidence_passage_text_prefix": BORN[:40]},
    {"id": "c2", "claim": "He won the Nobel Prize in Physics in 1925.", "label": "contradicted",
     "kind": "wrong_number", "language": "en",
     "evidence_passage_text_prefix": "Albert Einstein (14 March 1879 – 18 April 1955)"},
    {"id": "c3", "claim": "The Moon is made of cheese.", "label": "unsupported",
     "kind": "unrelated", "language": "en", "evidence_passage_text_prefix": ""},
    {"id": "c4", "claim": "Einstein was born in Ulm and later won three Olympic gold medals.",
     "label": "unsupported", "kind": "topical_absent", "language": "en",
     "evidence_passage_text_prefix": ""},
]  # fmt: skip


def test_claims_are_measured_per_label_and_kind(
    index_dir: Path, e5: E5Embedder, tmp_path: Path
) -> None:
    path = tmp_path / "claims.jsonl"
    path.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in CLAIMS), "utf-8")
    index = LoadedIndex.open(index_dir, e5.info)
    try:
        result = evaluate_claims(
            AnswerAttributor(HybridRetriever(index, e5)), list(load_claims(path))
        )
    finally:
        index.close()
    assert result["confusion"] == {
        "supported": {"supported": 1, "partial": 0, "contradicted": 0, "unsupported": 0},
        "contradicted": {"supported": 0, "partial": 0, "contradicted": 1, "unsupported": 0},
        "unsupported": {"supported": 0, "partial": 0, "contradicted": 0, "unsupported": 2},
    }
    assert result["false_supported_rate"] == 0.0 and result["false_supported"] == 0
    assert result["per_label"]["unsupported"] == {
        "precision": 1.0, "recall": 1.0, "predicted": 2, "gold": 2,
    }  # fmt: skip
    assert result["contradicted_cites_evidence"] == 1.0
    assert result["by_kind"]["wrong_number"]["accuracy"] == 1.0
    assert result["thresholds"] == {"supported": 0.88, "partial": 0.65, "contradicted": 0.6}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"claim": "x", "label": "true"}', "label must be one of"),
        ('{"claim": "", "label": "supported"}', "claim must be a non-empty string"),
        ("[1]", "not a JSON object"),
    ],
)
def test_a_bad_claim_line_is_named(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"claim": "ok", "label": "supported"}\n' + line + "\n", "utf-8")
    with pytest.raises(InvalidInput, match=f"line 2 is not a claim: {message}"):
        list(load_claims(path))


def test_the_cli_reports_the_confusion_matrix(
    index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.cli.main import main

    path = tmp_path / "claims.jsonl"
    path.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in CLAIMS), "utf-8")
    out = tmp_path / "result.json"
    argv = ["eval-attribution", "--index", str(index_dir), "--claims", str(path)]
    assert main([*argv, "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "false 'supported' on contradicted or unsupported claims: 0 (0.0)" in printed
    rows = {line.split()[0]: line.split()[1:] for line in printed.splitlines() if line[:2] == "  "}
    assert rows["contradicted"] == ["0", "0", "1", "0"]
    assert rows["unsupported"] == ["0", "0", "0", "2"]
    assert json.loads(out.read_text("utf-8"))["claims"] == 4
