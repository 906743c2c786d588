"""A review's SQLite store: what ``roofseg review`` writes and ``roofseg tile --labels`` reads.

Layout: a table ``meta`` (key, value) whose ``files`` row is the JSON list of the footprint files
reviewed (absolute paths, in the order given), and a table ``decisions`` (building, decision, at)
with one row per building decided. A building's key is ``PAIR:FEATURE``: the index of its file in
``files`` and its feature's position in that file (features without geometry counted too).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from roofseg.errors import RoofsegError

ACCEPT, REJECT, SKIP = "accept", "reject", "skip"
DECISIONS = (ACCEPT, REJECT, SKIP)
SUFFIXES = (".sqlite", ".sqlite3", ".db")
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)",
    "CREATE TABLE IF NOT EXISTS decisions (building TEXT PRIMARY KEY, decision TEXT NOT NULL, at REAL)",
)


def building_key(pair: int, feature: int) -> str:
    """The key of the ``feature``-th footprint of the ``pair``-th file of a review."""
    return f"{pair}:{feature}"


def parse_key(key: str) -> tuple[int, int]:
    """(pair, feature) of a building key."""
    pair, _, feature = key.partition(":")
    return int(pair), int(feature)


@dataclass(frozen=True)
class Reviewed:
    """What a review store holds: the footprint files reviewed and each decision by building key."""

    path: str
    files: tuple[str, ...]
    decisions: dict[str, str]

    def keys(self, decision: str) -> list[tuple[int, int]]:
        """(pair, feature) of every building given ``decision``, in key order."""
        return sorted(parse_key(k) for k, d in self.decisions.items() if d == decision)

    def counts(self) -> dict[str, int]:
        """How many buildings got each decision."""
        found = Counter(self.decisions.values())
        return {d: found.get(d, 0) for d in DECISIONS}


def is_review_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a review store (by its suffix)."""
    return Path(os.fspath(path)).suffix.lower() in SUFFIXES


def read_review(path: str | os.PathLike) -> Reviewed:
    """The files and decisions of the review store at ``path`` (read-only), or a RoofsegError naming
    it: not there, not SQLite, not a review's store."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise RoofsegError(path, "no such review store (roofseg review writes NAME.review.sqlite)")
    try:
        db = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'files'").fetchone()
            rows = db.execute("SELECT building, decision FROM decisions").fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise RoofsegError(path, f"is not a review store roofseg wrote ({exc})") from None
    if row is None:
        raise RoofsegError(path, "is not a review store roofseg wrote (it names no footprint files)")
    try:
        files = tuple(str(f) for f in json.loads(row[0]))
        decisions = {str(k): str(d) for k, d in rows}
        for key in decisions:
            parse_key(key)
    except (ValueError, TypeError) as exc:
        raise RoofsegError(path, f"the review store is damaged ({exc})") from None
    return Reviewed(path, files, decisions)
