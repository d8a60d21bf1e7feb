"""Differential privacy for anything that leaves the device, and text anonymisation.

* Mechanisms: Laplace (ε-DP, scale = sensitivity/ε) and Gaussian (σ calibrated by
  ``dp_accounting.get_sigma_gaussian`` for (ε, δ)). Noise comes from a numpy ``Generator`` seeded
  with 128 bits from ``secrets`` for every release, never from a fixed or guessable seed.
* Budget: per UTC day. Every release is a ``dp_accounting`` event; before a release the day's
  events plus the new one are composed with the privacy-loss-distribution accountant and the
  resulting ε at the mode's δ must stay within the mode's daily ε, else
  ``PrivacyBudgetExceeded`` and nothing is released. The reported ε is that accountant's.
* Anonymiser: e-mail addresses, phone numbers, street addresses and names (after titles and
  greetings, self-introductions, and "Firstname Lastname" pairs) become placeholders.
* k-anonymity: an item is offered to a global store only when at least k distinct contributors
  hold it (checked again on the coordinator).
"""

from __future__ import annotations

import importlib
import math
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from fogmesh.clock import Clock, WallClock
from fogmesh.errors import ConfigError, PrivacyBudgetExceeded

if TYPE_CHECKING:
    import dp_accounting

__all__ = [
    "PRIVACY_BUDGETS",
    "DailyBudget",
    "PrivacyAccountant",
    "anonymise",
    "gaussian_sigma",
    "is_anonymised",
    "k_anonymous",
    "sample_noise",
    "secure_rng",
]


@dataclass(frozen=True, slots=True)
class DailyBudget:
    epsilon: float
    delta: float
    k: int  # k-anonymity threshold for the global store


PRIVACY_BUDGETS: Final[Mapping[str, DailyBudget]] = {
    "strict": DailyBudget(epsilon=0.25, delta=1e-7, k=20),
    "balanced": DailyBudget(epsilon=1.0, delta=1e-6, k=10),
    "open": DailyBudget(epsilon=3.0, delta=1e-5, k=5),
}


def _dp() -> ModuleType:
    # dp-accounting pulls in scipy.signal (about a second); load it only when ε is computed.
    return importlib.import_module("dp_accounting")


def secure_rng() -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(secrets.randbits(128)))


def gaussian_sigma(sensitivity: float, epsilon: float, delta: float) -> float:
    return float(_dp().get_sigma_gaussian(epsilon, delta)) * sensitivity


def sample_noise(
    mechanism: str, scale: float, size: int, rng: np.random.Generator | None = None
) -> npt.NDArray[np.float64]:
    """Noise as a release draws it: Laplace with scale b, or Gaussian with σ = ``scale``."""
    gen = rng if rng is not None else secure_rng()
    if mechanism == "laplace":
        return gen.laplace(0.0, scale, size)
    if mechanism == "gaussian":
        return gen.normal(0.0, scale, size)
    raise ConfigError(f"unknown mechanism {mechanism!r} (laplace, gaussian)", field="mechanism")


def _event(mechanism: str, multiplier: float) -> dp_accounting.DpEvent:
    dp = _dp()
    if mechanism == "laplace":
        return dp.LaplaceDpEvent(multiplier)
    return dp.GaussianDpEvent(multiplier)


@lru_cache(maxsize=512)
def _composed_epsilon(events: tuple[tuple[str, float], ...], delta: float) -> float:
    """ε at ``delta`` of the composition (order does not matter, hence the sorted key); cached
    because the PLD accountant costs tens of milliseconds and days repeat the same releases."""
    if not events:
        return 0.0
    from dp_accounting.pld import pld_privacy_accountant

    accountant = pld_privacy_accountant.PLDAccountant()
    accountant.compose(_dp().ComposedDpEvent([_event(m, x) for m, x in events]))
    return float(accountant.get_epsilon(delta))


