"""Demo data of insights: the rollup of everything the other apps' demo steps made (their history spans
weeks), so the dashboard shows figures at once, and an improvement in the register."""

from insights.rollup import rollup_run


def seed_insights() -> str:
    days = rollup_run()
    return f"{days} days rolled up"
