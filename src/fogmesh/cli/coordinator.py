"""``fogmesh coordinator``: serve the REST API and the agent endpoint until SIGINT/SIGTERM."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fogmesh._eventloop import run_service
from fogmesh._logopts import LogFormatOption, LogLevelOption
from fogmesh.config import load_settings
from fogmesh.logs import configure_logging

__all__ = ["coordinator"]


def coordinator(
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="state, keys and admin ticket (else FOGMESH_HOME)"),
    ] = None,
    host: Annotated[
        str,
        typer.Option(
            "--host", help="address to listen on (0.0.0.0: every interface, for other machines)"
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port (0: any free port)")] = 8700,
    db: Annotated[
        str | None,
        typer.Option("--db", help="store URL, e.g. postgresql+asyncpg://… (default: SQLite)"),
    ] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="URL devices dial (written into join tokens)")
    ] = None,
    heartbeat_interval: Annotated[
        float,
        typer.Option("--heartbeat-interval", help="seconds between expected agent heartbeats"),
    ] = 30.0,
    scheduling_interval: Annotated[
        float, typer.Option("--scheduling-interval", help="seconds between scheduling rounds")
    ] = 5.0,
    dispatch_timeout: Annotated[
        float, typer.Option("--dispatch-timeout", help="seconds a device has to start a task")
    ] = 60.0,
    log_level: LogLevelOption = None,
    log_format: LogFormatOption = None,
    tls: Annotated[
        bool,
        typer.Option(
            "--tls",
            help="serve HTTPS on a loopback address too (always on for any other address)",
        ),
    ] = False,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            "--tls-cert", help="PEM certificate (chain) to serve instead of a self-signed one"
        ),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="PEM private key of --tls-cert (mode 0600)")
    ] = None,
    tls_name: Annotated[
        list[str] | None,
        typer.Option(
            "--tls-name",
            help="extra host name or IP for the self-signed certificate (repeatable)",
        ),
    ] = None,
    insecure_http: Annotated[
        bool,
        typer.Option(
            "--insecure-http",
            help="serve plain HTTP on a non-loopback address: tickets cross the network in clear",
        ),
    ] = False,
    header_timeout: Annotated[
        float,
        typer.Option(
            "--header-timeout",
            help="seconds a client has to send a request's headers (then 408, closed)",
        ),
    ] = 10.0,
    max_connections: Annotated[
        int,
        typer.Option(
            "--max-connections",
            help="open connections (REST + agents) beyond which new ones get 503",
        ),
    ] = 10_000,
) -> None:
    """Run the coordinator: REST API + OpenAPI (/docs), agent WebSocket, /metrics, /healthz.

    At first start it creates its keys and writes an admin ticket (0600) into the data directory.
    On any address other than loopback it serves HTTPS: with --tls-cert/--tls-key, or with a
    self-signed certificate made at first start whose fingerprint it prints (join tokens carry it;
    remote clients pass it as --fingerprint).

    Example: fogmesh coordinator --data-dir ./fog --host 0.0.0.0 --port 8700 --log-format json
    """
    level, _ = configure_logging(log_level, log_format)
    settings = load_settings(home=data_dir)
    # The service stack (FastAPI, SQLAlchemy) loads only for this command, so every other
    # command — and an agent on a phone — starts without it.
    from fogmesh.fog.coordinator import CoordinatorConfig
    from fogmesh.fog.lifecycle import LifecycleConfig
    from fogmesh.server.config import ServerConfig
    from fogmesh.server.service import run_coordinator

    config = ServerConfig(
        data_dir=settings.home,
        host=host,
        port=port,
        db_url=db,
        public_url=url,
        tls=tls,
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_names=tuple(tls_name or ()),
        insecure_http=insecure_http,
        header_timeout=header_timeout,
        max_connections=max_connections,
        coordinator=CoordinatorConfig(
            scheduling_interval=scheduling_interval,
            lifecycle=LifecycleConfig(
                heartbeat_interval=heartbeat_interval, dispatch_timeout=dispatch_timeout
            ),
        ),
    )
    run_service(run_coordinator(config, log_level=level))
