"""Differential privacy: released values follow the mechanism, the budget holds and matches
dp-accounting; anonymiser, k-anonymity and the global store's checks."""

from __future__ import annotations

import dp_accounting
import numpy as np
import pytest
from dp_accounting.pld import pld_privacy_accountant
from scipy import stats

from fogmesh.clock import ManualClock
from fogmesh.errors import ConfigError, ConsentError, PrivacyBudgetExceeded, TwinError
from fogmesh.twin import PRIVACY_BUDGETS, GlobalKnowledgeStore, PrivacyAccountant, anonymise
from fogmesh.twin.elevation import Contribution, elevate
from fogmesh.twin.privacy import gaussian_sigma, is_anonymised, k_anonymous, secure_rng

DAY = 86_400.0


def _released(mechanism: str, n: int, epsilon: float) -> np.ndarray:
    """n releases of the value 10 through the real path (secure noise), one per day."""
    clock = ManualClock(0.0)
    accountant = PrivacyAccountant("balanced", clock=clock)
    out = []
    for _ in range(n):
        out.append(accountant.release(10.0, sensitivity=2.0, epsilon=epsilon, mechanism=mechanism))
        clock.advance(DAY)
    return np.array(out) - 10.0


def test_laplace_releases_follow_the_laplace_mechanism() -> None:
    noise = _released("laplace", 1500, 0.5)
    # scale b = sensitivity / ε = 4
    assert stats.kstest(noise, stats.laplace(scale=4.0).cdf).pvalue > 0.001
    assert stats.kstest(noise, stats.laplace(scale=2.0).cdf).pvalue < 1e-6


def test_gaussian_releases_follow_the_gaussian_mechanism() -> None:
    noise = _released("gaussian", 1500, 0.9)
    sigma = 2.0 * dp_accounting.get_sigma_gaussian(0.9, 1e-6)
    assert sigma == pytest.approx(gaussian_sigma(2.0, 0.9, 1e-6))
    assert stats.kstest(noise, stats.norm(scale=sigma).cdf).pvalue > 0.001
    assert stats.kstest(noise, stats.norm(scale=sigma / 2).cdf).pvalue < 1e-6


def test_budget_is_refused_when_exceeded_and_resets_next_day() -> None:
    clock = ManualClock(10 * DAY)
    accountant = PrivacyAccountant("balanced", clock=clock)
    accountant.release(1.0, sensitivity=1.0, epsilon=0.4)
    accountant.release(1.0, sensitivity=1.0, epsilon=0.4)
    with pytest.raises(PrivacyBudgetExceeded, match="balanced budget of 1 per day"):
        accountant.release(1.0, sensitivity=1.0, epsilon=0.4)
    assert accountant.report()["releases_today"] == 2  # the refused one was not charged
    clock.advance(DAY)
    accountant.release(1.0, sensitivity=1.0, epsilon=0.4)


def test_reported_epsilon_matches_dp_accounting() -> None:
    accountant = PrivacyAccountant("open", clock=ManualClock(0.0))
    accountant.release(0.0, sensitivity=1.0, epsilon=0.3)
    accountant.release(0.0, sensitivity=3.0, epsilon=0.5, mechanism="gaussian")
    reference = pld_privacy_accountant.PLDAccountant()
    reference.compose(dp_accounting.LaplaceDpEvent(1 / 0.3))
    reference.compose(
        dp_accounting.GaussianDpEvent(
            dp_accounting.get_sigma_gaussian(0.5, PRIVACY_BUDGETS["open"].delta)
        )
    )
    expected = reference.get_epsilon(PRIVACY_BUDGETS["open"].delta)
    assert accountant.spent_today() == pytest.approx(expected, rel=1e-6)
    assert accountant.report()["epsilon_spent_today"] == pytest.approx(expected, abs=1e-6)
    # a later budget check sees the same ledger after a restart (ledger is plain data)
    again = PrivacyAccountant("open", clock=ManualClock(0.0), ledger=accountant.ledger)
    assert again.spent_today() == pytest.approx(expected, rel=1e-6)


