"""Settings from the environment or a TOML file, for deployments with many terminals.

One :class:`Settings` per process, read with :meth:`Settings.load`; the command line
(``payfallback status``, ``payfallback reconcile``) and :meth:`Router.from_settings
<payfallback.Router.from_settings>` take it. The environment overrides the file, key by key:

====================================================  =========================================
``PAYFALLBACK_JOURNAL``                               ``journal``: ``sqlite:///path`` or
                                                      ``postgresql://…`` (the Router's default:
                                                      ``sqlite:///payfallback.sqlite3``)
``PAYFALLBACK_STATE_STORE``                           ``state_store``: ``redis://host:port/db
                                                      ?namespace=NAME`` or ``memory``
``PAYFALLBACK_PROVIDER_ORDER``                        ``provider_order``: names, comma-separated,
                                                      in failover order
``PAYFALLBACK_PROVIDERS__<NAME>__<SETTING>``          one setting of provider ``<name>``, e.g.
                                                      ``PAYFALLBACK_PROVIDERS__TOSSPAYMENTS__
                                                      SECRET_KEY``
``PAYFALLBACK_CONFIG`` (read by the command line)     the TOML file
====================================================  =========================================

The same in a TOML file (secrets are better kept in the environment)::

    journal = "postgresql://pos@db.internal:5432/shop?schema=payfallback"
    state_store = "redis://10.0.0.5:6379/0?namespace=shop-1"
    provider_order = ["tosspayments", "nicepay"]

    [providers.tosspayments]
    client_key = "live_ck_..."

    [providers.nicepay]
    client_key = "R2_..."

    [providers.backup]           # a table's name is the provider's entry-point name,
    adapter = "tosspayments"     # unless ``adapter`` names another

Every provider setting given as text is held as a :class:`~pydantic.SecretStr`: no repr,
log line or validation error shows it, and the adapter receives a ``SecretStr`` where its
constructor accepts one (its keys) and the text elsewhere (a ``client_key``, a ``base_url``;
``true``/``false`` for a ``bool``). Passwords in the journal and state store URLs are
masked in the repr too.
"""

from __future__ import annotations

import inspect
import os
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from payfallback.errors import ConfigurationError
from payfallback.provider import (
    ADAPTERS_URL,
    ENTRY_POINT_GROUP,
    Provider,
    load_provider,
    unknown_provider,
)

__all__ = ["ADAPTERS_URL", "ProviderSettings", "Settings", "redact_url", "unknown_provider"]


_TOML_FILE: ContextVar[Path | None] = ContextVar("payfallback_settings_toml", default=None)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def redact_url(url: str) -> str:
    """``url`` with the password of its user part masked, for messages and reprs."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, tail = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}{slash}{tail}"


class ProviderSettings(BaseModel):
    """One provider: the adapter's entry-point name and its constructor's settings.

    ``adapter`` defaults to the name the provider is listed under. Every other key is a
    keyword argument of the adapter; text values are kept as ``SecretStr``.
    """

    model_config = ConfigDict(extra="allow", frozen=True, hide_input_in_errors=True)

    adapter: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _hide_text(cls, data: object) -> object:
        if isinstance(data, Mapping):
            return {
                key: SecretStr(value) if isinstance(value, str) and key != "adapter" else value
                for key, value in data.items()
            }
        return data

    @property
    def options(self) -> dict[str, Any]:
        """The adapter's settings, as held (text as ``SecretStr``)."""
        return dict(self.model_extra or {})