class PrivacyAccountant:
    """Charges releases against the day's budget; the ledger is JSON-able (the concierge stores it
    sealed). ``noise`` draws the noise; tests may inject a sampler, production never does."""

    def __init__(
        self,
        mode: str = "balanced",
        *,
        clock: Clock | None = None,
        ledger: Iterable[Mapping[str, Any]] = (),
        noise: Callable[[str, float], float] | None = None,
    ) -> None:
        if mode not in PRIVACY_BUDGETS:
            raise ConfigError(
                f"must be one of {', '.join(PRIVACY_BUDGETS)}, not {mode!r}", field="privacy_mode"
            )
        self.mode = mode
        self.budget = PRIVACY_BUDGETS[mode]
        self._clock = clock or WallClock()
        self.ledger: list[dict[str, Any]] = [dict(e) for e in ledger]
        self._noise = noise or (lambda m, s: float(sample_noise(m, s, 1)[0]))

    def _today(self) -> int:
        return int(self._clock.time() // 86_400)

    def _events_today(self) -> list[tuple[str, float]]:
        day = self._today()
        return [(e["mechanism"], float(e["multiplier"])) for e in self.ledger if e["day"] == day]

    def _epsilon(self, events: list[tuple[str, float]]) -> float:
        return _composed_epsilon(tuple(sorted(events)), self.budget.delta)

    def spent_today(self) -> float:
        """ε spent today at the mode's δ, as ``dp_accounting`` composes it."""
        return self._epsilon(self._events_today())

    def release(
        self, value: float, *, sensitivity: float, epsilon: float, mechanism: str = "laplace"
    ) -> float:
        """``value`` plus noise calibrated to (``epsilon``, mode δ), charged to today's budget."""
        if not (sensitivity > 0 and math.isfinite(sensitivity)):
            raise ConfigError("must be a positive number", field="sensitivity")
        if not (epsilon > 0 and math.isfinite(epsilon)):
            raise ConfigError("must be a positive number", field="epsilon")
        if mechanism == "laplace":
            scale = sensitivity / epsilon
        elif mechanism == "gaussian":
            scale = gaussian_sigma(sensitivity, epsilon, self.budget.delta)
        else:
            raise ConfigError(f"unknown mechanism {mechanism!r}", field="mechanism")
        entry = {"day": self._today(), "mechanism": mechanism, "multiplier": scale / sensitivity}
        total = self._epsilon([*self._events_today(), (mechanism, scale / sensitivity)])
        if total > self.budget.epsilon + 1e-9:
            raise PrivacyBudgetExceeded(
                f"releasing with ε={epsilon:g} would bring today's ε to {total:.3f}, over the "
                f"{self.mode} budget of {self.budget.epsilon:g} per day",
                spent=self.spent_today(),
                budget=self.budget.epsilon,
            )
        self.ledger.append(entry)
        return float(value) + self._noise(mechanism, scale)

    def report(self) -> dict[str, Any]:
        spent = self.spent_today()
        day = self._today()
        return {
            "privacy_mode": self.mode,
            "epsilon_per_day": self.budget.epsilon,
            "delta": self.budget.delta,
            "k_anonymity": self.budget.k,
            "epsilon_spent_today": round(spent, 6),
            "epsilon_remaining_today": round(max(0.0, self.budget.epsilon - spent), 6),
            "releases_today": sum(1 for e in self.ledger if e["day"] == day),
            "accountant": "dp_accounting PLD",
        }

    def prune(self, keep_days: int = 7) -> None:
        floor = self._today() - keep_days
        self.ledger = [e for e in self.ledger if e["day"] > floor]


# -- anonymisation -----------------------------------------------------------------------------

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(
    r"(?<!\w)(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d(?:[\s.-]?\d){6,13}(?!\w)"
)
_STREET = (
    r"(?:street|st|avenue|ave|road|rd|lane|ln|drive|dr|boulevard|blvd|way|court|ct|place|pl|"
    r"square|sq|straat|laan|weg|gracht|plein|strasse|straße)"
)
_ADDRESS = re.compile(
    rf"\b\d{{1,5}}[a-zA-Z]?\s+(?:[A-Z][\w'-]*\s+){{0,3}}{_STREET}\b\.?"
    rf"|\b[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*){{0,2}}\s+{_STREET}\s+\d{{1,5}}[a-zA-Z]?\b",
    re.IGNORECASE,
)
# Dutch and German streets are one compound word: Keizersgracht 123, Hauptstraße 5.
_COMPOUND_STREET = re.compile(
    r"\b[A-Z][a-zß]+(?:straat|gracht|laan|weg|plein|kade|strasse|straße|gasse)\s+\d{1,5}[a-zA-Z]?\b"
)
_TITLED = re.compile(
    r"\b(?:Mr|Mrs|Ms|Miss|Dr|Prof|Sir|Madam)\.?\s+[A-Z][a-z'-]+(?:\s+[A-Z][a-z'-]+)?"
)
_INTRO = re.compile(
    r"\b((?:[Mm]y name is|I am|I'm|[Tt]his is|[Cc]all me|[Hh]i|[Hh]ello|[Hh]ey|[Dd]ear|[Tt]hanks)"
    r",?\s+)([A-Z][a-z'-]+(?:\s+[A-Z][a-z'-]+)?)"
)
_FULL_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z'-]{1,}\s+[A-Z][a-z'-]{1,}\b")
_NOT_NAMES: Final = frozenset(
    {"I", "The", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}
)


def anonymise(text: str) -> str:
    """Replace e-mails, phone numbers, street addresses and names with placeholders."""
    out = _EMAIL.sub("[EMAIL]", text)
    out = _ADDRESS.sub("[ADDRESS]", out)
    out = _COMPOUND_STREET.sub("[ADDRESS]", out)
    out = _PHONE.sub("[PHONE]", out)
    out = _TITLED.sub("[NAME]", out)
    out = _INTRO.sub(lambda m: m.group(1) + "[NAME]", out)

    def full(match: re.Match[str]) -> str:
        words = match.group(0).split()
        return match.group(0) if any(w in _NOT_NAMES for w in words) else "[NAME]"

    return _FULL_NAME.sub(full, out)


def is_anonymised(text: str) -> bool:
    """True when the anonymiser would change nothing (what the global store checks)."""
    return anonymise(text) == text


def k_anonymous(contributors: Iterable[str], k: int) -> bool:
    return len(set(contributors)) >= k
