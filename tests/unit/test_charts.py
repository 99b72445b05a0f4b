"""The dashboard chart's geometry."""

import pytest

from suppression.web.staff.charts import MIN_BAR, bar_chart, count_chart, nice_ceiling


@pytest.mark.parametrize(
    ("peak", "expected"),
    [(0, (4, 1)), (1, (4, 1)), (3, (4, 1)), (7, (8, 2)), (9, (20, 5)), (37, (40, 10))],
)
def test_the_axis_top_is_a_round_number_at_or_above_the_peak(peak, expected):
    assert nice_ceiling(peak) == expected


def test_bars_are_proportional_and_sit_on_the_axis():
    chart = bar_chart([("1", "day 1", 0), ("2", "day 2", 2), ("3", "day 3", 4)], height=240)
    heights = [bar.height for bar in chart.bars]
    assert heights[0] == 0
    assert heights[2] == pytest.approx(2 * heights[1])
    assert all(bar.y + bar.height == pytest.approx(chart.bottom) for bar in chart.bars)
    assert chart.total == 6
    assert chart.peak == 4
    assert [t.label for t in chart.ticks] == ["0", "1", "2", "3", "4"]


def test_bars_fit_between_the_margins_and_every_fifth_day_is_labelled():
    chart = bar_chart([(str(n), str(n), n) for n in range(30)], width=720)
    assert chart.bars[0].x >= chart.left
    assert chart.bars[-1].x + chart.bars[-1].width <= chart.right
    assert [label.label for label in chart.labels] == ["0", "5", "10", "15", "20", "25", "29"]
    assert chart.labels[-1].anchor == "end"
    assert chart.labels[-1].x <= chart.right


def test_an_empty_month_draws_an_empty_chart_with_an_axis():
    chart = bar_chart([("1", "1", 0)] * 30)
    assert chart.total == 0
    assert all(bar.height == 0 for bar in chart.bars)
    assert chart.ticks[-1].label == "4"


def test_count_chart_scales_bars_to_the_largest_and_shows_small_counts():
    chart = count_chart([("sendable", 1000, "bar"), ("eea", 1, "x"), ("bounced", 0, "x")])
    widest, small, empty = chart.bars
    assert widest.width == chart.width - chart.left - 90
    assert small.width == MIN_BAR
    assert empty.width == 0
    assert [bar.y for bar in chart.bars] == [6, 36, 66]
    assert chart.height == 102
