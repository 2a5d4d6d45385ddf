"""Thresholds -> verdicts with messages, and a diagnosis across one variant's verdicts.

A verdict is decided on paired samples, with the statistic's own uncertainty (two one-sided tests, as in
equivalence testing): at confidence c the interval is two-sided at 2c - 1, so each of its bounds holds with
confidence c.

- PASS: even the interval's worst end stays within the allowed loss.
- DEGRADED: even its best end is beyond the allowed loss (for 0/1 metrics the exact McNemar test must agree).
- BROKEN: even its best end is beyond the broken level, or the variant's outputs collapse (empty, looping,
  garbled, ignoring the media) on at least `collapse_rate` more of the samples than the reference's do, by an
  exact one-sided test.
- INCONCLUSIVE: anything between, or fewer than `min_samples` paired samples: never PASS or fail by luck.

Allowed loss, by the metric's direction and kind: higher-is-better 0/1 metrics keep `min_retention` of the
reference (variant / reference, as in llm-compressor's recovery gate); higher-is-better continuous metrics
drop at most `max_drop`; lower-is-better metrics (WER) rise at most `max_increase`, absolute, never a ratio.
The primary metric (the probe's first) decides; other metrics can only make the verdict worse, by being
DEGRADED or BROKEN themselves. So can the opt-in agreement gate (min_agreement / broken_agreement: the mean
word F1 of the variant's outputs against the reference's, judged on its interval's best end), the one signal
left when the reference's own scores mean nothing, as with a random-weight test model.

Teacher-forced divergence (the variant's next-token distributions along the reference's own answers, against the
run's A/A noise floor) decides only where the above cannot: PASS for an INCONCLUSIVE verdict whose divergence is
within the validated level, BROKEN at few samples when outputs collapse and diverge far beyond the floor
(divergence.py says the rules; docs/divergence.md validates them).

The modules, in the order judge() uses them:
  settings.py   which thresholds, confidence, resamples and seed apply to one probe
  decision.py   each metric's status, the collapse detectors, the agreement gate, and how they combine
  message.py    the verdict's sentences
  divergence.py what teacher-forced divergence may decide; per-modality divergence and media against text
  verdict.py    judge(): the steps above, in order
  diagnosis.py  diagnose(): why a variant's modalities fail, across its verdicts and its quant card
"""

from omnicheck.gate.decision import MetricJudgement, judge_metric
from omnicheck.gate.diagnosis import diagnose
from omnicheck.gate.verdict import judge

__all__ = ["MetricJudgement", "diagnose", "judge", "judge_metric"]
