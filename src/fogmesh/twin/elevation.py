"""Privacy-preserving elevation of personal knowledge to a global store on the coordinator.

Device side, ``elevate`` offers items (a short topic and how often the owner's data shows it)
only with the owner's elevation consent; each topic is anonymised and each count is released
through the privacy accountant (Laplace, sensitivity 1), so it is charged to the daily ε budget.
It hands ``Contribution`` values to a pluggable sink (a callable: in-process store, HTTP client).

Coordinator side, ``GlobalKnowledgeStore.accept`` re-checks what it cannot trust a device to have
done: the consent flag, that the topic is anonymised, that the count was noised (a mechanism and
a positive ε are declared). An item is published only once at least k distinct contributors
offered it (k-anonymity); its count is the sum of the noised counts. The coordinator
service feeds it from ``POST /v1/knowledge`` (see ``fogmesh.server.routes.knowledge``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fogmesh.errors import ConsentError, TwinError
from fogmesh.twin.privacy import PrivacyAccountant, anonymise, is_anonymised, k_anonymous

__all__ = ["Contribution", "ElevationSink", "GlobalKnowledgeStore", "elevate"]


@dataclass(frozen=True, slots=True)
class Contribution:
    topic: str
    noisy_count: float
    epsilon: float
    mechanism: str
    contributor: str  # a random pseudonym of the device, not its identity
    consent: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "noisy_count": self.noisy_count,
            "epsilon": self.epsilon,
            "mechanism": self.mechanism,
            "contributor": self.contributor,
            "consent": self.consent,
        }


ElevationSink = Callable[[Contribution], object]


def elevate(
    items: Mapping[str, int],
    *,
    contributor: str,
    consent: bool,
    accountant: PrivacyAccountant,
    sink: ElevationSink,
    epsilon_each: float = 0.1,
) -> list[Contribution]:
    """Anonymise, noise and send each item; stops with ``PrivacyBudgetExceeded`` when the day's
    budget runs out (items already sent stay sent)."""
    if not consent:
        raise ConsentError("elevation to the global store needs the owner's consent")
    sent = []
    for topic, count in items.items():
        clean = anonymise(topic)
        noisy = accountant.release(float(count), sensitivity=1.0, epsilon=epsilon_each)
        contribution = Contribution(clean, noisy, epsilon_each, "laplace", contributor, True)
        sink(contribution)
        sent.append(contribution)
    return sent


class GlobalKnowledgeStore:
    """In-memory coordinator-side store of elevated knowledge."""

    def __init__(self, k: int = 10) -> None:
        if k < 2:
            raise TwinError("k-anonymity needs k ≥ 2")
        self.k = k
        self._items: dict[str, dict[str, float]] = {}

    def accept(self, contribution: Contribution) -> None:
        if not contribution.consent:
            raise ConsentError("contribution refused: no consent flag")
        if not is_anonymised(contribution.topic):
            raise TwinError("contribution refused: topic is not anonymised")
        if contribution.mechanism not in ("laplace", "gaussian") or not contribution.epsilon > 0:
            raise TwinError("contribution refused: count is not differentially private")
        # One (latest) count per contributor, so a device cannot inflate an item by repeating.
        self._items.setdefault(contribution.topic, {})[contribution.contributor] = (
            contribution.noisy_count
        )

    def __call__(self, contribution: Contribution) -> None:
        self.accept(contribution)

    def published(self) -> list[dict[str, Any]]:
        """Items at least k distinct contributors offered, with their summed noisy counts."""
        out: list[dict[str, Any]] = [
            {"topic": topic, "contributors": len(by), "noisy_count": sum(by.values())}
            for topic, by in self._items.items()
            if k_anonymous(by, self.k)
        ]
        out.sort(key=lambda item: (-int(item["contributors"]), str(item["topic"])))
        return out

    def pending(self) -> int:
        return sum(1 for by in self._items.values() if not k_anonymous(by, self.k))

    def to_state(self) -> dict[str, dict[str, float]]:
        """Every noised count by topic and contributor (JSON-able, for the coordinator's store)."""
        return {topic: dict(by) for topic, by in self._items.items()}

    def load_state(self, state: Mapping[str, Mapping[str, float]]) -> None:
        self._items = {str(t): {str(c): float(n) for c, n in by.items()} for t, by in state.items()}
