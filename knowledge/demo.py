"""The knowledge base's demo data: a few categories and eight published articles answering what requesters ask
most, linked to the kernel's demo services. Registered as this app's `seed_demo` step in knowledge.plugin.
Idempotent: an article whose slug exists is left as it is (an admin may have edited it)."""

from django.contrib.auth import get_user_model
from django.db import transaction

from knowledge.models import Article, Audience, Category
from knowledge.services import article_create, article_publish
from servicedesk.models import Service

CATEGORIES = [("Network and remote access", "network", 10), ("Accounts and passwords", "accounts", 20),
              ("E-mail and phones", "email", 30), ("Printing", "printing", 40), ("Laptops", "laptops", 50)]

# slug, title, category slug, services, audience, body (Markdown)
ARTICLES = [
    ("connect-to-the-vpn", "Connect to the VPN from home", "network", ["VPN"], Audience.PUBLIC, """
Working from home or travelling? The VPN gives you access to internal sites, file shares and the ERP.

## Before you start
- Your laptop must be a company laptop with the **Northwind VPN** client installed (it is, unless you removed it).
- You need your normal sign-in and your authenticator app.

## Connect
1. Open **Northwind VPN** from the Start menu (Windows) or the menu bar (macOS).
2. Choose the gateway **vpn.example.com** (the client picks the nearest one).
3. Sign in with your usual username and password, then approve the prompt in the authenticator app.
4. The icon turns green: you are connected.

## If it does not connect
| Message | What to do |
|---|---|
| *Authentication failed* | Check Caps Lock; if your password expired, reset it first (see **Reset your password**). |
| *Gateway unreachable* | Your home network may block VPN: try another network or your phone's hotspot. |
| *Certificate error* | Restart the laptop on the office network once, or raise an incident. |

Still stuck? [Report an issue](/portal/report/) and choose the **VPN** service.
"""),
    ("reset-your-password", "Reset your password", "accounts", ["E-mail"], Audience.PUBLIC, """
You can reset your own password at any time, also when it has expired.

1. Go to the sign-in page and choose **Forgot password?**
2. Enter your work e-mail address.
3. Approve the prompt in your authenticator app, or enter the code we text to your phone.
4. Choose a new password: at least **12 characters**, not one of your last five.

After a reset, sign in again on your phone's mail app and on the VPN client: they still remember the old
password and may lock your account after a few failed attempts.

> Locked out? Accounts unlock by themselves after 15 minutes. If it is urgent, call the service desk.
"""),
    ("account-locked", "My account is locked", "accounts", [], Audience.PUBLIC, """
Your account locks after **five wrong passwords in a row**, often because a phone or an old laptop keeps
trying an old password.

- Wait 15 minutes: the lock lifts by itself.
- Then update the password on every device that uses it (phone mail, tablet, VPN client).
- If it locks again straight away, raise an incident: an agent can see which device is trying.
"""),
    ("connect-to-the-office-wi-fi", "Connect to the office Wi-Fi", "network", ["Wi-Fi"], Audience.PUBLIC, """
There are two networks in every office:

| Network | For | How to join |
|---|---|---|
| **Northwind** | Company laptops and phones | Sign in with your work account (username and password). |
| **Northwind-Guest** | Visitors and personal devices | Ask reception for today's code. |

### Company laptop does not connect
1. Forget the **Northwind** network and join it again.
2. Make sure the date and time of the laptop are right (certificates fail otherwise).
3. Restart the laptop.

Wi-Fi slow in one meeting room only? Report it with the room name: the access point may be down.
"""),
    ("set-up-email-on-your-phone", "Set up work e-mail on your phone", "email", ["E-mail"], Audience.PUBLIC, """
Work e-mail on your phone uses the **Outlook** app (iPhone and Android).

1. Install **Microsoft Outlook** from your phone's app store.
2. Open it, enter your work e-mail address and choose **Add account**.
3. Sign in with your work password and approve the authenticator prompt.
4. Accept the request to protect company data: it asks for a screen lock (PIN or fingerprint).

The phone's built-in mail app is **not supported**: it cannot apply the company's protection and will be
refused.

Changed your password? Outlook asks for the new one the next time it syncs.
"""),
    ("add-a-printer", "Add a printer and print", "printing", ["Printing"], Audience.PUBLIC, """
All office printers are **follow-me** printers: print to one queue, collect at any printer.

## Add the queue (once)
- **Windows:** Settings → Bluetooth & devices → Printers & scanners → *Add device* → **Northwind-FollowMe**.
- **macOS:** System Settings → Printers & Scanners → *Add Printer* → **Northwind-FollowMe**.

## Print
1. Print as usual to **Northwind-FollowMe**.
2. At any printer, tap your badge on the reader.
3. Choose your document and press **Print**.

Jobs not collected within 24 hours are deleted.

**Paper jam or out of toner?** Follow the picture on the printer's screen; if it is still jammed, report it
with the printer's name (on the sticker at the front).
"""),
    ("laptop-running-slow", "Your laptop is slow", "laptops", ["Laptops"], Audience.PUBLIC, """
Before raising an incident, try these in order; together they fix most slow laptops:

1. **Restart** (not just close the lid): updates often wait for it.
2. Close browser tabs you do not need: each can use hundreds of megabytes.
3. Check free disk space: below 10 % free, Windows slows down. Empty *Downloads* and the recycle bin.
4. Run **Software Center → Updates** and install what is pending.

Still slow after a restart? Report it and say since when, and whether it is slow all the time or only in one
application.
"""),
    ("vpn-gateway-failover", "VPN gateway failover (agents)", "network", ["VPN"], Audience.AGENTS, """
When **vpn-gw-1** is down, users are moved to **vpn-gw-2** automatically within two minutes.

- Check the gateway status in monitoring before escalating VPN incidents.
- If both gateways are down, declare a **major incident** and assign it to the *Network* team.
- Users on the old client (before 5.2) do not fail over: ask them to reconnect.
"""),
]


