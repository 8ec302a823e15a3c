"""Slack installations on the state database, with their tokens encrypted at rest.

``EncryptedInstallationStore`` is slack-sdk's ``SQLAlchemyInstallationStore`` (tables ``slack_installations``
and ``slack_bots``) whose bot and user tokens (and refresh tokens) are written as Fernet tokens
(``cryptography``) under the key in ``KPIBOT_TOKEN_KEY``, and decrypted when read. Generate a key with::

    python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"

Several workspaces (OAuth) need the key: the app refuses to start without it (``token_cipher``).
Rows written before encryption hold plaintext: a value that is not a Fernet token under the key is read
as it is, and written encrypted the next time the installation is saved; ``kpibot db upgrade`` also
encrypts every plaintext token it finds (``encrypt_plaintext_tokens``).

The OAuth states (``slack_oauth_states``) a visitor leaves when an install is abandoned are deleted once
expired (``purge_expired_states``: on every install page and every worker tick).
"""

from __future__ import annotations

import copy
import logging
import os
from datetime import UTC, datetime

from cryptography.fernet import Fernet, InvalidToken
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import MetaData, delete, inspect, select, text, update
from sqlalchemy.engine import Engine

from kpi.errors import KpiError
from kpi.i18n import N_

log = logging.getLogger("kpibot.installations")

KEY_ENV = "KPIBOT_TOKEN_KEY"
GENERATE = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
TOKEN_FIELDS = ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token")
BOT_FIELDS = ("bot_token", "bot_refresh_token")
STATE_SECONDS = 600  # an OAuth state is good for ten minutes


def token_cipher(environ: dict[str, str] | None = None) -> Fernet:
    """The Fernet cipher of ``KPIBOT_TOKEN_KEY``; a one-line ``KpiError`` when it is missing or malformed."""
    env = os.environ if environ is None else environ
    key = (env.get(KEY_ENV) or "").strip()
    if not key:
        raise KpiError(N_("KPIBOT_TOKEN_KEY is not set: several workspaces (SLACK_CLIENT_ID) keep their tokens "
                          "encrypted with it; generate one with {command}"), command=GENERATE)
    try:
        return Fernet(key.encode())
    except (ValueError, TypeError):
        raise KpiError(N_("KPIBOT_TOKEN_KEY is not a Fernet key (32 url-safe base64-encoded bytes); generate one "
                          "with {command}"), command=GENERATE) from None


