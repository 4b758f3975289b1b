"""TLS beyond loopback: the owner's certificate, or a self-signed one made once with its fingerprint printed;
--no-tls is the explicit way to listen in the clear; a real TLS handshake checks the certificate."""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
import time
from pathlib import Path

import httpx
import pytest

from plait.cli.serve import _tls
from plait.errors import ConfigError
from plait.security.tls import machine_names, self_signed
from plait.settings import load_settings


def test_loopback_needs_no_tls_and_beyond_it_a_certificate_is_made(plait_home: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert _tls(load_settings(home=plait_home), no_tls=False) == (None, None)
    settings = load_settings(home=plait_home, host="0.0.0.0", trusted_hosts="laptop.lan")
    cert, key = _tls(settings, no_tls=False)
    err = capsys.readouterr().err
    assert cert and key and "self-signed certificate (new)" in err and "SHA-256 fingerprint" in err
    assert (Path(key).stat().st_mode & 0o777) == 0o600
    assert _tls(settings, no_tls=False) == (cert, key) and "(kept)" in capsys.readouterr().err
    from cryptography import x509

    names = x509.load_pem_x509_certificate(Path(cert).read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert "laptop.lan" in names.get_values_for_type(x509.DNSName)
    assert _tls(settings, no_tls=True) == (None, None) and "without TLS" in capsys.readouterr().err


def test_the_owners_certificate_is_used_as_given(plait_home: Path, tmp_path: Path) -> None:
    made = self_signed(tmp_path / "own", ["localhost"])
    settings = load_settings(home=plait_home, host="0.0.0.0", tls_cert=str(made.cert), tls_key=str(made.key))
    assert _tls(settings, no_tls=False) == (str(made.cert), str(made.key))
    with pytest.raises(ConfigError, match="both"):
        _tls(load_settings(home=plait_home, tls_cert=str(made.cert)), no_tls=False)
    with pytest.raises(ConfigError, match="does not exist"):
        _tls(load_settings(home=plait_home, tls_cert="/nope.pem", tls_key=str(made.key)), no_tls=False)
    with pytest.raises(ConfigError, match="contradict"):
        _tls(settings, no_tls=True)


def test_a_tls_server_presents_the_certificate_whose_fingerprint_was_printed(tmp_path: Path) -> None:
    import uvicorn

    made = self_signed(tmp_path / "tls", machine_names())

    async def app(scope: dict, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"private"})  # type: ignore[operator]

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, ssl_certfile=str(made.cert),
                                           ssl_keyfile=str(made.key), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    try:
        trusting = ssl.create_default_context(cafile=str(made.cert))
        assert httpx.get(f"https://127.0.0.1:{port}/", verify=trusting).text == "private"
        with pytest.raises(httpx.ConnectError):  # not trusted by default: the fingerprint is how to check it
            httpx.get(f"https://127.0.0.1:{port}/")
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(f"http://127.0.0.1:{port}/")  # no clear-text answer on the TLS port
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", port)) as raw, context.wrap_socket(raw) as tls:
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        digest = hashlib.sha256(der).hexdigest().upper()
        assert made.fingerprint.replace(":", "") == digest
    finally:
        server.should_exit = True
        thread.join(timeout=20)
