"""The coordinator's HTTPS settings as the service applies them: which certificate it serves,
what join tokens pin, and the warning for plain HTTP on a network address."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from fogmesh.security.selfsigned import load_or_create_certificate
from fogmesh.security.tokens import JoinToken
from fogmesh.server import CoordinatorService, ServerConfig, create_app
from fogmesh.server.service import _warn_plain_http


async def _tokens(
    config: ServerConfig,
) -> AsyncIterator[tuple[CoordinatorService, httpx.AsyncClient]]:
    service = CoordinatorService(config)
    await service.start()
    transport = httpx.ASGITransport(app=create_app(config, service=service))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://fog") as client:
            client.headers["Authorization"] = f"Bearer {service.admin_ticket}"
            yield service, client
    finally:
        await service.stop()


async def test_join_tokens_pin_the_self_signed_certificate(tmp_path: Path) -> None:
    config = ServerConfig(data_dir=tmp_path, db_url="memory", tls=True)
    async for service, client in _tokens(config):
        assert service.certificate is not None and service.certificate.self_signed
        r = await client.post("/v1/tokens", json={"url": "https://192.168.1.20:8700"})
        assert r.status_code == 201, r.text
        join = JoinToken.parse(r.json()["token"])
        assert join.tls_fingerprint == service.certificate.fingerprint
        # A pinned token with an http:// URL would leave the device unable to connect.
        r = await client.post("/v1/tokens", json={"url": "http://192.168.1.20:8700"})
        assert r.status_code == 422 and "https://" in r.json()["error"]["reason"]


async def test_a_given_certificate_is_served_and_not_pinned(tmp_path: Path) -> None:
    given = load_or_create_certificate(tmp_path / "operator", host="127.0.0.1")
    config = ServerConfig(
        data_dir=tmp_path / "coord",
        db_url="memory",
        tls_cert=given.cert_path,
        tls_key=given.key_path,
    )
    async for service, client in _tokens(config):
        assert service.certificate is not None and not service.certificate.self_signed
        assert service.certificate.fingerprint == given.fingerprint
        assert service.pinned_fingerprint is None  # CA-verified, so it can be renewed
        assert not (tmp_path / "coord" / "tls").exists()  # no self-signed one was made
        r = await client.post("/v1/tokens", json={"url": "https://fog.example:8700"})
        assert r.json()["token"].startswith("fmj1.")


def test_plain_http_on_a_network_address_is_announced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _warn_plain_http(ServerConfig(data_dir=tmp_path, host="0.0.0.0", insecure_http=True))
    assert "WARNING: serving plain HTTP on 0.0.0.0" in capsys.readouterr().err
    _warn_plain_http(ServerConfig(data_dir=tmp_path))  # loopback: nothing to say
    _warn_plain_http(ServerConfig(data_dir=tmp_path, host="0.0.0.0"))  # HTTPS
    assert capsys.readouterr().err == ""
