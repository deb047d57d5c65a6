"""The operator's own trail (``operator_actions``): written as work is committed, read by the audit page.

A replay writes its row before the first batch; each batch adds its count in
the transaction that did the work, so the row never over- or under-counts,
even when the command (or the console) is interrupted.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, select, update

from models.orders import OperatorAction

_actions = OperatorAction.__table__


def start_action(conn: Connection, *, actor: str, action: str, target: str, filter: dict[str, Any],
                 detail: str | None = None) -> int:
    """An ``operator_actions`` row with count 0, to which each committed batch adds its rows."""
    return conn.execute(
        _actions.insert().values(actor=actor[:255], action=action, target=target, filter=filter, count=0,
                                 detail=detail).returning(_actions.c.id)
    ).scalar_one()


def add_to_action(conn: Connection, action_id: int, *, count: int, detail: str | None = None) -> None:
    """Count rows done, in the transaction that did them, so the audit row never over- or under-counts."""
    values: dict[str, Any] = {"count": _actions.c.count + count}
    if detail is not None:
        values["detail"] = detail
    conn.execute(update(_actions).where(_actions.c.id == action_id).values(**values))


def list_actions(conn: Connection, *, limit: int, actor: str | None = None,
                 before_id: int | None = None) -> list[dict[str, Any]]:
    """Operator actions newest first (by id), before ``before_id``."""
    conditions = []
    if actor:
        conditions.append(_actions.c.actor == actor)
    if before_id is not None:
        conditions.append(_actions.c.id < before_id)
    query = select(_actions).where(and_(True, *conditions)).order_by(_actions.c.id.desc()).limit(limit)
    return [dict(row._mapping) for row in conn.execute(query)]


def action(conn: Connection, action_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(_actions).where(_actions.c.id == action_id)).one_or_none()
    return None if row is None else dict(row._mapping)
