"""Error classification as data: what a provider's answer means for the money.

Each provider answers a charge or a refund in its own words: an HTTP status, an error type and
code, a decline code, a result code, a refusal reason code, a processor response code. An adapter
reduces its provider's answer to a handful of named *facts* (plain strings) and asks the error map
which outcome they mean. The table lives in `error_map.yaml` beside this module, in the spirit of
Hyperswitch's gateway status map, so that a newly seen code is a one-line change with a test, not
a code change.

Facts, from most to least specific (the order in which rules win, see below):

    decline_code         Stripe  error.decline_code              "insufficient_funds"
    refusal_reason_code  Adyen   refusalReasonCode               "12"
    legacy_code          Braintree errors[].extensions.legacyCode "2001" (exact or a numeric range)
    code                 Stripe error.code, Adyen errorCode      "card_declined", "704"
    result_code          Adyen   resultCode                      "Authorised", "Refused"
    status               the resource's status word              Stripe PaymentIntent / Refund status,
                                                                 Braintree transaction status,
                                                                 Adyen refund status
    error_class          Braintree errors[].extensions.errorClass "VALIDATION", "INTERNAL"
    http_status          the HTTP status                         503
    type                 Stripe error.type, Adyen errorType      "card_error", "validation"
    status_class         derived from http_status                "5xx"

Matching is case-insensitive. A rule matches when every fact it names has the given value (or,
for a range, a numeric value inside it); facts it does not name are ignored. When several rules
match, the most specific wins: rules are compared by the most specific fact they name (per the
list above, an exact value beating a range of the same fact), then by the next one, and so on;
then a rule for the provider itself beats a rule for `any` provider, and a rule for the flow
itself beats a rule for `any` flow. Two rules with the same provider, flow and match are an
error, so a lookup never depends on the order of the file (except between overlapping ranges of
one shape, where the earlier rule wins).

Lookups are a few dict probes (one per distinct rule shape), cheap enough for every attempt.

This module is pure: standard library and PyYAML only. Outcomes are plain strings here; they
are the values of `orchestrator.providers.base.Outcome`, to which adapters convert.
"""

from __future__ import annotations

import functools
import importlib.resources
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

OUTCOMES: frozenset[str] = frozenset(
    {"succeeded", "hard_decline", "soft_decline", "transient", "ambiguous", "config_error"}
)
FLOWS: frozenset[str] = frozenset({"charge", "refund", "any"})
ANY = "any"

# Most specific first. Order matters: it decides which of several matching rules wins.
FACTS: tuple[str, ...] = (
    "decline_code",
    "refusal_reason_code",
    "legacy_code",
    "code",
    "result_code",
    "status",
    "error_class",
    "http_status",
    "type",
    "status_class",
)
_STATUS_CLASSES = frozenset({"1xx", "2xx", "3xx", "4xx", "5xx"})
_RULE_KEYS = frozenset({"provider", "flow", "match", "outcome", "note"})

# Rank of (fact, kind): an exact value of a fact is more specific than a range of the same fact,
# and both are more specific than any fact later in FACTS. A shape's weight is a bit set over
# these ranks, so comparing weights compares shapes lexicographically by specificity.
_RANKS: dict[tuple[str, str], int] = {}
for _i, _fact in enumerate(FACTS):
    _RANKS[(_fact, "eq")] = 2 * (len(FACTS) - _i) - 1
    _RANKS[(_fact, "range")] = 2 * (len(FACTS) - _i) - 2


class ErrorMapError(ValueError):
    """The error map file is missing, is not valid YAML, or holds an invalid rule."""


@dataclass(frozen=True, slots=True)
class Rule:
    provider: str
    flow: str
    match: Mapping[str, Any]
    outcome: str
    note: str = ""
    index: int = 0  # position in the file, for messages and tracing


@dataclass(slots=True)
class _Shape:
    eq_facts: tuple[str, ...]
    range_facts: tuple[str, ...]
    weight: int
    # (provider, flow, *eq values) -> rule, or -> [(ranges, rule), ...] when the shape has ranges
    exact: dict[tuple[str, ...], Rule] = field(default_factory=dict)
    ranged: dict[tuple[str, ...], list[tuple[tuple[tuple[int, int], ...], Rule]]] = field(
        default_factory=dict
    )


