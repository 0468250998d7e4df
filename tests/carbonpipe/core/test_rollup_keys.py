"""What a range reads from the rollups (``carbonpipe.core.rollup_keys``)."""

from __future__ import annotations

from datetime import date

from carbonpipe.core.rollup_keys import calendar_days, month_split


def test_a_range_reads_its_whole_months_and_only_the_other_days() -> None:
    days = calendar_days(date(2024, 1, 30), date(2024, 4, 1))  # 2024: a leap year
    assert days[0] == "2024-01-30" and days[-1] == "2024-04-01" and len(days) == 2 + 29 + 31 + 1
    months, rest = month_split(days)
    assert months == ["2024-02", "2024-03"]  # 29 days of February make it whole
    assert rest == ["2024-01-30", "2024-01-31", "2024-04-01"]
    assert month_split(calendar_days(date(2023, 2, 1), date(2023, 2, 28))) == (["2023-02"], [])
    assert month_split(calendar_days(date(2023, 2, 2), date(2023, 2, 28)))[0] == []
    assert month_split([]) == ([], [])