class EncryptedInstallationStore(SQLAlchemyInstallationStore):
    """slack-sdk's SQLAlchemy store, tokens encrypted on write and decrypted on read."""

    def __init__(self, client_id: str, engine: Engine, cipher: Fernet | None, **kwargs):
        super().__init__(client_id=client_id, engine=engine, **kwargs)
        self.cipher = cipher

    # -- the cipher ---------------------------------------------------------------------------------
    def _fernet(self) -> Fernet:
        if self.cipher is None:
            raise KpiError(N_("KPIBOT_TOKEN_KEY is not set: several workspaces (SLACK_CLIENT_ID) keep their tokens "
                              "encrypted with it; generate one with {command}"), command=GENERATE)
        return self.cipher

    def is_encrypted(self, value: str | None) -> bool:
        if not value:
            return False
        try:
            self._fernet().decrypt(value.encode())
        except (InvalidToken, ValueError):
            return False
        return True

    def encrypt(self, value: str | None) -> str | None:
        if not value or self.is_encrypted(value):
            return value
        return self._fernet().encrypt(value.encode()).decode()

    def decrypt(self, value: str | None) -> str | None:
        """A Fernet token under the key, decrypted; anything else (a row written before encryption) as it is."""
        if not value:
            return value
        try:
            return self._fernet().decrypt(value.encode()).decode()
        except (InvalidToken, ValueError):
            return value

    def _sealed(self, entity, fields):
        sealed = copy.copy(entity)
        for name in fields:
            if hasattr(sealed, name):
                setattr(sealed, name, self.encrypt(getattr(sealed, name)))
        return sealed

    def _opened(self, entity, fields):
        if entity is not None:
            for name in fields:
                if hasattr(entity, name):
                    setattr(entity, name, self.decrypt(getattr(entity, name)))
        return entity

    # -- slack-sdk's store --------------------------------------------------------------------------
    def save(self, installation: Installation):
        super().save(self._sealed(installation, TOKEN_FIELDS))  # calls save_bot, which leaves sealed values be
        from kpi.state.lifecycle import resume_team

        if installation.team_id and installation.bot_token:  # installed again: its schedules and rules resume
            resume_team(self.engine, installation.team_id)

    def save_bot(self, bot: Bot):
        super().save_bot(self._sealed(bot, BOT_FIELDS))

    def build_installation_entity(self, row) -> Installation:  # called as self.build_...: decrypt what is read
        return self._opened(SQLAlchemyInstallationStore.build_installation_entity(row), TOKEN_FIELDS)

    def build_bot_entity(self, row) -> Bot:
        return self._opened(SQLAlchemyInstallationStore.build_bot_entity(row), BOT_FIELDS)

    def delete_team(self, team_id: str, enterprise_id: str | None = None) -> None:
        """Every installation and bot token of the team (``app_uninstalled``)."""
        self.delete_all(enterprise_id=enterprise_id, team_id=team_id)

    # -- maintenance --------------------------------------------------------------------------------
    def encrypt_plaintext_tokens(self) -> int:
        """Encrypt every token still stored in plaintext (rows written before encryption); returns how many."""
        done = 0
        with self.engine.begin() as conn:
            for table, fields in ((self.installations, TOKEN_FIELDS), (self.bots, BOT_FIELDS)):
                for row in conn.execute(select(table)).mappings():
                    values = {f: self.encrypt(row[f]) for f in fields if row[f] and not self.is_encrypted(row[f])}
                    if values:
                        conn.execute(update(table).where(table.c.id == row["id"]).values(**values))
                        done += len(values)
        return done

    def widen_token_columns(self) -> None:
        """slack-sdk sizes token columns for plaintext (200); a Fernet token of a long token needs more.
        PostgreSQL enforces the size (SQLite does not): widen them there, once."""
        if self.engine.dialect.name != "postgresql":
            return
        with self.engine.begin() as conn:
            for table, fields in ((self.installations, TOKEN_FIELDS), (self.bots, BOT_FIELDS)):
                columns = {c["name"]: c for c in inspect(conn).get_columns(table.name)}
                for name in fields:
                    length = getattr(columns.get(name, {}).get("type"), "length", None)
                    if length is not None and length < 1000:
                        conn.execute(text(f'ALTER TABLE {table.name} ALTER COLUMN "{name}" TYPE VARCHAR(1000)'))


class PurgingOAuthStateStore(SQLAlchemyOAuthStateStore):
    """slack-sdk's OAuth state store that deletes the expired states each time it issues a new one."""

    def issue(self, *args, **kwargs) -> str:
        try:
            purge_expired_states(self.engine)
        except Exception:  # noqa: BLE001 - a failed clean-up must never stop an install
            log.exception("expired OAuth states not purged")
        return super().issue(*args, **kwargs)


def purge_expired_states(engine: Engine, *, now: datetime | None = None) -> int:
    """Delete the OAuth states whose expiration has passed (abandoned installs); returns how many."""
    table = SQLAlchemyOAuthStateStore.build_oauth_states_table(MetaData(), "slack_oauth_states")
    if not inspect(engine).has_table(table.name):
        return 0
    stamp = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        return conn.execute(delete(table).where(table.c.expire_at < stamp)).rowcount


def build_stores(client_id: str, engine: Engine, *, multi_workspace: bool, environ: dict[str, str] | None = None):
    """The installation and OAuth state stores. Several workspaces need ``KPIBOT_TOKEN_KEY`` (refused
    without it); one workspace never stores a token, so the tables can be made without the key."""
    cipher = token_cipher(environ) if multi_workspace else _optional_cipher(environ)
    return (EncryptedInstallationStore(client_id=client_id, engine=engine, cipher=cipher),
            PurgingOAuthStateStore(expiration_seconds=STATE_SECONDS, engine=engine))


def _optional_cipher(environ: dict[str, str] | None) -> Fernet | None:
    env = os.environ if environ is None else environ
    return token_cipher(env) if (env.get(KEY_ENV) or "").strip() else None


__all__ = ["EncryptedInstallationStore", "PurgingOAuthStateStore", "build_stores", "purge_expired_states",
           "token_cipher", "KEY_ENV", "GENERATE"]
