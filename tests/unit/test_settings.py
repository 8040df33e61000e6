"""The settings object: defaults for a single box, a TOML file, environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from cumulo.common.settings import load_settings


def test_defaults_bind_loopback_and_keep_integration_port_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CUMULO_CONFIG", str(tmp_path / "absent.toml"))
    settings = load_settings(data_dir=tmp_path)
    assert settings.api.host == "127.0.0.1"
    assert settings.api.port == 8080
    assert settings.api.integration_port == 0
    assert settings.database_url == f"sqlite:///{tmp_path / 'cumulo.db'}"


def test_toml_file_then_environment_override(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = tmp_path / "cumulo.toml"
    cfg.write_text(
        f'data_dir = "{tmp_path}"\n[api]\nport = 9000\nhost = "127.0.0.2"\n[jobs]\nworkers = 7\n'
    )
    monkeypatch.setenv("CUMULO_CONFIG", str(cfg))
    monkeypatch.setenv("CUMULO_API__PORT", "9100")
    settings = load_settings()
    assert settings.api.port == 9100  # the environment wins over the file
    assert settings.api.host == "127.0.0.2"  # the file wins over the default
    assert settings.jobs.workers == 7
    assert settings.data_dir == tmp_path


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CUMULO_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("CUMULO_API__PORT", "70000")
    with pytest.raises(ValidationError):
        load_settings()


def test_job_lease_must_outlive_heartbeats(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CUMULO_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("CUMULO_JOBS__LEASE_SECONDS", "5")
    monkeypatch.setenv("CUMULO_JOBS__HEARTBEAT_SECONDS", "5")
    with pytest.raises(ValidationError, match="lease_seconds"):
        load_settings()
