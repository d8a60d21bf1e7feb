"""Edge management: the EdgeManager, the model registry, variant choice, chunked transfer and
the device-side model cache."""

from fogmesh.edge.builtin import BUILTIN_MODELS
from fogmesh.edge.cache import CachedModel, ModelCache, default_cache_dir
from fogmesh.edge.deployments import Deployment, DeploymentNotFound, DeploymentState
from fogmesh.edge.manager import EdgeDevice, EdgeManager
from fogmesh.edge.models import MAX_MODEL_BYTES, ModelInfo, ModelRegistry, TensorSpec
from fogmesh.edge.monitor import ChangeThresholds, significant_changes
from fogmesh.edge.transfer import (
    INTERNET_CHUNK_MULTIPLIER,
    MAX_CHUNK_BYTES,
    Link,
    ModelChunk,
    ModelReceiver,
    ModelSender,
    TransferOffer,
    chunk_size_for,
    link_for,
)
from fogmesh.edge.variants import Variant, VariantChoice, choose_variant, memory_needed_mb

__all__ = [
    "BUILTIN_MODELS",
    "INTERNET_CHUNK_MULTIPLIER",
    "MAX_CHUNK_BYTES",
    "MAX_MODEL_BYTES",
    "CachedModel",
    "ChangeThresholds",
    "Deployment",
    "DeploymentNotFound",
    "DeploymentState",
    "EdgeDevice",
    "EdgeManager",
    "Link",
    "ModelCache",
    "ModelChunk",
    "ModelInfo",
    "ModelReceiver",
    "ModelRegistry",
    "ModelSender",
    "TensorSpec",
    "TransferOffer",
    "Variant",
    "VariantChoice",
    "choose_variant",
    "chunk_size_for",
    "default_cache_dir",
    "link_for",
    "memory_needed_mb",
    "significant_changes",
]
