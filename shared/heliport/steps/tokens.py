"""Token counts without a tokenizer: a fast estimate that errs on the high side.

``Helicone-Token-Limit-Exception-Handler`` must know whether a request fits a model's context
window before the model sees it. A real tokenizer would need its vocabulary (megabytes per model
family, and a download at run time for tiktoken), which a Lambda function cannot fetch and a laptop
may not have. This module estimates instead, from the shape of the text, and is calibrated against
real tokenizers offline (``bench/token_estimate.py``; the numbers are in docs/architecture.md).

How: the text is cut into pieces the way byte-level BPE tokenizers pre-split it (a word with its
leading space, a run of digits, a run of punctuation, a run of whitespace), and each piece is
charged by its class:

* an ASCII word costs one token up to six letters, then a third of a token per letter, more past
  twelve; a mixed-case word is charged by its parts (``getElementById``: get, Element, By, Id), each
  after the first half a token extra (random mixed case, as in base64, splits into many parts);
* digits cost one token per three (GPT tokenizers group digits by three);
* punctuation costs two tokens per three characters, at least one (one repeated, ``-----``, less);
* whitespace costs one or two tokens whatever its length (indentation and blank lines are cheap);
* anything else is charged per character by Unicode block, at the most any measured tokenizer
  spends on that block (a Han ideograph, kana or hangul 1.1; Cyrillic 0.65; Greek and Thai,
  expensive in Anthropic's tokenizer, 1.15 and 1.7; emoji 2.6); the ASCII runs of such a piece
  are charged as above.

The sum is multiplied by :data:`MARGIN`, chosen so that on the measured corpus the estimate is never
below any of the real tokenizers measured (OpenAI's cl100k_base and o200k_base, the Anthropic and
DeepSeek tokenizers LiteLLM ships). The costs are chosen so that the estimate is monotonic:
appending text never lowers it (a longer piece never costs less, and a new piece adds its cost).

For trimming, :func:`cuts` gives the piece boundaries of a text with the estimate of every prefix,
so a caller can find the longest head (or tail) that fits a token budget without re-estimating.
Pure standard library, imported only when a request asks for the token-limit handler.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from functools import lru_cache
from itertools import accumulate

__all__ = ["MARGIN", "Cuts", "cuts", "estimate", "head", "head_and_tail", "raw_estimate"]

#: The safety factor over the raw heuristic: the largest real/raw ratio measured (1.118, a short
#: English sample under Anthropic's tokenizer), plus headroom (``bench/token_estimate.py``).
MARGIN = 1.15

# A piece, as byte-level BPE tokenizers pre-split text: a word (letters of any script) with its
# optional leading space; digits; punctuation and symbols (``_`` included); whitespace.
_PIECE = re.compile(r" ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+")

# Per-class costs, fitted on the corpus of bench/token_estimate.py (see the module docstring).
_WORD_FREE = 6
_WORD_CHARS = 3.0
#: Long letter runs past this many letters are identifiers, hashes or noise: charged more per letter.
_WORD_LONG = 12
_WORD_LONG_COST = 0.6
_PUNCT_CHARS = 1.5
#: One character repeated (a ``-----`` rule, ``=====``): tokenizers hold long runs of these whole.
_REPEAT_CHARS = 32.0
_DIGITS = 3
# A mixed-case word splits where its case changes (``getElementById``: get, Element, By, Id); random
# mixed case (base64) splits into many short pieces. An upper-case run costs one token per two.
_SUBWORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
_UPPER_CHARS = 2.0
_PART_COST = 0.5

#: Per character of a non-ASCII piece, by Unicode block: (first code point, cost), sorted. What a
#: block costs is the most any measured tokenizer spends on it (Greek and Thai are expensive in
#: Anthropic's; Cyrillic is cheaper everywhere; a Han ideograph, kana or hangul is about a token).
_BLOCKS: tuple[tuple[int, float], ...] = (
    (0x0000, 0.0),  # (ASCII runs of a non-ASCII piece are charged as pieces)
    (0x0080, 0.8),  # Latin-1 and Latin extended (accented letters), IPA
    (0x0370, 1.15),  # Greek
    (0x0400, 0.65),  # Cyrillic
    (0x0530, 1.05),  # Armenian, Hebrew, Arabic, Syriac, Thaana
    (0x0800, 1.2),  # Samaritan .. Devanagari, Bengali, .. other Indic scripts
    (0x0E00, 1.7),  # Thai, Lao, Tibetan, Myanmar
    (0x10A0, 1.2),  # Georgian .. (other scripts)
    (0x1E00, 1.2),  # Latin extended additional (Vietnamese)
    (0x2000, 1.2),  # punctuation, symbols, arrows, box drawing, dingbats
    (0x3000, 1.1),  # CJK punctuation, kana, CJK ideographs
    (0xA000, 1.1),  # Yi, hangul syllables, ..
    (0xD800, 1.3),  # surrogates, private use, compatibility ideographs, half- and full-width forms
    (0x10000, 2.6),  # beyond the basic plane: emoji, rare ideographs
)
_BLOCK_STARTS = tuple(start for start, _ in _BLOCKS)
_BLOCK_COSTS = tuple(cost for _, cost in _BLOCKS)


def _mixed_cost(piece: str) -> float:
    """A piece with non-ASCII characters: its ASCII runs as pieces of their own, the rest per character.

    (Charging ASCII runs as in an ASCII piece keeps the estimate from falling when an accented
    letter joins a long word.)
    """
    cost = 0.5
    run = 0
    for index, char in enumerate(piece):
        code = ord(char)
        if code < 0x80:
            continue
        if index > run:
            cost += _piece_cost(piece[run:index])
        run = index + 1
        cost += _BLOCK_COSTS[bisect_right(_BLOCK_STARTS, code) - 1]
    if run < len(piece):
        cost += _piece_cost(piece[run:])
    return cost


def _letters_cost(word: str) -> float:
    if word.islower() or word[1:].islower() or len(word) == 1:
        size = len(word)
        if size <= _WORD_FREE:
            return 1.0
        if size <= _WORD_LONG:
            return 1.0 + (size - _WORD_FREE) / _WORD_CHARS
        return 1.0 + (_WORD_LONG - _WORD_FREE) / _WORD_CHARS + (size - _WORD_LONG) * _WORD_LONG_COST
    # Mixed case: by parts, each after the first charged extra. Random mixed case (base64, keys)
    # splits into parts of a letter or two, about 0.75 tokens a letter; camel case into words.
    cost = -_PART_COST
    for part in _SUBWORD.findall(word):
        cost += _PART_COST + (max(1.0, len(part) / _UPPER_CHARS) if part.isupper() else _letters_cost(part))
    return cost


def _piece_cost(piece: str) -> float:
    if not piece.isascii():
        return _mixed_cost(piece)
    spaced = piece[0] == " " and len(piece) > 1
    body = piece[1:] if spaced else piece
    first = body[0]
    if first.isalpha():
        return _letters_cost(body)
    if first.isdigit():
        return float(-(-len(body) // _DIGITS) + spaced)
    if first.isspace():
        # Whitespace runs are held by few tokens whatever their length (indentation, blank lines).
        return 1.0 if len(piece) <= 2 else 2.0 + len(piece) / 80
    plain = max(1.0, len(body) / _PUNCT_CHARS)
    if len(body) > 1 and body.count(first) == len(body):
        # One character repeated (a ``-----`` rule): long runs are held whole; never below a
        # shorter run, so the estimate cannot fall as the rule grows.
        return min(plain, 2.0) + len(body) / _REPEAT_CHARS
    return plain


#: Pieces repeat (words, indentation, punctuation runs), so their costs are remembered: a large body
#: is estimated several times faster, in bounded memory.
_cached_cost = lru_cache(maxsize=1 << 16)(_piece_cost)


def raw_estimate(text: str) -> float:
    """The heuristic's token count before the safety factor (what the calibration measures)."""
    return sum(map(_cached_cost, _PIECE.findall(text)))


