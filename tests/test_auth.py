"""collab/auth.py: token verification (algorithms fixed by configuration), claims,
permission patterns, and the settings that turn auth on."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from collab.auth import (
    AuthError,
    Principal,
    Verifier,
    development_principal,
    issue_token,
    parse_ttl,
)
from collab.config import ConfigError, Settings, security_warnings

SECRET = "test-secret-that-is-long-enough-for-hs256"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hand_signed(header: dict, claims: dict, key: bytes | None) -> str:
    """A JWT built by hand, as an attacker would: HMAC-SHA256 with `key`, or unsigned."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = b"" if key is None else hmac.new(key, signing_input.encode(),
                                                 hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _claims(**extra) -> dict:
    return {"sub": "alice", "exp": int(time.time()) + 600, **extra}


def _rsa_pair() -> tuple[rsa.RSAPrivateKey, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public_pem


def test_issued_token_verifies_with_its_permissions():
    token = issue_token(SECRET, "alice", docs=["notes-*"], rooms=["lobby"], read_only=True,
                        ttl=3600)
    principal = Verifier(secret=SECRET).verify(token)
    assert principal.user == "alice"
    assert principal.can_read("docs", "notes-1") and not principal.can_write("docs", "notes-1")
    assert principal.can_read("rooms", "lobby") and not principal.can_read("rooms", "lobby2")
    assert not principal.can_read("docs", "secret")
    assert principal.expires_at == pytest.approx(time.time() + 3600, abs=5)


def test_longest_matching_pattern_wins_and_no_match_is_no_access():
    principal = Principal("bob", {"docs": {"*": "r", "team/*": "rw", "team/locked-*": "r"}})
    assert principal.access("docs", "anything") == "r"
    assert principal.can_write("docs", "team/plan")
    assert not principal.can_write("docs", "team/locked-budget")
    assert principal.can_read("docs", "team/locked-budget")
    assert principal.access("rooms", "lobby") is None
    assert not principal.can_read("actors", "counter/c1")


def test_development_principal_may_do_everything():
    anyone = development_principal()
    assert anyone.can_write("docs", "x") and anyone.can_write("rooms", "y")
    assert anyone.can_write("actors", "counter/z")


def test_alg_none_is_refused():
    token = _hand_signed({"alg": "none", "typ": "JWT"}, _claims(docs={"*": "rw"}), None)
    with pytest.raises(AuthError, match="algorithm 'none' is not accepted"):
        Verifier(secret=SECRET).verify(token)


def test_hs256_signed_with_the_rsa_public_key_is_refused():
    """The classic confusion: the attacker knows the public key and uses it as an
    HMAC secret. The server only accepts RS256 with that key."""
    _, public_pem = _rsa_pair()
    forged = _hand_signed({"alg": "HS256", "typ": "JWT"}, _claims(docs={"*": "rw"}),
                          public_pem.encode())
    with pytest.raises(AuthError, match="algorithm 'HS256' is not accepted"):
        Verifier(public_key=public_pem).verify(forged)


def test_rs256_token_against_a_secret_only_server_is_refused():
    private, _ = _rsa_pair()
    token = jwt.encode(_claims(), private, algorithm="RS256")
    with pytest.raises(AuthError, match="'RS256' is not accepted"):
        Verifier(secret=SECRET).verify(token)


def test_rs256_and_es256_with_a_public_key_as_pem_or_path(tmp_path):
    private, public_pem = _rsa_pair()
    assert Verifier(public_key=public_pem).verify(
        jwt.encode(_claims(), private, algorithm="RS256")).user == "alice"
    ec_private = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "ec.pem"
    path.write_bytes(ec_private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    verifier = Verifier(public_key=str(path))
    assert verifier.algorithms == ("ES256",)
    assert verifier.verify(jwt.encode(_claims(), ec_private, algorithm="ES256")).user == "alice"


def test_expired_bad_signature_missing_exp_and_malformed_are_refused():
    verifier = Verifier(secret=SECRET)
    expired = jwt.encode({"sub": "a", "exp": int(time.time()) - 60}, SECRET, algorithm="HS256")
    with pytest.raises(AuthError, match="token expired"):
        verifier.verify(expired)
    with pytest.raises(AuthError, match="bad signature"):
        verifier.verify(jwt.encode(_claims(), "another-secret-of-enough-length-123",
                                   algorithm="HS256"))
    with pytest.raises(AuthError, match="'exp'"):
        verifier.verify(jwt.encode({"sub": "a"}, SECRET, algorithm="HS256"))
    with pytest.raises(AuthError, match="malformed"):
        verifier.verify("not-a-token")
    with pytest.raises(AuthError, match="'docs' must map"):
        verifier.verify(jwt.encode(_claims(docs={"*": "write"}), SECRET, algorithm="HS256"))


def test_parse_ttl():
    assert parse_ttl("30m") == 1800
    assert parse_ttl("1h") == 3600
    assert parse_ttl("2d") == 172800
    for bad in ("", "1", "1w", "-1h", "0m", "h"):
        with pytest.raises(ValueError):
            parse_ttl(bad)


def test_settings_for_auth_and_origins(tmp_path):
    assert not Settings.from_env({}).auth_enabled
    assert Settings.from_env({"COLLAB_SECRET": "s"}).auth_enabled
    assert "hidden-value" not in repr(Settings.from_env({"COLLAB_SECRET": "hidden-value"}))
    origins = Settings.from_env({"COLLAB_ALLOWED_ORIGINS": "https://a.example/, http://b:8080"})
    assert origins.allowed_origins == ("https://a.example", "http://b:8080")
    with pytest.raises(ConfigError, match="COLLAB_JWT_PUBLIC_KEY"):
        Settings.from_env({"COLLAB_JWT_PUBLIC_KEY": str(tmp_path / "missing.pem")})
    assert security_warnings(Settings.from_env({"COLLAB_SECRET": SECRET})) == []
    [short] = security_warnings(Settings.from_env({"COLLAB_SECRET": "s"}))
    assert "COLLAB_SECRET is 1 bytes" in short
    [warning] = security_warnings(Settings.from_env({}))
    assert "AUTHENTICATION IS OFF" in warning
