"""Tables that let payhooks run for years: dedup keys, folded status counts, the archive ledger.

* ``event_keys``: the dedup key of every event ever received, kept
  ``PAYHOOKS_DEDUP_DAYS`` (400) after receipt, so a redelivery of an event
  that retention already removed still answers ``duplicate`` with its
  original id. Written by the receiver's ingest statement, in the same
  statement as the event row (see :mod:`models.ingest`).
* ``status_tallies`` / ``tally_marks``: counts of *final* rows whose
  ``processed_at`` lies before a mark, folded in by the housekeeper, so
  counting by status reads a few tally rows plus the rows since the mark
  (see :mod:`models.counts`).
* ``archive_files``: how many bytes of each archive file are committed, so a
  crash between writing a file and deleting its rows is undone by truncating
  the file's unrecorded tail (see :mod:`models.archive`).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Index,
    PrimaryKeyConstraint,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.tables import Base


class EventKey(Base):
    __tablename__ = "event_keys"
    __table_args__ = (
        PrimaryKeyConstraint("provider", "event_key", name="pk_event_keys"),
        Index("ix_event_keys_received_at", "received_at"),
    )

    provider: Mapped[str] = mapped_column(String(32))
    event_key: Mapped[str] = mapped_column(String(255))
    event_id: Mapped[int] = mapped_column(BigInteger)
    """The id the event got (no foreign key: the key outlives the event row)."""
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class StatusTally(Base):
    __tablename__ = "status_tallies"
    __table_args__ = (PrimaryKeyConstraint("table_name", "grp", "status", name="pk_status_tallies"),)

    table_name: Mapped[str] = mapped_column(String(32))
    grp: Mapped[str] = mapped_column(String(64))
    """provider (events) or kind (deliveries)"""
    status: Mapped[str] = mapped_column(String(16))
    n: Mapped[int] = mapped_column(BigInteger)


class TallyMark(Base):
    __tablename__ = "tally_marks"

    table_name: Mapped[str] = mapped_column(String(32), primary_key=True)
    folded_to: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """Final rows with ``processed_at`` before this are in ``status_tallies``."""


class ArchiveFile(Base):
    __tablename__ = "archive_files"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    """The file's absolute path."""
    bytes: Mapped[int] = mapped_column(BigInteger)
    """Committed length: anything after it was written by a batch that did not commit."""
    events: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