def _norm(value: Any) -> str:
    return str(value).strip().lower()


def normalize_facts(facts: Mapping[str, Any]) -> dict[str, str]:
    """Drop empty facts, lower-case the rest, and derive `status_class` from `http_status`."""
    out: dict[str, str] = {}
    for name, value in facts.items():
        if value is None or isinstance(value, bool):
            continue
        text = _norm(value)
        if text:
            out[name] = text
    status = out.get("http_status")
    if status and "status_class" not in out and status.isdigit() and len(status) == 3:
        out["status_class"] = f"{status[0]}xx"
    return out


class ErrorMap:
    """An immutable, indexed set of rules. Build it with `load_error_map` or `from_rules`."""

    def __init__(self, rules: list[Rule], source: str = "<rules>") -> None:
        self.source = source
        self.rules: tuple[Rule, ...] = tuple(rules)
        shapes: dict[tuple[tuple[str, ...], tuple[str, ...]], _Shape] = {}
        for rule in rules:
            eq_facts = tuple(sorted(f for f, v in rule.match.items() if not isinstance(v, tuple)))
            range_facts = tuple(sorted(f for f, v in rule.match.items() if isinstance(v, tuple)))
            key = (eq_facts, range_facts)
            shape = shapes.get(key)
            if shape is None:
                weight = sum(1 << _RANKS[(f, "eq")] for f in eq_facts) + sum(
                    1 << _RANKS[(f, "range")] for f in range_facts
                )
                shape = shapes[key] = _Shape(eq_facts, range_facts, weight)
            probe = (rule.provider, rule.flow, *(rule.match[f] for f in eq_facts))
            if range_facts:
                ranges = tuple(rule.match[f] for f in range_facts)
                bucket = shape.ranged.setdefault(probe, [])
                for other_ranges, other in bucket:
                    if other_ranges == ranges:
                        raise ErrorMapError(_duplicate(source, rule, other))
                bucket.append((ranges, rule))
            else:
                other = shape.exact.get(probe)
                if other is not None:
                    raise ErrorMapError(_duplicate(source, rule, other))
                shape.exact[probe] = rule
        self._shapes: tuple[_Shape, ...] = tuple(
            sorted(shapes.values(), key=lambda s: s.weight, reverse=True)
        )
        self.providers: frozenset[str] = frozenset(r.provider for r in rules) - {ANY}

    @classmethod
    def from_rules(cls, raw_rules: list[Mapping[str, Any]], source: str = "<rules>") -> "ErrorMap":
        return cls([_parse_rule(raw, i, source) for i, raw in enumerate(raw_rules)], source)

    def __len__(self) -> int:
        return len(self.rules)

    def lookup(self, provider: str, flow: str, facts: Mapping[str, Any]) -> Rule | None:
        """The most specific rule matching these facts, or None when no rule matches."""
        provider = _norm(provider)
        flow = _norm(flow)
        known = normalize_facts(facts)
        probes_for = ((provider, flow), (provider, ANY), (ANY, flow), (ANY, ANY))
        for shape in self._shapes:
            values: list[str] = []
            for name in shape.eq_facts:
                value = known.get(name)
                if value is None:
                    break
                values.append(value)
            else:
                if shape.range_facts:
                    numbers: list[int] = []
                    for name in shape.range_facts:
                        value = known.get(name)
                        if value is None or not value.lstrip("-").isdigit():
                            break
                        numbers.append(int(value))
                    else:
                        for who, which in probes_for:
                            for ranges, rule in shape.ranged.get((who, which, *values), ()):
                                if all(lo <= n <= hi for n, (lo, hi) in zip(numbers, ranges)):
                                    return rule
                else:
                    for who, which in probes_for:
                        rule = shape.exact.get((who, which, *values))
                        if rule is not None:
                            return rule
        return None

    def classify(
        self, provider: str, flow: str, facts: Mapping[str, Any], default: str = "ambiguous"
    ) -> str:
        """The outcome (a plain string from OUTCOMES) for these facts; `default` when none matches.

        The default is `ambiguous` on purpose: an answer nobody has mapped yet must not let the
        caller charge elsewhere, only look again at the same provider.
        """
        rule = self.lookup(provider, flow, facts)
        return rule.outcome if rule is not None else default


