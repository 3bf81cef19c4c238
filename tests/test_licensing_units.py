"""The license rule, unit by unit: the source's own statement always wins, the date rule
switches to CC BY-SA 4.0 exactly at the 2023-06-07 Terms of Use update, a pinned wiki gets its
license whatever the date, and an unknown rule is refused with a message naming the choices.

Real revisions from the bundled samples: the 2016 XML revision of "Albert Einstein" (no
license stated, so the date rule decides) and the WME "Squirrel" revision of 2023-08-24,
whose source says CC BY-SA 3.0 although the date rule would say 4.0.
"""

from __future__ import annotations

import dataclasses
import doctest
from collections.abc import Iterator
from itertools import islice

import pytest

from indexer import licensing
from indexer.licensing import AUTO, KNOWN_LICENSES, TERMS_OF_USE_4_0, LicensePolicy
from indexer.models import CC_BY_SA_3, CC_BY_SA_4, License, RawRevision
from indexer.sources.wme import EnterpriseSnapshotReader
from indexer.sources.xml_dump import MediaWikiDumpReader
from tests.conftest import ENWIKI_XML, SAMPLES

ENWIKI_WME = SAMPLES / "wme" / "enwiki_namespace_0.tar.gz"
BEFORE = "rule:auto(before 2023-06-07)"
FROM = "rule:auto(from 2023-06-07)"


def _revisions(reader: Iterator[object]) -> Iterator[RawRevision]:
    return (item for item in reader if isinstance(item, RawRevision))


@pytest.fixture(scope="module")
def xml_einstein() -> RawRevision:
    """The XML sample's revision of "Albert Einstein" (2016; XML states no license)."""
    revisions = _revisions(iter(MediaWikiDumpReader(ENWIKI_XML)))
    found = next(r for r in islice(revisions, 400) if r.title == "Albert Einstein")
    assert (found.revision_id, found.timestamp, found.license) == (
        716825343,
        "2016-04-24T03:25:59Z",
        None,
    )
    return found


@pytest.fixture(scope="module")
def wme_revisions() -> dict[str, RawRevision]:
    return {r.title: r for r in _revisions(iter(EnterpriseSnapshotReader(ENWIKI_WME)))}


# --------------------------------------------------------------------------- date rule


@pytest.mark.parametrize(
    ("timestamp", "identifier", "why"),
    [
        ("2016-04-24T03:25:59Z", "CC-BY-SA-3.0", BEFORE),
        ("2023-06-06T23:59:59Z", "CC-BY-SA-3.0", BEFORE),
        (TERMS_OF_USE_4_0, "CC-BY-SA-4.0", FROM),  # the update itself is under 4.0
        ("2023-06-07T00:00:01Z", "CC-BY-SA-4.0", FROM),
        ("2025-01-21T17:03:22Z", "CC-BY-SA-4.0", FROM),
    ],
)
def test_the_default_rule_switches_exactly_at_the_terms_of_use_update(
    timestamp: str, identifier: str, why: str
) -> None:
    lic, reason = LicensePolicy().license_for("enwiki", timestamp)
    assert (lic.identifier, reason) == (identifier, why)
    assert lic == KNOWN_LICENSES[identifier]
    # An explicit "auto" rule is the default rule.
    assert LicensePolicy.from_rules({"enwiki": AUTO}).license_for("enwiki", timestamp) == (
        lic,
        reason,
    )


def test_the_known_licenses_are_the_two_cc_by_sa_versions() -> None:
    assert TERMS_OF_USE_4_0 == "2023-06-07T00:00:00Z"
    assert KNOWN_LICENSES == {"CC-BY-SA-3.0": CC_BY_SA_3, "CC-BY-SA-4.0": CC_BY_SA_4}
    assert CC_BY_SA_3.url == "https://creativecommons.org/licenses/by-sa/3.0/"
    assert CC_BY_SA_4.url == "https://creativecommons.org/licenses/by-sa/4.0/"


# --------------------------------------------------------------------------- pinned wikis


def test_a_pinned_wiki_gets_its_license_whatever_the_date() -> None:
    policy = LicensePolicy.from_rules({"squadeval": "CC-BY-SA-4.0", "oldwiki": "CC-BY-SA-3.0"})
    assert policy.rules == {"squadeval": "CC-BY-SA-4.0", "oldwiki": "CC-BY-SA-3.0"}
    assert policy.license_for("squadeval", "2016-05-01T00:00:00Z") == (
        CC_BY_SA_4,
        "rule:CC-BY-SA-4.0",
    )
    assert policy.license_for("oldwiki", "2025-01-01T00:00:00Z") == (
        CC_BY_SA_3,
        "rule:CC-BY-SA-3.0",
    )
    # Other wikis keep the date rule.
    assert policy.license_for("enwiki", "2016-05-01T00:00:00Z") == (CC_BY_SA_3, BEFORE)
    assert policy.license_for("enwiki", "2025-01-01T00:00:00Z") == (CC_BY_SA_4, FROM)


def test_the_policy_keeps_its_own_copy_of_the_rules() -> None:
    rules = {"squadeval": "CC-BY-SA-4.0"}
    policy = LicensePolicy.from_rules(rules)
    rules["squadeval"] = "CC-BY-SA-3.0"
    rules["enwiki"] = "CC-BY-SA-4.0"
    assert policy.rules == {"squadeval": "CC-BY-SA-4.0"}
    assert policy.license_for("enwiki", "2016-05-01T00:00:00Z") == (CC_BY_SA_3, BEFORE)
    assert LicensePolicy().rules == {} and LicensePolicy.from_rules({}).rules == {}


