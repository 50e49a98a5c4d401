"""The model executor's response cache: SQLite (standard library) on disk, keyed by
(problem, node, prompt, model), so that a run replays without the model API."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    node TEXT NOT NULL,
    content TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency REAL NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class Response:
    content: str
    prompt_tokens: int
    completion_tokens: int
    latency: float  # seconds the call took when it was made

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def cache_key(problem: str, node: str, messages: list[dict[str, Any]], model: str, temperature: float) -> str:
    payload = json.dumps([problem, node, messages, model, temperature], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


class ResponseCache:
    """Responses by key; ``path`` ``":memory:"`` keeps them in this process only."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        with self._lock, self._db:
            self._db.execute(_SCHEMA)
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Response | None:
        with self._lock:
            row = self._db.execute(
                "SELECT content, prompt_tokens, completion_tokens, latency FROM responses WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return Response(str(row[0]), int(row[1]), int(row[2]), float(row[3]))

    def put(self, key: str, model: str, node: str, response: Response) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    model,
                    node,
                    response.content,
                    response.prompt_tokens,
                    response.completion_tokens,
                    response.latency,
                ),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
