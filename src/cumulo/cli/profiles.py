"""Named connection profiles for the ``cumulo`` client commands, as CloudMonkey keeps them.

One ini file, ``~/.config/cumulo/config`` (``$CUMULO_CONFIG_DIR`` or ``$XDG_CONFIG_HOME``
move it), holds ``[core] profile = <name>`` and a ``[profile <name>]`` section per cloud:
``url``, then either ``apikey``/``secretkey`` or ``username``/``password``/``domain``, and
optional ``output`` and ``timeout``. The file and everything beside it (the API cache, the
saved session) are 0600 in a 0700 directory because they hold secrets; nothing here ever
prints a secret.

Environment overrides win over the file, so scripts need no file at all:
``CUMULO_PROFILE``, ``CUMULO_ENDPOINT``, ``CUMULO_APIKEY``, ``CUMULO_SECRETKEY``,
``CUMULO_USERNAME``, ``CUMULO_PASSWORD``, ``CUMULO_DOMAIN``. With no profile at all, the
credentials ``cs`` would use (``CLOUDSTACK_*`` or the box's ``admin.ini``) are the profile
``local``, so ``cumulo up`` users can type ``cumulo list zones`` at once.
"""

from __future__ import annotations

import configparser
import io
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

from cumulo.cli.client import Credentials, load_credentials, write_private

SECRET_FIELDS = frozenset({"secretkey", "password"})
OUTPUTS = ("table", "json", "csv", "text", "yaml")
_ENV = {
    "url": "CUMULO_ENDPOINT",
    "apikey": "CUMULO_APIKEY",
    "secretkey": "CUMULO_SECRETKEY",
    "username": "CUMULO_USERNAME",
    "password": "CUMULO_PASSWORD",
    "domain": "CUMULO_DOMAIN",
}


class ProfileError(Exception):
    """A profile is missing or incomplete; the text says how to fix it."""


@dataclass(frozen=True)
class Profile:
    name: str
    url: str = ""
    apikey: str = ""
    secretkey: str = ""
    username: str = ""
    password: str = ""
    domain: str = "/"
    output: str = "table"
    timeout: str = "3600"

    def credentials(self) -> Credentials:
        if not self.url:
            raise ProfileError(f"profile {self.name!r} has no url")
        if not (self.apikey and self.secretkey) and not (self.username and self.password):
            raise ProfileError(
                f"profile {self.name!r} needs apikey and secretkey, or username and password"
            )
        return Credentials(
            self.url, self.apikey, self.secretkey, self.username, self.password, self.domain
        )

    def shown(self) -> dict[str, str]:
        """The profile as ``profile list`` prints it: secrets masked."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = str(getattr(self, f.name))
            out[f.name] = "********" if f.name in SECRET_FIELDS and value else value
        return out


def config_dir() -> Path:
    if os.environ.get("CUMULO_CONFIG_DIR"):
        return Path(os.environ["CUMULO_CONFIG_DIR"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "cumulo"


def profile_file(profile: str, suffix: str) -> Path:
    """Where a profile's cache (``apis.json``) or saved session (``session``) lives."""
    return config_dir() / "profiles" / f"{profile}.{suffix}"


@dataclass
class Config:
    current: str
    profiles: dict[str, Profile]


def load_config() -> Config:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(config_dir() / "config")
    profiles: dict[str, Profile] = {}
    known = {f.name for f in fields(Profile)} - {"name"}
    for section in parser.sections():
        if section.startswith("profile "):
            name = section.removeprefix("profile ").strip()
            values = {k: v for k, v in parser[section].items() if k in known}
            profiles[name] = Profile(name=name, **values)
    current = parser.get("core", "profile", fallback="") if parser.has_section("core") else ""
    return Config(current=current, profiles=profiles)


def save_config(config: Config) -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser["core"] = {"profile": config.current}
    for name, profile in sorted(config.profiles.items()):
        parser[f"profile {name}"] = {
            f.name: str(getattr(profile, f.name)) for f in fields(profile) if f.name != "name"
        }
    text = io.StringIO()
    parser.write(text)
    write_private(config_dir() / "config", text.getvalue())


def active_profile(name: str | None = None) -> Profile:
    """The profile to use: ``--profile``, ``$CUMULO_PROFILE``, the file's current, ``local``."""
    config = load_config()
    chosen = name or os.environ.get("CUMULO_PROFILE") or config.current
    if chosen:
        if chosen not in config.profiles:
            raise ProfileError(f"no profile {chosen!r}; see `cumulo profile list`")
        profile = config.profiles[chosen]
    elif config.profiles:
        profile = config.profiles[sorted(config.profiles)[0]]
    else:
        profile = _local_profile()
    overrides = {k: os.environ[env] for k, env in _ENV.items() if os.environ.get(env)}
    return replace(profile, **overrides)


def _local_profile() -> Profile:
    """Without any profile: the credentials ``cs`` would use, when there are some."""
    if os.environ.get("CUMULO_ENDPOINT"):
        return Profile(name="local")
    try:
        creds = load_credentials()
    except (FileNotFoundError, KeyError, PermissionError):
        return Profile(name="local")
    return Profile(name="local", url=creds.endpoint, apikey=creds.key, secretkey=creds.secret)


def add_profile(name: str, values: dict[str, str], *, make_current: bool) -> Profile:
    """Create or update a profile; the first one becomes current."""
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ProfileError(f"bad profile name {name!r}: letters, digits, - and _ only")
    known = {f.name for f in fields(Profile)} - {"name"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ProfileError(f"unknown profile setting(s): {', '.join(unknown)}")
    if values.get("output", "table") not in OUTPUTS:
        raise ProfileError(f"output must be one of {', '.join(OUTPUTS)}")
    config = load_config()
    profile = replace(config.profiles.get(name, Profile(name=name)), **values)
    profile.credentials()  # refuse an unusable profile before writing it
    config.profiles[name] = profile
    if make_current or not config.current:
        config.current = name
    save_config(config)
    return profile


def use_profile(name: str) -> None:
    config = load_config()
    if name not in config.profiles:
        raise ProfileError(f"no profile {name!r}; see `cumulo profile list`")
    config.current = name
    save_config(config)


def remove_profile(name: str) -> None:
    config = load_config()
    if config.profiles.pop(name, None) is None:
        raise ProfileError(f"no profile {name!r}")
    if config.current == name:
        config.current = sorted(config.profiles)[0] if config.profiles else ""
    save_config(config)
    for suffix in ("apis.json", "session"):
        profile_file(name, suffix).unlink(missing_ok=True)
