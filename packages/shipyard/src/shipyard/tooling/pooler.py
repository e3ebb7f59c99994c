"""Is a PostgreSQL URL a transaction-mode pooler? Workers need a session (``LISTEN``).

Supabase offers three ways in: the direct connection (``db.<ref>.supabase.co:5432``), the
session-mode pooler (``…pooler.supabase.com:5432``) and the transaction-mode pooler (port
``6543``). A transaction pooler hands each transaction to any server connection, so a worker's
``LISTEN shipyard_ready`` is lost: workers then only notice new runs at the backup poll
(``SHIPYARD_POLL_INTERVAL``, slower wake-ups), and session state such as prepared statements
and the ``search_path`` each engine connection sets to its schema is not kept between
statements. :func:`transaction_pooler_warning` spots such a URL so a
process can say so once at start.

Example::

    transaction_pooler_warning("postgresql://u:p@aws-0-eu.pooler.supabase.com:6543/postgres")
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

TRANSACTION_POOLER_PORT = 6543


def transaction_pooler_warning(url: str) -> str | None:
    """One sentence when ``url`` looks like a transaction-mode pooler, else None.

    Never includes the URL's password (only host and port are named).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("postgres", "postgresql"):
        return None
    host = (parts.hostname or "").lower()
    query = parse_qs(parts.query)
    pgbouncer = query.get("pgbouncer", [""])[0].lower() in ("1", "true", "yes")
    if port != TRANSACTION_POOLER_PORT and not pgbouncer:
        return None
    what = (
        "Supabase's transaction-mode pooler"
        if host.endswith("pooler.supabase.com")
        else ("a transaction-mode pooler (pgbouncer)" if pgbouncer else "a transaction-mode pooler")
    )
    return (
        f"SHIPYARD_DATABASE_URL ({host}:{port or 5432}) looks like {what}: session state does "
        "not survive it, so LISTEN/NOTIFY is lost (workers wake only at the backup poll) and "
        "statements can miss the engine's schema (search_path) or prepared statements and "
        "fail. Use the direct connection or the session pooler (port 5432); see "
        "docs/scaling.md."
    )
