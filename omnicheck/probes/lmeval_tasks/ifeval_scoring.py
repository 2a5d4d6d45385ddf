"""lm-eval's own IFEval checker, reached from omnicheck_ifeval.yaml.

punkt_tab is put in place before lm-eval's ifeval helpers import nltk (they would try to download it), and
langdetect is seeded: unseeded, its language guesses, and so a score, can change from run to run.
"""

import langdetect

from omnicheck.probes.lmeval import ensure_punkt_tab

ensure_punkt_tab()
langdetect.DetectorFactory.seed = 0

from lm_eval.tasks.ifeval.utils import agg_inst_level_acc, process_results  # noqa: E402

__all__ = ["agg_inst_level_acc", "process_results"]
