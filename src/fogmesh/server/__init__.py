"""The coordinator service: REST API, agent WebSocket (Noise XK), metrics.

Shape (uvicorn's): CLI → ``ServerConfig`` → ``CoordinatorService`` (explicit start/stop) →
``create_app`` (FastAPI) → uvicorn.
"""

from __future__ import annotations

from fogmesh.server.app import create_app
from fogmesh.server.config import ServerConfig
from fogmesh.server.service import CoordinatorService, run_coordinator

__all__ = ["CoordinatorService", "ServerConfig", "create_app", "run_coordinator"]
