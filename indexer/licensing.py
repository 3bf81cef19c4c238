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

from indexer.models import CC_BY_SA_3, CC_BY_SA_4, License, RawRevision

TERMS_OF_USE_4_0 = "2023-06-07T00:00:00Z"
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
                raise ValueError(f"unknown license rule {rule!r} for {wiki}; use one of {choices}")
        return cls(dict(rules))

    def license_for(self, wiki: str, timestamp: str) -> tuple[License, str]:
        """The license for a revision of ``wiki`` saved at ``timestamp``, and why."""
        rule = self.rules.get(wiki, AUTO)
        if rule != AUTO:
            return KNOWN_LICENSES[rule], f"rule:{rule}"
        if timestamp < TERMS_OF_USE_4_0:
            return CC_BY_SA_3, "rule:auto(before 2023-06-07)"
        return CC_BY_SA_4, "rule:auto(from 2023-06-07)"

    def resolve(self, raw: RawRevision) -> tuple[License, str]:
        """The source's own statement when it has one, else this policy's rule."""
        if raw.license is not None:
            return raw.license, "source"
        return self.license_for(raw.wiki, raw.timestamp)