def estimate(text: str) -> int:
    """The estimated token count of ``text``, on the high side (:data:`MARGIN` included)."""
    if not text:
        return 0
    return math.ceil(raw_estimate(text) * MARGIN)


class Cuts:
    """Where a text may be cut (piece boundaries) and the estimate of the text before each cut."""

    __slots__ = ("offsets", "prefix", "text", "total")

    def __init__(self, text: str, offsets: list[int], prefix: list[float]) -> None:
        self.text = text
        #: Character offsets of the boundaries, from 0 to ``len(text)``.
        self.offsets = offsets
        #: ``prefix[i]``: estimate (margin included, not rounded) of ``text[: offsets[i]]``.
        self.prefix = prefix
        self.total = prefix[-1]

    def head(self, tokens: float) -> str:
        """The longest prefix, cut at a boundary, whose estimate is at most ``tokens``."""
        index = bisect_right(self.prefix, tokens) - 1
        return self.text[: self.offsets[max(index, 0)]]

    def tail(self, tokens: float) -> str:
        """The longest suffix, cut at a boundary, whose estimate is at most ``tokens``."""
        return self.text[self.offsets[self.tail_index(tokens)] :]

    def tail_index(self, tokens: float) -> int:
        """The first boundary from which the rest of the text costs at most ``tokens``."""
        # The suffix from boundary i costs total - prefix[i], falling as i grows: the first i with
        # prefix[i] >= total - tokens.
        index = bisect_left(self.prefix, self.total - tokens)
        return min(index, len(self.offsets) - 1)


def cuts(text: str) -> Cuts:
    """The cut points of ``text`` with the estimate of every prefix (one pass over the text)."""
    offsets = [0]
    costs = [0.0]
    end = 0
    for piece in _PIECE.findall(text):
        end += len(piece)
        offsets.append(end)
        costs.append(_cached_cost(piece) * MARGIN)
    return Cuts(text, offsets, list(accumulate(costs)))


def head(text: str, tokens: int) -> str:
    """The start of ``text`` that fits in ``tokens`` (estimated), cut between pieces."""
    return cuts(text).head(tokens)


#: What replaces the middle that :func:`head_and_tail` removes: a visible, cheap ellipsis line.
ELISION = "\n…\n"


def head_and_tail(text: str, tokens: int) -> str:
    """``text`` with its middle removed so that the rest, with :data:`ELISION`, fits in ``tokens``.

    The budget left after the elision is split evenly between the head and the tail; what the tail
    does not use goes to the head. Whitespace at the cut is dropped. A budget too small for the
    elision keeps the head alone.
    """
    cut = cuts(text)
    if cut.total <= tokens:
        return text
    room = tokens - estimate(ELISION)
    if room <= 0:
        return cut.head(tokens)
    start = cut.tail_index(room / 2)
    tail_cost = cut.total - cut.prefix[start]
    return cut.head(room - tail_cost).rstrip() + ELISION + text[cut.offsets[start] :].lstrip()