@pytest.mark.parametrize("rule", ["CC-BY-SA-2.5", "cc-by-sa-4.0", "AUTO", "", "GFDL-1.3"])
def test_an_unknown_rule_is_refused_naming_the_choices(rule: str) -> None:
    with pytest.raises(ValueError) as caught:
        LicensePolicy.from_rules({"enwiki": AUTO, "frwiki": rule})
    assert str(caught.value) == (
        f"unknown license rule {rule!r} for frwiki; use one of auto, CC-BY-SA-3.0, CC-BY-SA-4.0"
    )


# --------------------------------------------------------------------------- real revisions


def test_an_xml_revision_gets_the_date_rule(xml_einstein: RawRevision) -> None:
    assert LicensePolicy().resolve(xml_einstein) == (CC_BY_SA_3, BEFORE)
    # The same revision saved after the update would be under 4.0; pinned, it is as pinned.
    later = dataclasses.replace(xml_einstein, timestamp="2023-06-07T00:00:00Z")
    assert LicensePolicy().resolve(later) == (CC_BY_SA_4, FROM)
    pinned = LicensePolicy.from_rules({"enwiki": "CC-BY-SA-4.0"})
    assert pinned.resolve(xml_einstein) == (CC_BY_SA_4, "rule:CC-BY-SA-4.0")


def test_the_sources_statement_wins_over_the_date_rule(
    wme_revisions: dict[str, RawRevision],
) -> None:
    squirrel = wme_revisions["Squirrel"]
    assert (squirrel.revision_id, squirrel.timestamp) == (1171934824, "2023-08-24T01:14:42Z")
    assert LicensePolicy().license_for("enwiki", squirrel.timestamp) == (CC_BY_SA_4, FROM)
    lic, why = LicensePolicy().resolve(squirrel)
    assert why == "source"
    assert lic == License(
        name="Creative Commons Attribution Share Alike 3.0 Unported",
        identifier="CC-BY-SA-3.0",
        url="https://creativecommons.org/licenses/by-sa/3.0/",
    )
    # …and over a pinned rule too.
    pinned = LicensePolicy.from_rules({"enwiki": "CC-BY-SA-4.0"})
    assert pinned.resolve(squirrel) == (squirrel.license, "source")
    einstein = wme_revisions["Albert Einstein"]
    assert LicensePolicy().resolve(einstein) == (CC_BY_SA_4, "source")
    old = dataclasses.replace(einstein, timestamp="2016-01-01T00:00:00Z")
    assert LicensePolicy().resolve(old) == (CC_BY_SA_4, "source")


# --------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    ("timestamp", "identifier"),
    [
        ("2023-06-07T01:30:00+02:00", "CC-BY-SA-3.0"),  # 2023-06-06T23:30Z
        ("2023-06-06T20:00:00-04:00", "CC-BY-SA-4.0"),  # 2023-06-07T00:00Z exactly
        ("2023-06-06T23:59:59.999Z", "CC-BY-SA-3.0"),
        ("2023-06-07T00:00:00.5Z", "CC-BY-SA-4.0"),
        ("2023-06-07", "CC-BY-SA-4.0"),
        ("2023-06-06T23:59:59", "CC-BY-SA-3.0"),  # no offset: UTC
    ],
)
def test_the_date_rule_compares_instants_not_text(timestamp: str, identifier: str) -> None:
    assert LicensePolicy().license_for("enwiki", timestamp)[0].identifier == identifier


@pytest.mark.parametrize(
    ("timestamp", "instant", "stored"),
    [
        ("2016-05-01T12:00:00Z", "2016-05-01T12:00:00+00:00", "2016-05-01T12:00:00Z"),
        (" 2016-05-01t12:00:00z ", "2016-05-01T12:00:00+00:00", "2016-05-01T12:00:00Z"),
        ("2016-05-01T12:00:00", "2016-05-01T12:00:00+00:00", "2016-05-01T12:00:00Z"),
        ("2023-06-07T01:30:00+02:00", "2023-06-06T23:30:00+00:00", "2023-06-06T23:30:00Z"),
        (
            "2023-06-06T22:00:00.250-03:00",
            "2023-06-07T01:00:00.250000+00:00",
            "2023-06-07T01:00:00Z",
        ),
        ("2016-05-01", "2016-05-01T00:00:00+00:00", "2016-05-01T00:00:00Z"),
    ],
)
def test_timestamps_are_read_as_utc_instants(timestamp: str, instant: str, stored: str) -> None:
    assert licensing.utc_instant(timestamp).isoformat() == instant
    assert licensing.utc_timestamp(timestamp) == stored


def test_a_timestamp_without_offset_is_utc_whatever_the_local_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert licensing.utc_instant("2016-05-01T12:00:00").isoformat() == (
            "2016-05-01T12:00:00+00:00"
        )
        assert licensing.utc_timestamp("2016-05-01T12:00:00") == "2016-05-01T12:00:00Z"
        # One with an offset is converted to UTC, not to the machine's zone.
        assert licensing.utc_instant("2023-06-07T01:30:00+02:00").isoformat() == (
            "2023-06-06T23:30:00+00:00"
        )
        assert licensing.utc_timestamp("2023-06-07T01:30:00+02:00") == "2023-06-06T23:30:00Z"
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    "timestamp", ["yesterday", "", "2016-13-01T00:00:00Z", "9999-12-31T23:59:59-01:00"]
)
def test_an_unreadable_timestamp_is_refused_with_its_value(timestamp: str) -> None:
    message = f"unreadable timestamp {timestamp!r}: expected ISO 8601, e.g. 2016-05-01T12:00:00Z"
    for read in (licensing.utc_instant, licensing.utc_timestamp):
        with pytest.raises(ValueError) as caught:
            read(timestamp)
        assert str(caught.value) == message
        assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_docstring_examples() -> None:
    results = doctest.testmod(licensing)
    assert results.failed == 0 and results.attempted >= 5
