"""The digital twin: an on-device personal model whose data never leaves unencrypted or
un-noised (docs/twin.md)."""

from __future__ import annotations

from fogmesh.twin.concierge import DigitalTwinConcierge
from fogmesh.twin.elevation import Contribution, GlobalKnowledgeStore, elevate
from fogmesh.twin.embeddings import Embedder, MiniLMEmbedder, embeddings_available
from fogmesh.twin.learner import LearningCycle, TwinModel, learn
from fogmesh.twin.persona import SYNTHETIC_LABEL, Persona, synthetic_persona
from fogmesh.twin.prefs import (
    PRIVACY_MODES,
    DataSource,
    Record,
    UserPreferences,
    local_zone_name,
    parse_source,
)
from fogmesh.twin.privacy import PRIVACY_BUDGETS, PrivacyAccountant, anonymise
from fogmesh.twin.rag import Chunk, Hit, KnowledgeBase
from fogmesh.twin.sources import ImportReport, RowError
from fogmesh.twin.vault import Vault

__all__ = [
    "PRIVACY_BUDGETS",
    "PRIVACY_MODES",
    "SYNTHETIC_LABEL",
    "Chunk",
    "Contribution",
    "DataSource",
    "DigitalTwinConcierge",
    "Embedder",
    "GlobalKnowledgeStore",
    "Hit",
    "ImportReport",
    "KnowledgeBase",
    "LearningCycle",
    "MiniLMEmbedder",
    "Persona",
    "PrivacyAccountant",
    "Record",
    "RowError",
    "TwinModel",
    "UserPreferences",
    "Vault",
    "anonymise",
    "elevate",
    "embeddings_available",
    "learn",
    "local_zone_name",
    "parse_source",
    "synthetic_persona",
]
