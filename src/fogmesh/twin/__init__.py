"""The digital twin: an on-device personal model whose data never leaves unencrypted or
un-noised (docs/twin.md).

The names below load on first use (PEP 562): the coordinator reads ``elevation`` for its global
knowledge store without importing the calendar parser, the learner or the embeddings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fogmesh._lazy import lazy_exports

if TYPE_CHECKING:
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

_HOME = {
    "Chunk": "fogmesh.twin.rag",
    "Contribution": "fogmesh.twin.elevation",
    "DataSource": "fogmesh.twin.prefs",
    "DigitalTwinConcierge": "fogmesh.twin.concierge",
    "Embedder": "fogmesh.twin.embeddings",
    "GlobalKnowledgeStore": "fogmesh.twin.elevation",
    "Hit": "fogmesh.twin.rag",
    "ImportReport": "fogmesh.twin.sources",
    "KnowledgeBase": "fogmesh.twin.rag",
    "LearningCycle": "fogmesh.twin.learner",
    "MiniLMEmbedder": "fogmesh.twin.embeddings",
    "PRIVACY_BUDGETS": "fogmesh.twin.privacy",
    "PRIVACY_MODES": "fogmesh.twin.prefs",
    "Persona": "fogmesh.twin.persona",
    "PrivacyAccountant": "fogmesh.twin.privacy",
    "Record": "fogmesh.twin.prefs",
    "RowError": "fogmesh.twin.sources",
    "SYNTHETIC_LABEL": "fogmesh.twin.persona",
    "TwinModel": "fogmesh.twin.learner",
    "UserPreferences": "fogmesh.twin.prefs",
    "Vault": "fogmesh.twin.vault",
    "anonymise": "fogmesh.twin.privacy",
    "elevate": "fogmesh.twin.elevation",
    "embeddings_available": "fogmesh.twin.embeddings",
    "learn": "fogmesh.twin.learner",
    "local_zone_name": "fogmesh.twin.prefs",
    "parse_source": "fogmesh.twin.prefs",
    "synthetic_persona": "fogmesh.twin.persona",
}

__getattr__, __dir__ = lazy_exports(globals(), _HOME, __all__)
