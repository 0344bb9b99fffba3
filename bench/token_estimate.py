"""How far heliport's token estimate (``heliport.steps.tokens``) is from real tokenizers.

    python3 -m venv /tmp/tokvenv && /tmp/tokvenv/bin/pip install tiktoken tokenizers
    /tmp/tokvenv/bin/pip download --no-deps litellm -d /tmp/litellm-wheel
    unzip -o -j /tmp/litellm-wheel/litellm-*.whl 'litellm/litellm_core_utils/tokenizers/*' -d /tmp/tokcache
    TIKTOKEN_CACHE_DIR=/tmp/tokcache /tmp/tokvenv/bin/python bench/token_estimate.py \
        --vocab-dir /tmp/tokcache [--write-fixture] [--fit]

Real tokenizers, all offline (LiteLLM's wheel ships their vocabularies, which is how they are had
without a download; tiktoken finds its files through ``TIKTOKEN_CACHE_DIR``): OpenAI's
``cl100k_base`` (GPT-4, GPT-3.5) and ``o200k_base`` (GPT-4o, GPT-4.1, o-series, GPT-5), the
Anthropic tokenizer LiteLLM ships (Claude's published one, from before Claude 3), and DeepSeek's.

The corpus: heliport's own prose (README, docs), code (Python, JavaScript, CSS, HTML, Terraform)
and JSON, the multilingual texts of ``tests/steps/fixtures/corpus`` (written for this purpose:
Chinese, Japanese, Korean, Russian, Arabic, Hindi, European languages, emoji, a mixed document), and
generated hard cases (digits, base64, hex, UUIDs, URLs, deep indentation, repeated characters).
Each source is cut into samples of about 3,000 and of about 200 characters. Also measured when
present, but not stored: the Helicone documentation seeds (``../shared/seeds/docs``) and the
translations of ``/usr/share/locale`` (real sentences in many scripts).

Reported per category and tokenizer: the mean relative error of the estimate (margin included) and
the worst one (most negative: an under-estimate), and the margin the corpus needs
(the largest real/raw ratio). ``--write-fixture`` stores the stored corpus with its real counts in
``tests/steps/fixtures/token_corpus.json``, which ``tests/steps/test_tokens.py`` checks the estimate
against (the estimate must be at least every real count). ``--fit`` prints the per-class token
ratios the heuristic's constants were chosen from.

No heliport dependency is needed: the estimator is loaded from its file (standard library only).
"""

from __future__ import annotations

import argparse
import base64
import gettext
import importlib.util
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests/steps/fixtures/token_corpus.json"
AUTHORED = ROOT / "tests/steps/fixtures/corpus"
SEEDS = ROOT.parent / "shared/seeds/docs"
LOCALES = Path("/usr/share/locale")

LONG, SHORT = 3000, 200


