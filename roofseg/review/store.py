"""The decisions of a review, kept in SQLite: one row per building, written as each is made.

A killed server loses nothing (each decision is committed on its own) and resumes where it was;
two tabs on one review write rows of their own, never the whole list, so neither loses the
other's decisions. WAL mode lets the page read while a decision is written.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path

from roofseg.contracts.review import DECISIONS, SCHEMA
from roofseg.errors import RoofsegError

__all__ = ["DECISIONS", "DecisionStore"]


class DecisionStore:
    """The decisions of the review of ``files`` (the footprint files, whose paths the store keeps:
    a store of another review is refused in one line)."""

    def __init__(self, path: str | os.PathLike, files: list[str]):
        self.path = Path(path)
        self.lock = threading.Lock()
        try:
            self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            for statement in SCHEMA:  # the layout roofseg.contracts.review describes
                self.db.execute(statement)
            row = self.db.execute("SELECT value FROM meta WHERE key = 'files'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise RoofsegError(self.path, f"is not a review store roofseg can use ({exc})") from None
        files = [os.path.abspath(f) for f in files]
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('files', ?)", (json.dumps(files),))
        elif json.loads(row[0]) != files:
            raise RoofsegError(
                self.path,
                "holds the review of other footprints ("
                + ", ".join(json.loads(row[0]))
                + "); give another --store, or review those",
            )

    def decide(self, building: str, decision: str | None) -> None:
        """Record ``decision`` for ``building`` (None takes it back)."""
        if decision is not None and decision not in DECISIONS:
            raise ValueError(f"a decision is one of {', '.join(DECISIONS)}, not {decision!r}")
        with self.lock:
            if decision is None:
                self.db.execute("DELETE FROM decisions WHERE building = ?", (building,))
            else:
                self.db.execute(
                    "INSERT INTO decisions VALUES (?, ?, ?) ON CONFLICT(building) DO UPDATE "
                    "SET decision = excluded.decision, at = excluded.at",
                    (building, decision, time.time()),
                )

    def decisions(self) -> dict[str, str]:
        with self.lock:
            return dict(self.db.execute("SELECT building, decision FROM decisions").fetchall())

    def close(self) -> None:
        self.db.close()
