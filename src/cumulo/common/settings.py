"""The one typed settings object.

Sources, lowest priority first: built-in defaults (good for a single box), the TOML file named
by ``CUMULO_CONFIG`` (or ``/etc/cumulo/cumulo.toml`` when it exists), then ``CUMULO_*``
environment variables with ``__`` between nested names (``CUMULO_API__PORT=8081``).
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_FILE = Path("/etc/cumulo/cumulo.toml")


def _default_data_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/cumulo")
    return Path.home() / ".local" / "share" / "cumulo"


class DatabaseSettings(BaseModel):
    # Empty means the embedded SQLite database under the data directory.
    url: str = ""
    pool_size: int = Field(default=10, ge=1)
    echo: bool = False


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # The unauthenticated admin port CloudStack calls integration.api.port: 0 keeps it off.
    integration_port: int = Field(default=0, ge=0, le=65535)
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    # Seconds a session lives without use, as CloudStack's session.timeout.
    session_timeout: int = Field(default=1800, ge=60)
    # How long a resolved API key stays cached in one server before it is looked up again.
    key_cache_seconds: float = Field(default=2.0, ge=0)
    # Uvicorn worker processes; 1 keeps the single box small.
    workers: int = Field(default=1, ge=1)


class JobSettings(BaseModel):
    """Leases must outlive several heartbeats, or healthy jobs would be taken over."""

    workers: int = Field(default=4, ge=0)
    lease_seconds: float = Field(default=30.0, gt=0)
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    poll_seconds: float = Field(default=0.2, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    # Testing only: each job sleeps this long before it runs, so tests can catch jobs in flight.
    inject_delay_seconds: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _lease_outlives_heartbeats(self) -> JobSettings:
        if self.lease_seconds < 2 * self.heartbeat_seconds:
            raise ValueError(
                f"jobs.lease_seconds ({self.lease_seconds}) must be at least twice "
                f"jobs.heartbeat_seconds ({self.heartbeat_seconds})"
            )
        return self


class S3Settings(BaseModel):
    """The S3 service (``cumulo s3``). 7480 is radosgw's port; clear of the API's 8080."""

    host: str = "127.0.0.1"
    port: int = Field(default=7480, ge=0, le=65535)
    # Empty means SQLite at <data_dir>/s3meta.db; a farm points every s3 process at PostgreSQL.
    meta_url: str = ""
    # Empty means <data_dir>/blobs.
    blob_dir: str = ""
    region: str = "us-east-1"
    # Host names under which <bucket>.<domain> is virtual-host-style addressing.
    domains: list[str] = Field(default_factory=lambda: ["localhost"])
    max_skew_seconds: int = Field(default=900, ge=1)
    # Dead blobs are kept this long so a reader mid-stream never loses its bytes.
    gc_leeway_seconds: float = Field(default=3600.0, ge=0)
    gc_interval_seconds: float = Field(default=60.0, gt=0)
    # Access counts gather in memory and are added to the database this often.
    usage_flush_seconds: float = Field(default=10.0, gt=0)
    # How often lifecycle rules are applied, and how long a lifecycle "day" is (tests shrink it).
    lifecycle_interval_seconds: float = Field(default=600.0, gt=0)
    lifecycle_day_seconds: float = Field(default=86400.0, gt=0)
    # The address clients (and the dashboard's object browser) reach the service at; empty
    # means http://<host>:<port>.
    public_url: str = ""
    # Browser origins that may call the service directly (the dashboard); empty means the
    # management server's own address, http://<api.host>:<api.port>.
    console_origins: list[str] = Field(default_factory=list)


class AgentSettings(BaseModel):
    """``cumulo agent`` on a hypervisor host; its command-line options override these."""

    # The management server to dial (http://host:port); empty: this box's own API address.
    server: str = ""
    # The host's token (from addHost); empty: <state_dir>/agent-token.
    token_file: str = ""
    driver: Literal["qemu", "sim"] = "qemu"
    # VM runtime files and the driver's state; empty: <data_dir>/agent.
    state_dir: str = ""
    # How often the driver is asked for VM power states (changes are reported at once).
    poll_seconds: float = Field(default=2.0, gt=0)


class LogSettings(BaseModel):
    level: str = "INFO"
    format: Literal["json", "kv"] = "json"
    file: str = ""


class BoxSettings(BaseModel):
    """What ``cumulo up`` runs next to the management server on a single box."""

    s3: bool = True  # the S3 service
    vms: bool = True  # a local KVM host (agent + QEMU) and the tiny template, when QEMU exists
    debian: bool = True  # also build and register the Debian cloud image (minutes, in the
    # background: the box is usable before it is ready)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CUMULO_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    data_dir: Path = Field(default_factory=_default_data_dir)
    database: DatabaseSettings = DatabaseSettings()
    api: ApiSettings = ApiSettings()
    jobs: JobSettings = JobSettings()
    s3: S3Settings = S3Settings()
    agent: AgentSettings = AgentSettings()
    box: BoxSettings = BoxSettings()
    log: LogSettings = LogSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file())
        return (init_settings, env_settings, toml)

    @cached_property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.data_dir / 'cumulo.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def s3_meta_url(self) -> str:
        return self.s3.meta_url or f"sqlite:///{self.data_dir / 's3meta.db'}"

    @property
    def s3_blob_dir(self) -> Path:
        return Path(self.s3.blob_dir) if self.s3.blob_dir else self.data_dir / "blobs"

    @property
    def s3_public_url(self) -> str:
        return self.s3.public_url or f"http://{self.s3.host}:{self.s3.port}"

    @property
    def s3_console_origins(self) -> list[str]:
        """Who may call S3 from a browser page: the dashboard, served by the API server."""
        return self.s3.console_origins or [f"http://{self.api.host}:{self.api.port}"]

    @property
    def admin_password_file(self) -> Path:
        return self.data_dir / "admin-password"

    @property
    def master_key_file(self) -> Path:
        return self.data_dir / "master.key"


def ensure_data_dir(settings: Settings) -> Path:
    """Create the data directory private to its owner: it holds the database, the master key
    and the admin's credentials."""
    path = settings.data_dir
    if not path.exists():
        path.mkdir(parents=True)
        path.chmod(0o700)
    return path


def config_file() -> Path | None:
    named = os.environ.get("CUMULO_CONFIG")
    if named:
        return Path(named)
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.exists() else None


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
