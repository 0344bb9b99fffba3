"""A dataset's items as files: OpenAI fine-tuning JSONL, and CSV for spreadsheets.

Both are built from :class:`Exported` items (a logged row's figures and its exchange as OpenAI
messages, or the reason it has none). JSONL has one ``{"messages": [...]}`` line per item that
converted (``datasets.messages``); the others are left out and listed by the API with their reason.
CSV has a line for every item, the columns Helicone's datasets page documents
(``request_id,created_at,model,prompt_tokens,completion_tokens,cost,user_message,assistant_response``)
then heliport's ``dataset_item_id`` and ``note`` (the reason an item has no messages).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from heliport.datasets.messages import answer_text, last_user_text

__all__ = ["CSV_COLUMNS", "Exported", "to_csv", "to_jsonl"]

CSV_COLUMNS: Final = (
    "request_id", "created_at", "model", "prompt_tokens", "completion_tokens", "cost",
    "user_message", "assistant_response", "dataset_item_id", "note",
)  # fmt: skip
#: Leading characters that make a spreadsheet read a cell as a formula (CSV injection): such text
#: cells get a leading apostrophe, which spreadsheets show as text and hide.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Exported:
    item_id: str
    request_id: str
    created_at: str
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost: Decimal | None
    #: The exchange as OpenAI chat messages, the answer last; None when it has none (see ``skipped``).
    messages: list[dict[str, Any]] | None
    #: Why there are no messages.
    skipped: str | None = None


def to_jsonl(items: Iterable[Exported]) -> str:
    """One fine-tuning line per item with messages, in the items' order."""
    return "".join(
        json.dumps({"messages": item.messages}, ensure_ascii=False) + "\n" for item in items if item.messages
    )


def to_csv(items: Iterable[Exported]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerow(CSV_COLUMNS)
    for item in items:
        messages = item.messages
        writer.writerow(
            [
                item.request_id,
                item.created_at,
                _text_cell(item.model or ""),
                "" if item.prompt_tokens is None else item.prompt_tokens,
                "" if item.completion_tokens is None else item.completion_tokens,
                "" if item.cost is None else format(item.cost, "f"),
                _text_cell(last_user_text(messages) if messages else ""),
                _text_cell(answer_text(messages) if messages else ""),
                item.item_id,
                _text_cell(item.skipped or ""),
            ]
        )
    return out.getvalue()


def _text_cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text
