# The IMAP tests' fixtures: a real Dovecot per test and mailboxes pointed at it.
from tests.email_channel.imap_fixtures import dovecot, make_mailbox, trust_dovecot  # noqa: F401
