def seed_monitoring() -> str:
    return "monitoring: nothing yet"
