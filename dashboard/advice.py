"""Dashboard piece: the ``carbonpipe schedule advise`` paragraph for a job shape the user picks.

Self-contained (the page layout is owned elsewhere): ``render`` draws one expander and calls
the same service as the CLI, so the dashboard and ``schedule advise`` never disagree.
"""

from __future__ import annotations

from typing import Any


def advice_markdown(zone: str | None, duration_h: float, deadline_h: float,
                    interruptible: bool, trace: str | None = None) -> str:
    """The advice paragraph, or why there is none (never raises for a bad request)."""
    from carbonpipe.scheduling.policies import ScheduleError
    from carbonpipe.scheduling.service import AdviceRequest, advise

    if not 0 < duration_h <= deadline_h:
        return "Pick a duration > 0 and a deadline at least as long."
    try:
        return advise(AdviceRequest(zone, duration_h * 3600.0, deadline_h * 3600.0,
                                    interruptible, trace)).text
    except (ScheduleError, ValueError, OSError) as exc:
        return f"No advice: {exc}"


def render(st: Any, default_zone: str | None) -> None:
    """One expander: zone, duration, deadline, interruptible -> the paragraph."""
    with st.expander("Scheduling advice: is it worth waiting?"):
        a, b, c, d = st.columns(4)
        zone = a.text_input("zone", value=default_zone or "GB", key="advice_zone")
        duration_h = b.number_input("duration (h)", 0.5, 240.0, 6.0, 0.5, key="advice_dur")
        deadline_h = c.number_input("deadline (h)", 0.5, 720.0, 24.0, 0.5, key="advice_dl")
        inter = d.checkbox("interruptible", key="advice_int")
        st.markdown(advice_markdown(zone or None, float(duration_h), float(deadline_h),
                                    bool(inter)))
