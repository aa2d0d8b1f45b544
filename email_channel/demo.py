"""Demo data of the email channel (filled in below)."""


def seed_email() -> str:
    return "email channel: nothing yet"
