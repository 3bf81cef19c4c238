"""Credibility signals of one revision, as its export states them: the revert risk a model
gave it, who made it (anonymous, bot, experienced), its change tags, the page's protection,
maintenance tags and watchers. Stored per revision (``revisions.trust``) and returned with
every passage and citation under one ``trust`` object.

Absent signals stay absent: a field the export does not carry is None (or empty), never a
default that reads as a fact. Everything comes from a hostile export, so each field is checked
for its type and range and dropped when it fails (a revert risk of 1.7 is no risk at all).

Wikimedia Enterprise objects carry ``version.scores.revertrisk`` (or, on older objects, ORES
``damaging`` / ``goodfaith``), ``version.editor``, ``version.tags``, ``version.is_minor_edit``,
``protection[]``, ``maintenance_tags`` and ``watchers_count``; MediaWiki XML exports carry the
contributor (a user name, or an IP for an anonymous edit), the comment and the minor flag.

>>> signals = from_enterprise({"version": {
...     "scores": {"revertrisk": {"prediction": True, "probability": {"true": 0.66}}},
...     "editor": {"name": "Remsense", "edit_count": 63471, "groups": ["patroller"]},
...     "tags": ["mw-undo"]}})
>>> signals.revert_risk, signals.editor.edit_count, signals.tags
(RevertRisk(probability=0.66, prediction=True, model='revertrisk'), 63471, ('mw-undo',))
>>> TrustSignals.from_json(signals.to_json()) == signals
True
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Editor",
    "Protection",
    "RevertRisk",
    "TrustSignals",
    "from_enterprise",
    "from_xml",
]

_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z")
_MAX_TEXT = 200  # characters kept of a tag, group, name or comment
_MAX_ITEMS = 50  # tags, groups, protections kept


@dataclass(frozen=True, slots=True)
class RevertRisk:
    """The probability that the revision will be reverted, from ``model``."""

    probability: float
    prediction: bool | None
    model: str


@dataclass(frozen=True, slots=True)
class Editor:
    """Who saved the revision, as far as the export says."""

    name: str | None = None
    is_anonymous: bool | None = None
    is_bot: bool | None = None
    edit_count: int | None = None
    groups: tuple[str, ...] = ()
    date_started: str | None = None


@dataclass(frozen=True, slots=True)
class Protection:
    """One protection of the page: ``type`` (edit, move), ``level`` (who may), ``expiry``."""

    type: str
    level: str
    expiry: str | None = None


@dataclass(frozen=True, slots=True)
class TrustSignals:
    """Everything the export says about how far one revision can be trusted."""

    revert_risk: RevertRisk | None = None
    damaging: float | None = None  # ORES, on older objects: probability the edit damages
    goodfaith: float | None = None  # ORES: probability the edit was made in good faith
    editor: Editor | None = None
    tags: tuple[str, ...] = ()
    is_minor_edit: bool | None = None
    comment: str | None = None
    protection: tuple[Protection, ...] = ()
    maintenance_tags: tuple[tuple[str, int], ...] = ()  # (tag, count), e.g. citation needed
    watchers_count: int | None = None

    @property
    def empty(self) -> bool:
        return self == TrustSignals()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, every field present (None or empty where the export said nothing)."""
        return {
            "revert_risk": None
            if self.revert_risk is None
            else {
                "probability": self.revert_risk.probability,
                "prediction": self.revert_risk.prediction,
                "model": self.revert_risk.model,
            },
            "damaging": self.damaging,
            "goodfaith": self.goodfaith,
            "editor": None
            if self.editor is None
            else {
                "name": self.editor.name,
                "is_anonymous": self.editor.is_anonymous,
                "is_bot": self.editor.is_bot,
                "edit_count": self.editor.edit_count,
                "groups": list(self.editor.groups),
                "date_started": self.editor.date_started,
            },
            "tags": list(self.tags),
            "is_minor_edit": self.is_minor_edit,
            "comment": self.comment,
            "protection": [
                {"type": p.type, "level": p.level, "expiry": p.expiry} for p in self.protection
            ],
            "maintenance_tags": dict(self.maintenance_tags),
            "watchers_count": self.watchers_count,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> TrustSignals:
        """What :meth:`to_json` wrote; None or unreadable text (a store written before the
        signals were kept) is no signal at all."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
        except ValueError:
            return cls()
        if not isinstance(data, dict):
            return cls()
        return _signals(data, revert_model=None)


def _text(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:_MAX_TEXT]


def _texts(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    out = [t for t in (_text(v) for v in value[:_MAX_ITEMS]) if t is not None]
    return tuple(dict.fromkeys(out))


def _bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _probability(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    if math.isnan(number) or not 0.0 <= number <= 1.0:
        return None
    return number


def _timestamp(value: object) -> str | None:
    return value if isinstance(value, str) and _TIMESTAMP.fullmatch(value) else None


def _score(value: object) -> tuple[float | None, bool | None]:
    """``{"prediction": true, "probability": {"true": 0.66, "false": 0.34}}`` → (0.66, True)."""
    if not isinstance(value, dict):
        return None, None
    probability = value.get("probability")
    true = _probability(probability.get("true")) if isinstance(probability, dict) else None
    return true, _bool(value.get("prediction"))


def _editor(value: object) -> Editor | None:
    if not isinstance(value, dict):
        return None
    editor = Editor(
        name=_text(value.get("name")),
        is_anonymous=_bool(value.get("is_anonymous")),
        is_bot=_bool(value.get("is_bot")),
        edit_count=_count(value.get("edit_count")),
        groups=_texts(value.get("groups")),
        date_started=_timestamp(value.get("date_started")),
    )
    return None if editor == Editor() else editor


def _protections(value: object) -> tuple[Protection, ...]:
    if not isinstance(value, list):
        return ()
    out = []
    for item in value[:_MAX_ITEMS]:
        if not isinstance(item, dict):
            continue
        kind, level = _text(item.get("type")), _text(item.get("level"))
        if kind is None or level is None:
            continue
        expiry = item.get("expiry")
        out.append(Protection(kind, level, expiry if expiry == "infinity" else _timestamp(expiry)))
    return tuple(out)


def _maintenance(value: object) -> tuple[tuple[str, int], ...]:
    """``{"citation_needed_count": 3, …}``: counts only, non-negative integers only."""
    if not isinstance(value, dict):
        return ()
    out: dict[str, int] = {}
    for key, count in list(value.items())[:_MAX_ITEMS]:
        name, number = _text(key), _count(count)
        if name is not None and number is not None:
            out[name] = number
    return tuple(sorted(out.items()))


def _signals(data: Mapping[str, object], *, revert_model: str | None) -> TrustSignals:
    """The signals of :meth:`TrustSignals.as_dict`'s shape."""
    risk = data.get("revert_risk")
    revert_risk = None
    if isinstance(risk, dict):
        probability = _probability(risk.get("probability"))
        model = _text(risk.get("model")) or revert_model
        if probability is not None and model is not None:
            revert_risk = RevertRisk(probability, _bool(risk.get("prediction")), model)
    return TrustSignals(
        revert_risk=revert_risk,
        damaging=_probability(data.get("damaging")),
        goodfaith=_probability(data.get("goodfaith")),
        editor=_editor(data.get("editor")),
        tags=_texts(data.get("tags")),
        is_minor_edit=_bool(data.get("is_minor_edit")),
        comment=_text(data.get("comment")),
        protection=_protections(data.get("protection")),
        maintenance_tags=_maintenance(data.get("maintenance_tags")),
        watchers_count=_count(data.get("watchers_count")),
    )


def from_enterprise(obj: Mapping[str, object]) -> TrustSignals:
    """The signals of one Wikimedia Enterprise article object (unknown shapes dropped)."""
    version = obj.get("version")
    version = version if isinstance(version, dict) else {}
    scores = version.get("scores")
    scores = scores if isinstance(scores, dict) else {}
    risk, prediction = _score(scores.get("revertrisk"))
    damaging, _ = _score(scores.get("damaging"))
    goodfaith, _ = _score(scores.get("goodfaith"))
    # the export's fields in TrustSignals' own shape, checked by the one reader of that shape
    shaped = {
        "revert_risk": None if risk is None else {"probability": risk, "prediction": prediction},
        "damaging": damaging,
        "goodfaith": goodfaith,
        "editor": version.get("editor"),
        "tags": version.get("tags"),
        "is_minor_edit": version.get("is_minor_edit"),
        "protection": obj.get("protection"),
        "maintenance_tags": obj.get("maintenance_tags"),
        "watchers_count": obj.get("watchers_count"),
    }
    return _signals(shaped, revert_model="revertrisk")


_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_IPV6 = re.compile(r"[0-9A-Fa-f:]{2,39}")


def from_xml(
    username: str | None, ip: str | None, comment: str | None, *, minor: bool
) -> TrustSignals:
    """The signals a MediaWiki XML ``<revision>`` carries: its contributor (a user name, or an
    IP address for an anonymous edit), its comment and its minor flag.

    >>> editor = from_xml(None, "173.225.242.253", "typo", minor=True).editor
    >>> editor.name, editor.is_anonymous, editor.edit_count
    ('173.225.242.253', True, None)
    """
    name = _text(username)
    address = _text(ip)
    editor = None
    if name is not None:
        editor = Editor(name=name, is_anonymous=False)
    elif address is not None and (_IPV4.fullmatch(address) or _IPV6.fullmatch(address)):
        editor = Editor(name=address, is_anonymous=True)
    # an XML export marks a minor edit with <minor/> and says nothing of the others: its
    # absence is the fact "not minor"
    return TrustSignals(editor=editor, comment=_text(comment), is_minor_edit=minor)
