"""Chart geometry: pure functions, checked on numbers whose positions are known."""

from __future__ import annotations

import math

from omnicheck.report import charts


def _item(retention: float | None, interval: tuple[float, float] | None = None, threshold: float | None = None) -> charts.RetentionInput:
    return charts.RetentionInput("v", "p", "image", "PASS", "fig", "#a", retention, interval, threshold)


def test_retention_chart_places_points_intervals_and_threshold_on_one_scale() -> None:
    chart = charts.retention_chart([_item(0.5, (0.25, 0.75), 0.95), _item(None), _item(5.0, (4.0, 6.0))])
    half, none, huge = chart.rows
    assert chart.plot_left < half.x_lo < half.x < half.x_hi < chart.one_x < chart.plot_right
    assert math.isclose(half.x - half.x_lo, half.x_hi - half.x)
    assert half.threshold_x is not None and half.x < half.threshold_x < chart.one_x
    assert none.x is None and none.threshold_x is None
    assert huge.clipped_high and huge.x == chart.plot_right
    assert [t.label for t in chart.ticks][0] == "0%" and "100%" in [t.label for t in chart.ticks]
    assert half.y < none.y < huge.y


def test_difference_chart_puts_the_worst_sample_first_for_either_direction() -> None:
    diffs = [charts.SampleDifference(f"s{i}", d, 0.1, 0.1 + d, f"#s{i}") for i, d in enumerate([0.02, 0.5, -0.1])]
    lower_better = charts.difference_chart("speech", "wer", False, [("w4a4", diffs)], lambda v: f"{v:.2f}")
    bars = lower_better.bands[0].bars
    assert [b.href for b in bars] == ["#s1", "#s0", "#s2"]
    assert bars[0].worse and bars[1].worse and not bars[2].worse
    assert bars[0].height > bars[1].height
    assert lower_better.bands[0].worse_count == 2 and lower_better.bands[0].better_count == 1
    higher_better = charts.difference_chart("cap", "sim", True, [("w4a4", diffs)], lambda v: f"{v:.2f}")
    assert [b.href for b in higher_better.bands[0].bars] == ["#s2", "#s0", "#s1"]


def test_collapse_chart_bar_width_is_the_flagged_share() -> None:
    chart = charts.collapse_chart(
        [charts.CollapseInput("w4a4", "cap", "BROKEN", "#x", {"empty": 1, "media_ignored": 4}, 4)],
        ["empty", "media_ignored"],
    )
    empty, ignored = chart.rows[0].cells
    assert math.isclose(empty.width, empty.full_width / 4) and math.isclose(ignored.width, ignored.full_width)
    assert (empty.label, ignored.label) == ("1/4", "4/4")