def _duplicate(source: str, rule: Rule, other: Rule) -> str:
    return (
        f"{source}: rule {rule.index} duplicates rule {other.index} "
        f"(provider {rule.provider!r}, flow {rule.flow!r}, match {dict(rule.match)!r})"
    )


def _parse_rule(raw: Any, index: int, source: str) -> Rule:
    where = f"{source}: rule {index}"
    if not isinstance(raw, Mapping):
        raise ErrorMapError(f"{where}: expected a mapping, got {type(raw).__name__}")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise ErrorMapError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(_RULE_KEYS)}")
    provider = raw.get("provider")
    if not isinstance(provider, str) or not provider.strip():
        raise ErrorMapError(f"{where}: 'provider' must be a non-empty string (or 'any')")
    where = f"{where} (provider {provider})"
    flow = raw.get("flow", ANY)
    if not isinstance(flow, str) or _norm(flow) not in FLOWS:
        raise ErrorMapError(f"{where}: 'flow' must be one of {sorted(FLOWS)}, got {flow!r}")
    outcome = raw.get("outcome")
    if not isinstance(outcome, str) or _norm(outcome) not in OUTCOMES:
        raise ErrorMapError(f"{where}: 'outcome' must be one of {sorted(OUTCOMES)}, got {outcome!r}")
    note = raw.get("note", "")
    if not isinstance(note, str):
        raise ErrorMapError(f"{where}: 'note' must be a string")
    match = raw.get("match", {})
    if match is None:
        match = {}
    if not isinstance(match, Mapping):
        raise ErrorMapError(f"{where}: 'match' must be a mapping of fact to value")
    parsed: dict[str, Any] = {}
    for name, value in match.items():
        if name not in FACTS:
            raise ErrorMapError(f"{where}: unknown fact {name!r}; known facts: {list(FACTS)}")
        if isinstance(value, Mapping):
            if set(value) != {"range"}:
                raise ErrorMapError(f"{where}: fact {name!r}: a mapping value must be {{range: [low, high]}}")
            bounds = value["range"]
            if (
                not isinstance(bounds, list)
                or len(bounds) != 2
                or not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
                or bounds[0] > bounds[1]
            ):
                raise ErrorMapError(f"{where}: fact {name!r}: range must be [low, high], two integers, low <= high")
            parsed[name] = (bounds[0], bounds[1])
        elif isinstance(value, (str, int)) and not isinstance(value, bool):
            text = _norm(value)
            if not text:
                raise ErrorMapError(f"{where}: fact {name!r} has an empty value")
            if name == "http_status" and not (text.isdigit() and 100 <= int(text) <= 599):
                raise ErrorMapError(f"{where}: http_status must be an integer 100..599, got {value!r}")
            if name == "status_class" and text not in _STATUS_CLASSES:
                raise ErrorMapError(f"{where}: status_class must be one of {sorted(_STATUS_CLASSES)}, got {value!r}")
            parsed[name] = text
        else:
            raise ErrorMapError(
                f"{where}: fact {name!r} must be a string, an integer or {{range: [low, high]}}, got {value!r}"
            )
    return Rule(
        provider=_norm(provider),
        flow=_norm(flow),
        match=parsed,
        outcome=_norm(outcome),
        note=note.strip(),
        index=index,
    )


def parse_error_map(text: str, source: str = "<string>") -> ErrorMap:
    """Build an error map from YAML text: a mapping with a `rules` list."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ErrorMapError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(document, Mapping) or not isinstance(document.get("rules"), list):
        raise ErrorMapError(f"{source}: expected a mapping with a 'rules' list")
    if not document["rules"]:
        raise ErrorMapError(f"{source}: 'rules' is empty")
    return ErrorMap.from_rules(document["rules"], source)


def load_error_map(path: str | Path | None = None) -> ErrorMap:
    """Load the error map from `path`, or the packaged `error_map.yaml` when `path` is None."""
    if path is None:
        return default_error_map()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ErrorMapError(f"cannot read error map {path}: {exc.strerror or exc}") from None
    return parse_error_map(text, str(path))


@functools.cache
def default_error_map() -> ErrorMap:
    """The packaged error map, parsed once per process."""
    resource = importlib.resources.files(__package__).joinpath("error_map.yaml")
    return parse_error_map(resource.read_text(encoding="utf-8"), "error_map.yaml")