def seed_articles() -> str:
    author = get_user_model().objects.filter(username="agent").first()
    categories = {}
    for name, slug, order in CATEGORIES:
        categories[slug], _ = Category.objects.get_or_create(slug=slug, defaults={"name": name, "order": order})
    services = {s.name: s for s in Service.objects.all()}
    existing = set(Article.objects.filter(slug__in=[a[0] for a in ARTICLES]).values_list("slug", flat=True))
    created = 0
    for slug, title, category, service_names, audience, body in ARTICLES:
        if slug in existing:
            continue
        with transaction.atomic():
            article = article_create(
                title=title, body=body.strip() + "\n", author=author, category=categories[category],
                audience=audience, slug=slug, services=[services[n] for n in service_names if n in services],
            )
            article_publish(article_id=article.id, actor=author)
        created += 1
    return f"{created} article{'s' if created != 1 else ''} added, {len(existing)} already there"


def seed_deflections(*, days: int = 25, seed: int = 2026) -> int:
    """A few weeks of articles suggested on the portal's "Report an issue" page and what came of them (about
    two in five solved the problem), once: the deflection rate of the insights dashboard reads these."""
    import random
    from datetime import timedelta

    from django.utils import timezone

    from knowledge.models import Deflection, DeflectionOutcome
    from servicedesk.demo import demo_requesters

    if Deflection.objects.exists():
        return 0
    rng = random.Random(seed)
    people = demo_requesters()
    articles = list(Article.objects.filter(slug__in=[a[0] for a in ARTICLES]))
    now = timezone.now()
    outcomes = [DeflectionOutcome.SOLVED] * 4 + [DeflectionOutcome.SUBMITTED] * 5 + [DeflectionOutcome.OPENED]
    rows = []
    for _ in range(days * 4):
        at = now - timedelta(minutes=rng.randint(10, days * 24 * 60))
        article = rng.choice(articles)
        rows.append(Deflection(user=rng.choice(people), article=article, query=article.title[:60],
                               outcome=rng.choice(outcomes), created_at=at, updated_at=at))
    Deflection.objects.bulk_create(rows)
    return len(rows)
