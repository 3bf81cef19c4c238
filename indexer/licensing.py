"""Which license a revision is under.

Wikimedia Enterprise objects state it (``license[]``): that statement is always used. MediaWiki
XML exports do not, so a per-wiki rule decides. The default rule follows Wikimedia's Terms of
Use: text contributed before the 2023-06-07 update is CC BY-SA 3.0, from then on CC BY-SA 4.0.
A wiki can instead be pinned to one license (``{"squadeval": "CC-BY-SA-4.0"}``).

Usage::

    >>> policy = LicensePolicy.from_rules({"squadeval": "CC-BY-SA-4.0"})
    >>> policy.license_for("enwiki", "2016-05-01T00:00:00Z")[0].identifier
    'CC-BY-SA-3.0'
    >>> policy.license_for("squadeval", "2016-05-01T00:00:00Z")[0].identifier
    'CC-BY-SA-4.0'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from indexer.errors import InvalidInput
from indexer.models import CC_BY_SA_3, CC_BY_SA_4, License, RawRevision

TERMS_OF_USE_4_0 = "2023-06-07T00:00:00Z"
_TERMS_OF_USE_4_0_AT = datetime(2023, 6, 7, tzinfo=UTC)
KNOWN_LICENSES: dict[str, License] = {lic.identifier: lic for lic in (CC_BY_SA_3, CC_BY_SA_4)}
AUTO = "auto"


@dataclass(frozen=True, slots=True)
class LicensePolicy:
    """Per-wiki license rules for sources that do not state a license.

    A rule is ``"auto"`` (by revision date, the default) or an SPDX identifier from
    :data:`KNOWN_LICENSES`.
    """

    rules: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_rules(cls, rules: Mapping[str, str]) -> LicensePolicy:
        for wiki, rule in rules.items():
            if rule != AUTO and rule not in KNOWN_LICENSES:
                choices = ", ".join([AUTO, *KNOWN_LICENSES])
                raise InvalidInput(
                    f"unknown license rule {rule!r} for {wiki}; use one of {choices}"
                )
        return cls(dict(rules))

    def license_for(self, wiki: str, timestamp: str) -> tuple[License, str]:
        """The license for a revision of ``wiki`` saved at ``timestamp``, and why.

        The date is compared as an instant, not as text: ``2023-06-07T01:30:00+02:00`` is
        before the update, ``2023-06-07T00:00:00.5Z`` after it. Raises ``ValueError`` when
        ``timestamp`` is not ISO 8601 (the readers skip such revisions before this).
        """
        rule = self.rules.get(wiki, AUTO)
        if rule != AUTO:
            return KNOWN_LICENSES[rule], f"rule:{rule}"
        if utc_instant(timestamp) < _TERMS_OF_USE_4_0_AT:
            return CC_BY_SA_3, "rule:auto(before 2023-06-07)"
        return CC_BY_SA_4, "rule:auto(from 2023-06-07)"

    def resolve(self, raw: RawRevision) -> tuple[License, str]:
        """The source's own statement when it has one, else this policy's rule."""
        if raw.license is not None:
            return raw.license, "source"
        return self.license_for(raw.wiki, raw.timestamp)


def utc_instant(timestamp: str) -> datetime:
    """The instant an ISO 8601 timestamp names (one without an offset is UTC, as MediaWiki
    writes times); raises ``ValueError`` when it is not ISO 8601.

    >>> utc_instant("2023-06-07T01:30:00+02:00").isoformat()
    '2023-06-06T23:30:00+00:00'
    """
    try:
        moment = datetime.fromisoformat(timestamp.strip().upper())
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidInput(
            f"unreadable timestamp {timestamp!r}: expected ISO 8601, e.g. 2016-05-01T12:00:00Z"
        ) from None


def utc_timestamp(timestamp: str) -> str:
    """``timestamp`` written as the store keeps it: UTC, whole seconds, ``Z``
    (``2016-05-01T12:00:00Z``); raises ``ValueError`` when it is not ISO 8601.

    >>> utc_timestamp("2023-06-06T22:00:00.250-03:00")
    '2023-06-07T01:00:00Z'
    """
    moment = utc_instant(timestamp).replace(microsecond=0, tzinfo=None)
    return moment.isoformat() + "Z"
