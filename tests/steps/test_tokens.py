"""The token estimate (heliport.steps.tokens): over every real tokenizer on the measured corpus,
monotonic, and cut points that keep a head or tail within a budget.

The corpus and its real counts (cl100k_base, o200k_base, the Anthropic and DeepSeek tokenizers) are
in fixtures/token_corpus.json, written by ``bench/token_estimate.py --write-fixture`` where those
tokenizers are installed; this test needs none of them.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from heliport.steps import tokens
from heliport.steps.tokens import ELISION, cuts, estimate, head, head_and_tail, raw_estimate

CORPUS: dict[str, Any] = json.loads((Path(__file__).parent / "fixtures" / "token_corpus.json").read_text())
SAMPLES: list[dict[str, Any]] = CORPUS["samples"]


def test_the_corpus_covers_every_kind_of_text_and_four_tokenizers() -> None:
    categories = {sample["category"] for sample in SAMPLES}
    assert {"prose", "code", "json", "cjk", "other scripts", "mixed", "generated", "symbols"} <= categories
    assert CORPUS["tokenizers"] == ["cl100k_base", "o200k_base", "anthropic", "deepseek"]
    assert len(SAMPLES) > 100


@pytest.mark.parametrize("sample", SAMPLES, ids=[sample["name"] for sample in SAMPLES])
def test_the_estimate_is_never_below_a_real_tokenizer(sample: dict[str, Any]) -> None:
    counted = estimate(sample["text"])
    worst = max(sample["counts"].values())
    assert counted >= worst, f"{sample['name']}: estimated {counted}, a real tokenizer counted {sample['counts']}"


def test_the_margin_is_what_the_corpus_needs_and_not_much_more() -> None:
    """MARGIN is the largest real/raw ratio measured plus headroom: tighter would under-count some
    sample; the mean over-estimate on prose stays moderate."""
    needed = max(max(s["counts"].values()) / raw_estimate(s["text"]) for s in SAMPLES)
    assert needed <= tokens.MARGIN < needed + 0.05
    prose = [s for s in SAMPLES if s["category"] == "prose" and len(s["text"]) > 1000]
    over = [estimate(s["text"]) / s["counts"]["cl100k_base"] for s in prose]
    assert 1.0 < sum(over) / len(over) < 1.5


@pytest.mark.parametrize(
    ("shorter", "longer"),
    [
        ("---", "----"),  # a rule becoming a long rule
        ("abc", "abcD"),  # a word turning mixed case
        ("aZ", "aZkQ"),
        ("HTT", "HTTP"),
        ("AB", "ABc"),
        ("abcdefghijklmnopqrstuvwxyz" * 2, "abcdefghijklmnopqrstuvwxyz" * 2 + "é"),  # a long word gains an accent
        ("word ", "word w"),
        ("x  ", "x  y"),
        ("12", "123"),
        ("数据", "数据库"),
    ],
)
def test_the_edges_of_a_piece_never_lower_the_estimate(shorter: str, longer: str) -> None:
    assert raw_estimate(longer) >= raw_estimate(shorter)


def test_empty_text_costs_nothing_and_any_text_costs_something() -> None:
    assert estimate("") == 0
    for text in (" ", "a", "7", ".", "\n", "字", "🎉"):
        assert estimate(text) >= 1


@pytest.mark.parametrize("sample", SAMPLES[::5], ids=[sample["name"] for sample in SAMPLES[::5]])
def test_the_estimate_never_falls_as_text_grows(sample: dict[str, Any]) -> None:
    """Character by character over the first 400, then in steps: every prefix costs at least the last."""
    text = sample["text"]
    previous = 0
    for end in [*range(min(400, len(text))), *range(400, len(text) + 1, 37)]:
        counted = estimate(text[:end])
        assert counted >= previous, f"estimate fell from {previous} to {counted} at {end}"
        previous = counted


def test_the_classes_cost_what_the_docstring_says() -> None:
    assert raw_estimate("the cat sat") == 3  # short words: a token each
    assert raw_estimate("1234567") == 3  # digits by three
    # Camel case by its parts (get, Element, By, Id), each after the first half a token extra.
    assert raw_estimate("getElementById") == pytest.approx(1 + (1 + 1 / 3) + 1 + 1 + 3 * 0.5)
    assert raw_estimate("    \n\n    ") == 2.125  # whitespace: cheap whatever its length
    assert raw_estimate("-" * 64) == 4  # a rule of one repeated character
    random_case = "aZkQpRmTxYwV"  # a, Zk, Qp, Rm, Tx, Yw, V
    assert raw_estimate(random_case) == pytest.approx(7 + 6 * 0.5)
    assert raw_estimate("漢字") > raw_estimate("ab")  # ideographs cost more than ASCII letters


def test_cut_points_keep_a_head_and_a_tail_within_the_budget() -> None:
    rng = random.Random(3)
    text = " ".join(rng.choice(["alpha", "beta", "gamma", "δέλτα", "数据", "1234", "{}", "\n"]) for _ in range(3000))
    cut = cuts(text)
    assert cut.total == pytest.approx(raw_estimate(text) * tokens.MARGIN)
    for budget in (0, 1, 5, 100, 777, 2000):
        start = cut.head(budget)
        end = cut.tail(budget)
        assert text.startswith(start) and text.endswith(end)
        assert estimate(start) <= budget and estimate(end) <= budget
        # Longest: one more piece would not fit.
        assert len(start) == len(text) or estimate(text[: cut.offsets[cut.offsets.index(len(start)) + 1]]) > budget
    assert head(text, 10**9) == text


def test_head_and_tail_keeps_both_ends_and_marks_the_cut() -> None:
    text = "BEGIN " + " ".join(f"word{i}" for i in range(5000)) + " END"
    for budget in (40, 300, 2000):
        kept = head_and_tail(text, budget)
        assert kept.startswith("BEGIN") and kept.endswith("END")
        assert ELISION in kept
        assert estimate(kept) <= budget
    assert head_and_tail("short text", 100) == "short text"
    assert head_and_tail(text, 2) == head(text, 2)  # no room for the elision: the head alone
