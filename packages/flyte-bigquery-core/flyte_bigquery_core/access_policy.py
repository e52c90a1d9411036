"""Who may run as whom: the operator's allow-list of service accounts per Flyte project and domain.

A task may ask to run as a service account (``ImpersonateServiceAccount``, :mod:`.access`). The connector's own
identity usually may impersonate many accounts, so the platform, not the task's author, decides which tasks may
use which: ``FLYTEKITPLUGINS_BIGQUERY_IMPERSONATION_RULES`` holds the rules (inline JSON or the path of a JSON
file, :mod:`.operator_config`), read and checked at start-up. **Deny by default**: with no rules, or no rule
covering the task's Flyte project and domain and listing the principal, the task is refused before anything is
submitted, naming the principal and the rule (or that no rule matched).

The document, a list of rules or ``{"rules": [...]}``::

    {"rules": [
      {"name": "etl-prod", "project": "analytics", "domain": "production",
       "principals": ["etl@analytics-prod.iam.gserviceaccount.com"]},
      {"name": "dev-sandbox", "project": "*", "domain": "development",
       "principals": ["*@sandbox.iam.gserviceaccount.com"], "delegates": ["hop@sandbox.iam.gserviceaccount.com"]}
    ]}

``project`` and ``domain`` (default ``*``) and the entries of ``principals`` and ``delegates`` are shell-style
patterns (:func:`fnmatch.fnmatchcase`: ``*``, ``?``, ``[...]``), compared case-sensitively except that e-mail
addresses are compared in lower case. ``delegates`` (default: none) lists the accounts a delegation chain
(``Delegates``) may pass through; a task naming a delegate no rule lists is refused like an unlisted principal.
Local runs (no Flyte execution) have an empty project and domain, which only ``*`` covers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from .errors import PermanentError
from .operator_config import json_document
from .text_values import Malformed

__all__ = ["IMPERSONATION_RULES_ENV", "AccessPolicy", "AccessRule", "ImpersonationRefused", "parse_policy"]

IMPERSONATION_RULES_ENV = "FLYTEKITPLUGINS_BIGQUERY_IMPERSONATION_RULES"
_RULE_KEYS = frozenset({"name", "project", "domain", "principals", "delegates"})


class ImpersonationRefused(PermanentError):
    """The allow-list does not let this task run as the principal it names. Raised before anything is submitted."""

    def __init__(self, message: str, principal: str, rule: str | None, *, task: str | None = None) -> None:
        super().__init__(message, task=task)
        self.principal = principal
        self.rule = rule


def _email(value: str) -> str:
    return value.strip().lower()


@dataclass(frozen=True)
class AccessRule:
    """One rule: tasks of Flyte ``project``/``domain`` may run as ``principals``, through ``delegates``."""

    name: str
    project: str = "*"
    domain: str = "*"
    principals: tuple[str, ...] = ()
    delegates: tuple[str, ...] = ()

    def covers(self, project: str, domain: str) -> bool:
        return fnmatchcase(project, self.project) and fnmatchcase(domain, self.domain)

    def lists(self, principal: str) -> bool:
        return any(fnmatchcase(_email(principal), _email(p)) for p in self.principals)

    def passes(self, delegate: str) -> bool:
        return any(fnmatchcase(_email(delegate), _email(d)) for d in self.delegates)

    @classmethod
    def from_api_repr(cls, raw: Any, number: int) -> AccessRule:
        """A rule from its JSON object; :class:`Malformed` naming the rule and what is wrong."""
        label = f"rule {number}"
        if not isinstance(raw, dict):
            raise Malformed(f"{label} is not a JSON object")
        unknown = sorted(set(raw) - _RULE_KEYS)
        if unknown:
            raise Malformed(
                f"{label} has unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(_RULE_KEYS))}"
            )
        name = raw.get("name", label)
        if not isinstance(name, str) or not name.strip():
            raise Malformed(f"{label}: name must be a non-empty string")
        scope = {key: raw.get(key, "*") for key in ("project", "domain")}
        for key, value in scope.items():
            if not isinstance(value, str) or not value.strip():
                raise Malformed(f"rule {name!r}: {key} must be a non-empty string (a pattern; '*' for any)")
        principals = _patterns(raw.get("principals"), f"rule {name!r}: principals", required=True)
        delegates = _patterns(raw.get("delegates", []), f"rule {name!r}: delegates", required=False)
        return cls(name.strip(), scope["project"].strip(), scope["domain"].strip(), principals, delegates)


def _patterns(raw: Any, what: str, required: bool) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(p, str) and p.strip() for p in raw):
        raise Malformed(f"{what} must be a list of service-account e-mails (or patterns)")
    if required and not raw:
        raise Malformed(f"{what} is empty; a rule that allows nobody is a mistake")
    return tuple(p.strip() for p in raw)


@dataclass(frozen=True)
class AccessPolicy:
    """The allow-list: an ordered tuple of rules. ``AccessPolicy()`` (no rules) refuses every principal."""

    rules: tuple[AccessRule, ...] = ()

    def authorize(
        self, principal: str, delegates: Sequence[str], project: str, domain: str, task: str | None = None
    ) -> AccessRule:
        """The first rule that lets tasks of ``project``/``domain`` run as ``principal`` through ``delegates``.

        Raises :class:`ImpersonationRefused` (a permanent error) naming the principal and the rule(s) that
        covered the task but did not allow it, or saying that no rule covers the task's project and domain.
        """
        where = f"Flyte project {project or '(none: a local run)'!r}, domain {domain or '(none)'!r}"
        covering = [rule for rule in self.rules if rule.covers(project, domain)]
        listing = [rule for rule in covering if rule.lists(principal)]
        for rule in listing:
            if all(rule.passes(d) for d in delegates):
                return rule
        if not self.rules:
            why, rule_name = f"{IMPERSONATION_RULES_ENV} is not set on this connector, so impersonation is denied", None
        elif not covering:
            why, rule_name = f"no impersonation rule covers {where} (deny by default)", None
        elif not listing:
            names = ", ".join(repr(rule.name) for rule in covering)
            why, rule_name = f"the rule(s) covering {where} ({names}) do not list it", covering[0].name
        else:
            rule = listing[0]
            blocked = next(d for d in delegates if not rule.passes(d))
            why, rule_name = f"rule {rule.name!r} lists it but not the delegate {blocked!r}", rule.name
        raise ImpersonationRefused(
            f"may not run as {principal!r}: {why}; nothing was submitted. An operator decides who may run as whom "
            f"({IMPERSONATION_RULES_ENV})",
            principal,
            rule_name,
            task=task,
        )


def parse_policy(text: str) -> AccessPolicy:
    """The setting's text (inline JSON or a file path) → :class:`AccessPolicy`; :class:`Malformed` otherwise."""
    document = json_document(text)
    raw_rules = document.get("rules") if isinstance(document, dict) else document
    if isinstance(document, dict) and set(document) - {"rules"}:
        raise Malformed(f"unknown key(s) {', '.join(sorted(set(document) - {'rules'}))}; expected 'rules'")
    if not isinstance(raw_rules, list):
        raise Malformed("expected a list of rules, or an object {'rules': [...]}")
    rules = tuple(AccessRule.from_api_repr(raw, number) for number, raw in enumerate(raw_rules, 1))
    names = [rule.name for rule in rules]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise Malformed(f"rule name(s) {', '.join(map(repr, repeated))} used twice; refusals name the rule")
    return AccessPolicy(rules)