class Settings(BaseSettings):
    """Where the journal and breaker state live, and the providers with their credentials."""

    model_config = SettingsConfigDict(
        env_prefix="PAYFALLBACK_",
        env_nested_delimiter="__",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )

    #: ``sqlite:///path`` or ``postgresql://…``; None: the Router's default.
    journal: str | None = None
    #: ``redis://host:port/db?namespace=NAME`` or ``memory``; None: in memory.
    state_store: str | None = None
    #: Provider names in failover order; empty: the order of ``providers``.
    provider_order: Annotated[list[str], NoDecode] = Field(default_factory=list)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)

    #: Names of the fields whose values are URLs that may carry a password.
    _URL_FIELDS: ClassVar[frozenset[str]] = frozenset({"journal", "state_store"})

    @field_validator("provider_order", mode="before")
    @classmethod
    def _split_order(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("providers", mode="before")
    @classmethod
    def _lower_names(cls, value: object) -> object:
        # Names from the environment arrive lowercased; a TOML file's keep their case.
        if isinstance(value, Mapping):
            return {str(name).lower(): options for name, options in value.items()}
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = _TOML_FILE.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)

    @classmethod
    def load(cls, toml_file: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
        """Read the environment, over ``toml_file`` if one is given; ``overrides`` win.

        Raises :class:`ConfigurationError` for a missing or unreadable file, or settings
        of the wrong shape (naming the setting, never its value).
        """
        path = None if toml_file is None else Path(toml_file)
        if path is not None:
            if not path.is_file():
                raise ConfigurationError(f"no settings file at {path}")
            try:
                with path.open("rb") as f:
                    tomllib.load(f)
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigurationError(f"settings file {path}: {exc}") from None
        token = _TOML_FILE.set(path)
        try:
            return cls(**overrides)
        except ValidationError as exc:
            raise ConfigurationError(_describe(exc, path)) from None
        finally:
            _TOML_FILE.reset(token)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            if name in self._URL_FIELDS and isinstance(value, str):
                yield name, redact_url(value)
            else:
                yield name, value

    def ordered_providers(self) -> list[tuple[str, ProviderSettings]]:
        """``(name, settings)`` in failover order: ``provider_order`` first, then the rest."""
        unknown = [name for name in self.provider_order if name not in self.providers]
        if unknown:
            raise ConfigurationError(
                f"provider_order names {', '.join(unknown)}, which have no settings "
                f"(configured: {', '.join(self.providers) or 'none'})"
            )
        names = [*self.provider_order, *(n for n in self.providers if n not in self.provider_order)]
        return [(name, self.providers[name]) for name in names]

    def build_providers(self) -> list[Provider]:
        """Build every configured provider through :func:`payfallback.load_provider`."""
        return [build_provider(name, options) for name, options in self.ordered_providers()]


def build_provider(name: str, settings: ProviderSettings) -> Provider:
    """One provider from its settings: each value converted to what its adapter takes."""
    adapter = settings.adapter or name
    matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == adapter]
    if not matches:
        raise unknown_provider(adapter)
    factory = matches[0].load()
    kwargs = {
        key: _convert(adapter, key, value, _annotation(factory, key))
        for key, value in settings.options.items()
    }
    return load_provider(adapter, **kwargs)


def _annotation(factory: Callable[..., Any], key: str) -> str:
    try:
        parameter = inspect.signature(factory).parameters.get(key)
    except (TypeError, ValueError):  # pragma: no cover - a factory without a signature
        return ""
    if parameter is None or parameter.annotation is inspect.Parameter.empty:
        return ""
    annotation = parameter.annotation
    if isinstance(annotation, str):
        return annotation
    return getattr(annotation, "__name__", None) or str(annotation)


def _convert(provider: str, key: str, value: Any, annotation: str) -> Any:
    if not isinstance(value, SecretStr) or "SecretStr" in annotation:
        return value
    text = value.get_secret_value()
    kind = annotation.replace(" ", "")
    if kind in ("bool", "bool|None"):
        if text.strip().lower() in _TRUE:
            return True
        if text.strip().lower() in _FALSE:
            return False
        raise ConfigurationError(
            f"provider {provider!r}: {key} takes true or false", provider=provider
        )
    if kind in ("int", "int|None", "float", "float|None"):
        try:
            return int(text) if kind.startswith("int") else float(text)
        except ValueError:
            raise ConfigurationError(
                f"provider {provider!r}: {key} takes a number", provider=provider
            ) from None
    return text


def _describe(exc: ValidationError, path: Path | None) -> str:
    """Which settings are wrong and why, without their values."""
    where = f" (environment and {path})" if path is not None else " (environment)"
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'settings'}: {error['msg']}"
        for error in exc.errors(include_input=False, include_url=False)
    )
    return f"invalid payfallback settings{where}: {problems}"
