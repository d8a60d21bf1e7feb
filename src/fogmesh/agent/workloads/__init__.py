"""Built-in task functions, the default allow-list of a device's runner.

Each is deterministic given its arguments and returns a small JSON object with a
``checksum`` so a caller can verify the work. Name them as ``"fogmesh.agent.workloads:matmul"``
(or by their module). ONNX inference is not a workload: a ``model`` payload names a model id,
and the runner runs it from the device's verified model cache (``fogmesh.agent._inference``).
"""

from __future__ import annotations

from fogmesh.agent.workloads.basic import allocate, blob, burn, echo
from fogmesh.agent.workloads.linalg import matmul
from fogmesh.agent.workloads.text import embed, preprocess, tokenise
from fogmesh.agent.workloads.train import train_logreg

__all__ = [
    "allocate",
    "blob",
    "burn",
    "echo",
    "embed",
    "matmul",
    "preprocess",
    "tokenise",
    "train_logreg",
]