def load_estimator() -> object:
    path = ROOT / "shared/heliport/steps/tokens.py"
    spec = importlib.util.spec_from_file_location("heliport_tokens", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclass-free, but keep the usual import invariant
    spec.loader.exec_module(module)
    return module


def tokenizers(vocab_dir: Path) -> dict[str, Callable[[str], int]]:
    import tiktoken
    from tokenizers import Tokenizer

    found: dict[str, Callable[[str], int]] = {}
    for name in ("cl100k_base", "o200k_base"):
        encoding = tiktoken.get_encoding(name)
        found[name] = lambda text, e=encoding: len(e.encode(text, disallowed_special=()))
    for name, file in (("anthropic", "anthropic_tokenizer.json"), ("deepseek", "deepseek_tokenizer.json")):
        tokenizer = Tokenizer.from_file(str(vocab_dir / file))
        found[name] = lambda text, t=tokenizer: len(t.encode(text, add_special_tokens=False).ids)
    return found


def chunks(text: str, size: int, limit: int) -> Iterator[str]:
    """Up to ``limit`` samples of about ``size`` characters, cut at line ends where possible."""
    start = 0
    count = 0
    while start < len(text) and count < limit:
        end = min(len(text), start + size)
        newline = text.rfind("\n", start + size // 2, end)
        if newline > 0 and end < len(text):
            end = newline + 1
        piece = text[start:end]
        if piece.strip():
            yield piece
            count += 1
        start = end


def generated(rng: random.Random) -> dict[str, str]:
    """Hard cases a tokenizer handles worst, made here (seeded, so the fixture is reproducible)."""
    numbers = "\n".join(
        ",".join(str(rng.randint(0, 10 ** rng.randint(1, 9))) for _ in range(8)) + f",{rng.random():.6f}"
        for _ in range(120)
    )
    return {
        "numbers": numbers,
        "base64": base64.b64encode(rng.randbytes(2400)).decode(),
        "hex": rng.randbytes(1600).hex(),
        "uuids": " ".join(str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(90)),
        "urls": "\n".join(
            f"https://{rng.choice(['api', 'cdn', 'static'])}.example{rng.randint(1, 99)}.com/v{rng.randint(1, 3)}/"
            f"{rng.choice(['users', 'items', 'orders'])}/{rng.getrandbits(40):x}?page={rng.randint(1, 500)}&sort=desc"
            for _ in range(40)
        ),
        "indented": "\n".join(" " * (4 * (i % 9)) + f"value_{i} = compute(value_{i - 1}, {i})" for i in range(1, 120)),
        "repeated": "a" * 1500 + " " + "=" * 800 + "\n" + "-" * 600 + " " + "ha" * 300,
        "punctuation": "".join(rng.choice("!@#$%^&*()[]{};:,.<>/?|\\~`'\"-+=") for _ in range(2500)),
    }


def project_sources() -> dict[str, tuple[str, str]]:
    """name -> (category, text) from heliport's own files."""
    files = {
        "readme": ("prose", "README.md"),
        "architecture": ("prose", "docs/architecture.md"),
        "benchmarks": ("prose", "docs/benchmarks.md"),
        "python_responses": ("code", "shared/heliport/gateway/responses.py"),
        "python_exchange": ("code", "shared/heliport/exchange.py"),
        "javascript": ("code", "shared/heliport/dashboard/static/app.js"),
        "css": ("code", "shared/heliport/dashboard/static/app.css"),
        "html": ("code", "shared/heliport/dashboard/static/index.html"),
        "models_json": ("json", "shared/heliport/gateway/models.json"),
        "chat_json": ("json", "tests/mock_provider/fixtures/openai/chat_completion.json"),
        "stream_jsonl": ("json", "tests/mock_provider/fixtures/openai/chat_stream.jsonl"),
    }
    terraform = sorted((ROOT / "infra/terraform").rglob("*.tf"))
    found = {name: (category, (ROOT / path).read_text()) for name, (category, path) in files.items()}
    if terraform:
        found["terraform"] = ("code", "\n".join(p.read_text() for p in terraform[:3]))
    return found


def authored_sources() -> dict[str, tuple[str, str]]:
    category = {"mixed.md": "mixed", "emoji.txt": "symbols", "europe.txt": "latin+greek"}
    return {
        path.stem: (
            category.get(path.name, "cjk" if path.stem in ("zh", "ja", "ko") else "other scripts"),
            path.read_text(),
        )
        for path in sorted(AUTHORED.iterdir())
    }


def stored_corpus() -> list[dict[str, str]]:
    rng = random.Random(20)
    sources = {**project_sources(), **authored_sources()}
    sources |= {name: ("generated", text) for name, text in generated(rng).items()}
    samples: list[dict[str, str]] = []
    for name, (category, text) in sources.items():
        for index, piece in enumerate(chunks(text, LONG, 4)):
            samples.append({"name": f"{name}#{index}", "category": category, "text": piece})
        for index, piece in enumerate(chunks(text, SHORT, 3)):
            samples.append({"name": f"{name}/short#{index}", "category": category, "text": piece})
    return samples


def extra_corpus() -> list[dict[str, str]]:
    """Measured but not stored: Helicone's documentation and the system's translations."""
    samples: list[dict[str, str]] = []
    if SEEDS.is_dir():
        for path in sorted(SEEDS.glob("*.md"))[:40]:
            for index, piece in enumerate(chunks(path.read_text(), LONG, 1)):
                samples.append({"name": f"seed:{path.stem}#{index}", "category": "extra: docs", "text": piece})
    if LOCALES.is_dir():
        for language in ("zh_CN", "zh_TW", "ja", "ko", "ru", "uk", "ar", "he", "hi", "th", "el", "de", "fr", "vi"):
            path = LOCALES / language / "LC_MESSAGES" / "apt.mo"
            if not path.exists():
                continue
            with path.open("rb") as handle:
                catalog = gettext.GNUTranslations(handle)
            text = "\n".join(v for v in catalog._catalog.values() if isinstance(v, str) and len(v) > 20)  # type: ignore[attr-defined]
            for index, piece in enumerate(chunks(text, LONG, 2)):
                samples.append({"name": f"locale:{language}#{index}", "category": "extra: translations", "text": piece})
    return samples


def measure(samples: list[dict[str, object]], estimator: object, counters: dict[str, Callable[[str], int]]) -> dict:
    raw = estimator.raw_estimate  # type: ignore[attr-defined]
    estimate = estimator.estimate  # type: ignore[attr-defined]
    rows = []
    for sample in samples:
        text = str(sample["text"])
        counts = sample.get("counts") or {name: count(text) for name, count in counters.items()}
        sample["counts"] = counts
        rows.append((sample, raw(text), estimate(text), counts))
    report: dict[str, object] = {}
    categories = sorted({str(s["category"]) for s, *_ in rows})
    worst_ratio = 0.0
    for category in [*categories, "all"]:
        selected = [r for r in rows if category in ("all", r[0]["category"])]
        per: dict[str, dict[str, float]] = {}
        for name in counters:
            errors = [(est - c[name]) / c[name] for _, _, est, c in selected if c[name]]
            ratios = [c[name] / r for _, r, _, c in selected if r]
            worst_ratio = max(worst_ratio, *ratios)
            per[name] = {
                "mean_error": statistics.fmean(errors),
                "worst_error": min(errors),
                "needed_margin": max(ratios),
            }
        report[category] = {"samples": len(selected), "tokenizers": per}
    report["needed_margin"] = worst_ratio
    return report


def print_report(title: str, report: dict, margin: float) -> None:
    print(f"\n{title} (estimate = raw x {margin})")
    print(
        f"{'category':22} {'n':>4}  " + "  ".join(f"{name:>26}" for name in next(iter(report.values()))["tokenizers"])
    )
    print(f"{'':22} {'':>4}  " + "  ".join(f"{'mean err / worst / margin':>26}" for _ in range(4)))
    for category, entry in report.items():
        if category == "needed_margin":
            continue
        cells = "  ".join(
            f"{v['mean_error']:+8.1%} {v['worst_error']:+8.1%} {v['needed_margin']:6.3f}"
            for v in entry["tokenizers"].values()
        )
        print(f"{category:22} {entry['samples']:>4}  {cells}")
    print(f"margin the corpus needs (largest real/raw): {report['needed_margin']:.3f}")


def fit(samples: list[dict[str, object]], counters: dict[str, Callable[[str], int]]) -> None:
    """Tokens per piece class for each tokenizer, to choose the heuristic's constants."""
    import re

    piece = re.compile(r" ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+")
    for name, count in counters.items():
        print(f"\n{name}: tokens per piece, by class")
        for label, test in (
            ("ascii word", lambda p: p.strip().isascii() and p.strip().isalpha()),
            ("punct", lambda p: p.isascii() and not p.strip().isalnum() and p.strip() != ""),
            ("space", lambda p: p.isspace()),
        ):
            pieces = [m.group() for s in samples for m in piece.finditer(str(s["text"])) if test(m.group())]
            by_len: dict[int, list[int]] = {}
            for p in pieces[:20000]:
                by_len.setdefault(len(p.strip()) if not p.isspace() else len(p), []).append(count(p))
            line = " ".join(f"{k}:{max(v)}/{statistics.fmean(v):.2f}" for k, v in sorted(by_len.items())[:24])
            print(f"  {label:10} len:max/mean {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab-dir", type=Path, required=True, help="LiteLLM's tokenizers folder, unpacked")
    parser.add_argument("--write-fixture", action="store_true")
    parser.add_argument("--fit", action="store_true")
    args = parser.parse_args()
    estimator = load_estimator()
    counters = tokenizers(args.vocab_dir)
    stored = stored_corpus()
    extra = extra_corpus()
    margin = estimator.MARGIN  # type: ignore[attr-defined]
    if args.fit:
        fit(stored, counters)
    print_report("stored corpus", measure(stored, estimator, counters), margin)  # type: ignore[arg-type]
    if extra:
        print_report("extra corpus", measure(extra, estimator, counters), margin)  # type: ignore[arg-type]
    big = "\n".join(str(s["text"]) for s in stored) * 4
    started = time.perf_counter()
    estimator.estimate(big)  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - started
    rate = len(big) / elapsed / 1e6
    print(f"\nspeed: {len(big) / 1e6:.2f} M characters in {elapsed * 1000:.0f} ms ({rate:.1f} M chars/s)")
    if args.write_fixture:
        FIXTURE.write_text(
            json.dumps({"tokenizers": list(counters), "samples": stored}, ensure_ascii=False, indent=0) + "\n"
        )
        print(f"wrote {FIXTURE.relative_to(ROOT)} ({len(stored)} samples)")


if __name__ == "__main__":
    main()