def test_modes_are_ordered_and_unknown_ones_refused() -> None:
    eps = [PRIVACY_BUDGETS[m].epsilon for m in ("strict", "balanced", "open")]
    assert eps == sorted(eps) and PRIVACY_BUDGETS["balanced"].epsilon == 1.0
    assert PRIVACY_BUDGETS["balanced"].delta == 1e-6
    with pytest.raises(ConfigError, match="privacy_mode"):
        PrivacyAccountant("lax")
    with pytest.raises(ConfigError, match="epsilon"):
        PrivacyAccountant().release(1.0, sensitivity=1.0, epsilon=0.0)


def test_secure_rng_is_not_repeatable() -> None:
    assert secure_rng().integers(0, 2**62) != secure_rng().integers(0, 2**62)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe@example.com today", "write to [EMAIL] today"),
        ("call +31 6 1234 5678 or (020) 555-0199", "call [PHONE] or [PHONE]"),
        ("I live at 221B Baker Street now", "I live at [ADDRESS] now"),
        ("meet at Keizersgracht 123", "meet at [ADDRESS]"),
        ("ask Dr. Watson and Mrs Hudson", "ask [NAME] and [NAME]"),
        ("Hi Tom, my name is Alice", "Hi [NAME], my name is [NAME]"),
        ("lunch with Sarah Connor", "lunch with [NAME]"),
        ("the gym class moved to 6:30 on Monday", "the gym class moved to 6:30 on Monday"),
    ],
)
def test_anonymiser(text: str, expected: str) -> None:
    assert anonymise(text) == expected
    assert is_anonymised(anonymise(text))


def test_k_anonymity_counts_distinct_contributors() -> None:
    assert not k_anonymous(["a", "a", "b"], 3)
    assert k_anonymous(["a", "b", "c"], 3)


def test_global_store_checks_and_publishes_only_k_anonymous_items() -> None:
    store = GlobalKnowledgeStore(k=3)
    ok = Contribution("purchase category coffee", 4.2, 0.1, "laplace", "dev1", True)
    with pytest.raises(ConsentError):
        store.accept(Contribution(ok.topic, 1.0, 0.1, "laplace", "d", False))
    with pytest.raises(TwinError, match="not anonymised"):
        store.accept(Contribution("coffee with jane@example.com", 1.0, 0.1, "laplace", "d", True))
    with pytest.raises(TwinError, match="not differentially private"):
        store.accept(Contribution(ok.topic, 1.0, 0.0, "none", "d", True))
    store.accept(ok)
    store.accept(Contribution(ok.topic, 5.0, 0.1, "laplace", "dev1", True))  # same device again
    store.accept(Contribution(ok.topic, 3.0, 0.1, "laplace", "dev2", True))
    assert store.published() == [] and store.pending() == 1
    store.accept(Contribution(ok.topic, 2.0, 0.1, "laplace", "dev3", True))
    assert store.published() == [
        {"topic": ok.topic, "contributors": 3, "noisy_count": pytest.approx(10.0)}
    ]


def test_elevate_anonymises_noises_charges_and_needs_consent() -> None:
    store = GlobalKnowledgeStore(k=2)
    accountant = PrivacyAccountant("strict", clock=ManualClock(0.0))
    with pytest.raises(ConsentError):
        elevate({"x": 1}, contributor="d", consent=False, accountant=accountant, sink=store)
    sent = elevate(
        {"dinner with Sarah Connor": 3, "coffee": 5},
        contributor="d1",
        consent=True,
        accountant=accountant,
        sink=store,
        epsilon_each=0.1,
    )
    assert [c.topic for c in sent] == ["dinner with [NAME]", "coffee"]
    assert accountant.report()["releases_today"] == 2
    with pytest.raises(PrivacyBudgetExceeded):  # strict: 0.25 per day
        elevate({"tea": 1}, contributor="d1", consent=True, accountant=accountant, sink=store)
