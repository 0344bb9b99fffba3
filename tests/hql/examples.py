"""Every HQL statement the seed documentation shows, read from the pages themselves.

A statement is an ```sql block naming ``request_response_rmt``, or the ``"sql"`` of a JSON body sent to
``/v1/helicone-sql/...``, in any page under ``../shared/seeds/docs``; so an example added to the docs is
tested without touching the tests. Where the pages are absent (a checkout without the steering repo)
the statements they held when this suite was written are used.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[3] / "shared" / "seeds" / "docs"
_SQL_BLOCK = re.compile(r"```sql(?:[ \t]+theme=\{[^}]*\})?\s*(.*?)```", re.DOTALL)
_JSON_SQL = re.compile(r'"sql"\s*:\s*("(?:[^"\\]|\\.)*")')

_AS_WRITTEN = (
    "SELECT request_created_at, request_model, response_body, provider_total_cost FROM request_response_rmt "
    "WHERE request_created_at > now() - INTERVAL 7 DAY ORDER BY provider_total_cost DESC LIMIT 100",
    "SELECT COUNTIf(status BETWEEN 400 AND 599) AS error_count, COUNT() AS total_requests, "
    "ROUND(error_count / total_requests, 4) AS error_rate FROM request_response_rmt "
    "WHERE request_created_at >= toDateTime64(now(), 3) - INTERVAL 24 HOUR",
    "SELECT toDate(request_created_at) AS day, COUNT(DISTINCT user_id) AS dau FROM request_response_rmt "
    "WHERE request_created_at >= toDateTime64(now(), 3) - INTERVAL 14 DAY GROUP BY day ORDER BY day",
    "SELECT properties['Helicone-Session-Id'] AS session_id, COUNT(*) AS requests, sum(cost) AS total_cost "
    "FROM request_response_rmt WHERE request_created_at >= toDateTime64(now(), 3) - INTERVAL 7 DAY "
    "AND properties['Helicone-Session-Id'] IS NOT NULL GROUP BY session_id ORDER BY total_cost DESC LIMIT 100",
    "SELECT request_model, sum(cost) AS total_cost, COUNT() AS request_count FROM request_response_rmt "
    "WHERE request_created_at >= toDateTime64(now(), 3) - INTERVAL 30 DAY GROUP BY request_model "
    "ORDER BY total_cost DESC",
    "SELECT request_model, COUNT(*) as count FROM request_response_rmt WHERE request_created_at > now() - "
    "INTERVAL 7 DAY GROUP BY request_model ORDER BY count DESC LIMIT 10",
    "SELECT * FROM request_response_rmt WHERE request_created_at > now() - INTERVAL 1 DAY LIMIT 1000",
    "SELECT request_model, sum(cost) / 1000000000 AS total_cost_usd FROM request_response_rmt "
    "WHERE request_created_at > now() - INTERVAL 7 DAY GROUP BY request_model",
)


def documented_statements() -> list[str]:
    """The statements, each once, in the order the pages show them."""
    if not DOCS.is_dir():
        return list(_AS_WRITTEN)
    found: list[str] = []
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text()
        for block in _SQL_BLOCK.findall(text):
            if "request_response_rmt" in block:
                found.append(" ".join(block.split()))
        for literal in _JSON_SQL.findall(text):
            statement = json.loads(literal)
            if "request_response_rmt" in statement:
                found.append(" ".join(statement.split()))
    return list(dict.fromkeys(found))
