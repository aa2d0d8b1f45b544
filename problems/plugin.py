"""What problem management adds to the kernel (servicedesk.registry). Imported once by ProblemsConfig.ready();
nothing in the kernel imports this app."""


def register() -> None:
    """Each part of issue 9 registers its contributions here (API routes, workspace section, ticket panels on
    incidents, search, demo step)."""
