"""Demo data of insights: PLACEHOLDER until the rollup lands (insights.rollup)."""


def seed_insights() -> str:
    return "insights: nothing yet"
