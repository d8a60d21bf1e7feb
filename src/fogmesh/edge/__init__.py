"""Edge management: the EdgeManager, the model registry, variant choice, chunked transfer and
the device-side model cache.

Names load on first use: a device that only needs the model cache or the transfer receiver does
not import the coordinator and its store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fogmesh._lazy import lazy_exports

if TYPE_CHECKING:
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

_HOME = {
    "BUILTIN_MODELS": "fogmesh.edge.builtin",
    "CachedModel": "fogmesh.edge.cache",
    "ChangeThresholds": "fogmesh.edge.monitor",
    "Deployment": "fogmesh.edge.deployments",
    "DeploymentNotFound": "fogmesh.edge.deployments",
    "DeploymentState": "fogmesh.edge.deployments",
    "EdgeDevice": "fogmesh.edge.manager",
    "EdgeManager": "fogmesh.edge.manager",
    "INTERNET_CHUNK_MULTIPLIER": "fogmesh.edge.transfer",
    "Link": "fogmesh.edge.transfer",
    "MAX_CHUNK_BYTES": "fogmesh.edge.transfer",
    "MAX_MODEL_BYTES": "fogmesh.edge.models",
    "ModelCache": "fogmesh.edge.cache",
    "ModelChunk": "fogmesh.edge.transfer",
    "ModelInfo": "fogmesh.edge.models",
    "ModelReceiver": "fogmesh.edge.transfer",
    "ModelRegistry": "fogmesh.edge.models",
    "ModelSender": "fogmesh.edge.transfer",
    "TensorSpec": "fogmesh.edge.models",
    "TransferOffer": "fogmesh.edge.transfer",
    "Variant": "fogmesh.edge.variants",
    "VariantChoice": "fogmesh.edge.variants",
    "choose_variant": "fogmesh.edge.variants",
    "chunk_size_for": "fogmesh.edge.transfer",
    "default_cache_dir": "fogmesh.edge.cache",
    "link_for": "fogmesh.edge.transfer",
    "memory_needed_mb": "fogmesh.edge.variants",
    "significant_changes": "fogmesh.edge.monitor",
}


__getattr__, __dir__ = lazy_exports(globals(), _HOME, __all__)
