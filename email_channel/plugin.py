"""What the email channel adds to the kernel (servicedesk.registry): its demo step. Imported once by
EmailChannelConfig.ready(). The channel creates and replies to tickets only through the registry's TicketKind,
so no practice app imports it."""

from servicedesk.registry import DemoStep, registry


def _seed(options: dict) -> str:
    from email_channel.demo import seed_email

    return seed_email()


def register() -> None:
    registry.demo_step(DemoStep(app="email_channel", seed=_seed, after=("incidents", "requests_app")))
