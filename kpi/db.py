"""Database engines for the source and the state, configured the same way on every dialect.

Disconnects: no ``pool_pre_ping`` (a round trip before every question). A pooled connection is recycled after
RECYCLE_SECONDS, and at checkout a connection whose server closed it (a restart, ``pg_terminate_backend``, an
idle timeout: the server sends its goodbye and closes the socket) is seen without a round trip: its socket is
readable while an idle live connection's is not. The pool then replaces it (SQLAlchemy's ``DisconnectionError``
at checkout: the pool connects again), so the next question does not fail; a disconnect in the middle of a
statement invalidates the pool (SQLAlchemy's optimistic handling) and that one question fails.

DuckDB files and ClickHouse follow kpi.db_writing (one writer, readers never blocked; nothing half-written).
"""

from __future__ import annotations

import os
import select

from sqlalchemy import create_engine, event, exc, make_url
from sqlalchemy.engine import Engine

from kpi import db_clickhouse, db_duckdb, db_writing

RECYCLE_SECONDS = 1800  # a pooled connection is replaced after half an hour (servers and proxies drop idle ones)


def sqlite_path(url: str) -> str | None:
    """The file behind a SQLite URL; None for in-memory databases and ``file:`` URIs."""
    database = make_url(url).database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


def create_private(path: str) -> None:
    """Create ``path`` empty and owner-only (0600) unless it exists; SQLite then opens it as a new database
    and creates its ``-wal`` and ``-shm`` files with the same mode. ``O_EXCL`` makes this safe when
    several threads or processes get there at once (the losers find the file made), and no umask is
    touched (it is process-wide)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _private_companions(path: str) -> None:
    """The ``-wal``/``-shm`` files of a database created owner-only stay owner-only (SQLite gives them the
    database's mode; this also closes a gap left by files made before the database was)."""
    try:
        if os.stat(path).st_mode & 0o077:
            return  # a database the operator opened to others on purpose: its companions follow SQLite's rule
    except OSError:
        return
    for suffix in ("-wal", "-shm"):
        try:
            if os.stat(path + suffix).st_mode & 0o077:
                os.chmod(path + suffix, 0o600)
        except OSError:
            pass


def open_to_others(url: str) -> list[str]:
    """The files of a SQLite database at ``url`` (with its ``-wal``/``-shm``) that others may read: the
    state database holds OAuth tokens (files this version creates are 0600; older ones may be 0644)."""
    path = sqlite_path(url) if url.startswith("sqlite") else None
    found = []
    for name in ([path, path + "-wal", path + "-shm"] if path else []):
        try:
            if os.stat(name).st_mode & 0o077:
                found.append(name)
        except OSError:
            continue
    return found


def make_engine(url: str, **kwargs) -> Engine:
    """An engine for ``url``. SQLite gets WAL, a busy timeout and foreign keys, so that a web process
    and a worker can share the embedded default file; a new database file (and so its WAL and shared-memory
    files) is created owner-only: the state database holds OAuth tokens."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {}).setdefault("timeout", 30)
        path = sqlite_path(url)
        if path is not None and os.path.isdir(os.path.dirname(os.path.abspath(path))):
            create_private(path)
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            if url not in ("sqlite://", "sqlite:///:memory:"):
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
            if path is not None:
                _private_companions(path)

        return engine
    if url.startswith("duckdb"):
        db_duckdb.register()
        return db_writing.duckdb_engine(url, **kwargs)
    if url.startswith("chdb"):
        return db_clickhouse.chdb_engine(url, **kwargs)
    if url.startswith("clickhouse"):  # a ClickHouse server (clickhouse-connect): standard NULLs, as on chdb
        for name, value in db_clickhouse.SESSION_SETTINGS.items():
            kwargs.setdefault("connect_args", {}).setdefault(name, value)
    kwargs.setdefault("pool_recycle", RECYCLE_SECONDS)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "checkout", _closed_by_server)
    return engine


def _closed_by_server(dbapi_conn, _record, _proxy) -> None:
    """A pooled connection the server has closed is replaced before use (no round trip: a ``poll`` of its
    socket: readable only when the server said goodbye or closed it; nothing else arrives unasked on an idle
    connection of ours, which never LISTENs)."""
    fileno = getattr(getattr(dbapi_conn, "driver_connection", dbapi_conn), "fileno", None)
    if fileno is None:
        return
    try:
        poller = select.poll()  # not select.select: a descriptor above 1023 is fine
        poller.register(fileno(), select.POLLIN | select.POLLPRI)
        events = poller.poll(0)
    except Exception:  # noqa: BLE001 - a closed connection has no socket any more
        raise exc.DisconnectionError("connection closed") from None
    if events:
        raise exc.DisconnectionError("the server closed this connection")


_engines: dict[str, Engine] = {}


def cached_engine(url: str) -> Engine:
    """One engine (one pool) per URL per process."""
    if url not in _engines:
        _engines[url] = make_engine(url)
    return _engines[url]


def dispose_cached_engines() -> None:
    """Close every cached pool (tests, and processes that fork)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
