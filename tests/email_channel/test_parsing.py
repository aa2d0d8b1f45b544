"""email_channel.parsing on the hand-made samples (tests/email_channel/samples/README.md) and on edge cases.

Pure code: no database. Every expectation is the exact decoded string a person reads in the sample."""

import re
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from email_channel.parsing import (
    MailUnreadable,
    html_to_text,
    mail_parse,
    reply_text,
    sanitize_html,
)
from servicedesk.mailthread import REPLY_MARKER

SAMPLES = Path(__file__).resolve().parent / "samples"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def parse(name: str):
    return mail_parse(sample(name))


def header_date(name: str):
    """The sample's Date header read independently of the parser."""
    raw = sample(name).decode("latin-1")
    return parsedate_to_datetime(re.search(r"^Date: (.+)$", raw, re.MULTILINE).group(1))


def test_samples_have_one_line_ending_each():
    for path in SAMPLES.glob("*.eml"):
        data = path.read_bytes()
        assert b"\r\n" not in data or data.count(b"\n") == data.count(b"\r\n"), path.name


def test_thunderbird_multipart_alternative_takes_the_flowed_plain_text():
    mail = parse("multipart_alternative.eml")
    assert mail.from_address == "juergen.mueller@example.org"
    assert mail.from_name == "Jürgen Müller"
    assert mail.subject == "Drucker im 2. Stock druckt nur leere Seiten – bitte prüfen"
    assert mail.to == ["helpdesk@example.com"]
    assert mail.message_id == "5b8c1d2e-7f3a-4c1e-9d2b-1a2b3c4d5e6f@example.org"
    assert mail.date == header_date("multipart_alternative.eml") and mail.date.tzinfo is not None
    # format=flowed: the soft line break after "nur noch " is joined
    assert ("der Drucker im 2. Stock (Raum 2.14) druckt seit heute früh nur noch leere Seiten. "
            "Tonerstand laut Display: 80 %.") in mail.text
    assert "\n-- \nJürgen Müller · Buchhaltung" in mail.text
    assert "<b>80 %</b>" in mail.html and "<meta" not in mail.html
    assert mail.parts == [] and mail.auto == ""
    assert reply_text(mail.text) == ("Hallo zusammen,\n\nder Drucker im 2. Stock (Raum 2.14) druckt seit heute "
                                     "früh nur noch leere Seiten. Tonerstand laut Display: 80 %.\n\nGrüße\nJürgen")


def test_outlook_html_only_windows_1252_gives_text_from_the_sanitised_html():
    mail = parse("html_only.eml")
    assert mail.from_name == "Renée O’Brien"
    assert mail.from_address == "renee.obrien@example.net"
    assert mail.subject == "VPN – “authentication failed”"
    assert mail.text.startswith("Hello,\n\nThe VPN client says “authentication failed” since this morning – the "
                                "expense report (€ 1.250) is due today. Café Wi-Fi or office, same result.")
    assert "See the status page <https://vpn.example.net/status> and this." in mail.text
    assert mail.text.endswith("Thanks,\n\nRenée O’Brien")
    assert "font-family" not in mail.text and "mso" not in mail.text
    # the tracking pixel loses its remote src, the javascript: link its href; the real link stays
    assert "tracking.example.net" not in mail.html
    assert "javascript" not in mail.html
    assert '<a href="https://vpn.example.net/status" rel="noopener noreferrer">the status page</a>' in mail.html
    assert "<style" not in mail.html and "style=" not in mail.html and "class=" not in mail.html
    # Exchange puts X-Auto-Response-Suppress on a person's mail too: alone it is no sign of machine mail
    assert mail.headers["X-Auto-Response-Suppress"] == "All"
    assert mail.auto == ""


def test_attachments_inline_cid_image_and_rfc2231_filename():
    mail = parse("attachments.eml")
    assert mail.text == "Hallo,\n\ndie Rechnung für März fehlt im Portal, siehe Anhang und Screenshot.\n\nAnna"
    assert mail.cc == ["anna.schmidt@example.org"]
    assert mail.reply_to == ["buchhaltung@example.org"]
    assert [(p.filename, p.content_type, p.inline, p.content_id) for p in mail.parts] == [
        ("logo.png", "image/png", True, "part1.Xy7Qm2Lp.Tr4Vb8Nc@example.org"),
        ("Rechnung März 2025.pdf", "application/pdf", False, ""),
        ("Bildschirmfoto vom 2025-03-04.png", "image/png", False, ""),
    ]
    logo, invoice, screenshot = mail.parts
    assert logo.payload.startswith(b"\x89PNG\r\n\x1a\n") and screenshot.payload.startswith(b"\x89PNG")
    assert invoice.payload.startswith(b"%PDF-1.4") and invoice.payload.rstrip().endswith(b"%%EOF")
    assert b"Invoice 2025-0042" in invoice.payload
    # the HTML keeps the cid: reference that the agent page resolves to the inline part
    assert 'src="cid:part1.Xy7Qm2Lp.Tr4Vb8Nc@example.org"' in mail.html


def test_iso_8859_1_quoted_printable():
    mail = parse("iso_8859_1.eml")
    assert mail.from_name == "François Lefèvre"
    assert mail.subject == "Écran de connexion : « mot de passe expiré »"
    assert mail.text == (
        "Bonjour,\n\ndepuis la mise à jour de lundi, l'écran de connexion affiche « mot de passe expiré »\n"
        "alors que je l'ai changé vendredi. Ça bloque toute l'équipe comptabilité.\n\n"
        "Merci d'avance,\nFrançois Lefèvre"
    )


def test_iso_2022_jp():
    mail = parse("iso_2022_jp.eml")
    assert mail.from_name == "山田 花子"
    assert mail.subject == "会議室のプロジェクターが映りません"
    assert mail.message_id == "20250306100511.A1B2.C3D4E5F6@example.jp"
    assert mail.text == ("ヘルプデスク御中\n\nお世話になっております。経理部の山田です。\n"
                         "会議室Ａのプロジェクターが映りません。\n\nよろしくお願いいたします。\n山田 花子")


def test_koi8_r():
    mail = parse("koi8_r.eml")
    assert mail.from_name == "Иван Петров"
    assert mail.subject == "Не работает принтер"
    assert mail.text == "Здравствуйте!\n\nНе работает принтер в бухгалтерии.\n\nС уважением,\nИван Петров"


def test_unknown_charset_and_raw_8bit_subject_fall_back_without_raising():
    mail = parse("broken_charset.eml")
    assert mail.subject == "Fehler in der Übersicht"
    assert mail.text == "Die Übersicht lädt nicht."


def test_inline_forward_is_kept_whole_by_reply_text():
    mail = parse("forwarded.eml")
    assert mail.subject == "Fwd: Zugang zum Lager-System"
    assert mail.in_reply_to == ["CAF7p1x9Qw3eR5tY7uI9oP1aS3dF5gH7jK9lZ1xC3vB5nM7@mail.example.com"]
    assert "---------- Forwarded message ---------\nFrom: Sabine Krüger <sabine.krueger@example.com>" in mail.text
    new = reply_text(mail.text)
    assert new.startswith("Bitte für Frau Krüger einrichten, siehe unten.")
    assert new.endswith("ich brauche ab Montag Lesezugriff auf das Lager-System.\n\nDanke!\nSabine")


def test_forward_as_attachment_is_an_eml_named_by_its_subject():
    mail = parse("forwarded_attachment.eml")
    assert mail.text == "Ist das Phishing? Die Mail kam heute morgen."
    assert [(p.filename, p.content_type, p.inline) for p in mail.parts] == [
        ("Verdächtige Mail – Passwort abgelaufen.eml", "message/rfc822", False)]
    inner = mail_parse(mail.parts[0].payload)
    assert inner.from_address == "it-support@examp1e-mail.net"
    assert inner.subject == "Verdächtige Mail – Passwort abgelaufen"
    assert inner.text.startswith("Your password expires today.")


def test_exchange_out_of_office_is_an_auto_reply():
    mail = parse("out_of_office.eml")
    assert mail.auto == "auto-reply"
    assert mail.subject == "Automatic reply: [INC0001001] Printer prints blank pages"
    assert mail.in_reply_to == ["outbox.42.1741082520@servicedesk.example.com"]
    assert mail.references == ["sd.incident.1001.5f2c9a8e41@servicedesk.example.com",
                               "outbox.42.1741082520@servicedesk.example.com"]


def without_header(raw: bytes, name: bytes) -> bytes:
    return re.sub(rb"(?m)^" + name + rb":.*\n", b"", raw)


def test_suppress_header_counts_only_with_another_sign():
    raw = without_header(sample("out_of_office.eml"), b"Auto-Submitted")
    # X-Auto-Response-Suppress + an out-of-office subject: auto-reply
    assert mail_parse(raw).auto == "auto-reply"
    # the same header with an ordinary subject: a person's mail
    ordinary = raw.replace(b"Subject: Automatic reply: ", b"Subject: Re: ")
    assert mail_parse(ordinary).auto == ""
    # an out-of-office subject alone (a person writing about their leave) is not machine mail either
    assert mail_parse(without_header(raw, b"X-Auto-Response-Suppress")).auto == ""
    # X-Autoreply alone is an autoresponder's own mark
    assert mail_parse(ordinary.replace(b"MIME-Version", b"X-Autoreply: yes\nMIME-Version", 1)).auto == "auto-reply"
    # Auto-Submitted: no says a person sent it
    assert mail_parse(ordinary.replace(b"MIME-Version", b"Auto-Submitted: no\nMIME-Version", 1)).auto == ""


def test_bounce_delivery_status_report():
    mail = parse("bounce.eml")
    assert mail.auto == "bounce"
    assert mail.from_address == "mailer-daemon@mx1.example.com"
    assert mail.text.startswith("This is the mail system at host mx1.example.com.")
    assert [(p.filename, p.content_type) for p in mail.parts] == [
        ("delivery-status-1.txt", "message/delivery-status"), ("rfc822-headers-2.txt", "text/rfc822-headers")]
    assert b"Status: 5.1.1" in mail.parts[0].payload
    assert b"X-Servicedesk-Ticket: INC0001001" in mail.parts[1].payload


@pytest.mark.parametrize("change, auto", [
    # each sign of a bounce alone
    ((b"Content-Type: multipart/report; report-type=delivery-status;", b"Content-Type: multipart/mixed;"),
     "bounce"),  # still From MAILER-DAEMON
    ((b"From: MAILER-DAEMON@mx1.example.com (Mail Delivery System)", b"From: Postmaster <postmaster@example.com>"),
     "bounce"),  # still the report
])
def test_bounce_signs(change, auto):
    raw = without_header(sample("bounce.eml"), b"Auto-Submitted")
    assert mail_parse(raw.replace(*change)).auto == auto


def test_empty_return_path_alone_is_a_bounce():
    raw = (b"Return-Path: <>\nFrom: Some System <system@example.com>\nTo: helpdesk@example.com\n"
           b"Subject: Hello\nMessage-ID: <a@b>\n\nhi\n")
    assert mail_parse(raw).auto == "bounce"
    assert mail_parse(raw.replace(b"Return-Path: <>", b"Return-Path: <system@example.com>")).auto == ""


def test_bulk_and_list():
    bulk = parse("bulk.eml")
    assert bulk.auto == "bulk"
    assert bulk.subject == "This week: 5 things your service desk should automate"
    assert "news.example.biz/track" not in bulk.html  # the open-tracking pixel has no src left
    assert parse("list.eml").auto == "list"
    assert parse("list.eml").text == "Samstag 06:00–08:00 Wartung am Storage."
    unsubscribe_only = without_header(without_header(sample("list.eml"), b"Precedence"), b"List-Id")
    assert mail_parse(unsubscribe_only).auto == "list"


def test_gmail_reply():
    mail = parse("reply_gmail.eml")
    assert mail.subject == "Re: [INC0001001] Printer prints blank pages"
    assert mail.in_reply_to == ["outbox.42.1741082520@servicedesk.example.com"]
    assert mail.references == ["sd.incident.1001.5f2c9a8e41@servicedesk.example.com",
                               "outbox.42.1741082520@servicedesk.example.com"]
    assert REPLY_MARKER in mail.text
    expected = "Thanks – it prints again after the restart. You can close it.\n\nJane"
    assert reply_text(mail.text) == expected
    # the HTML alternative gives the same new text (the quote is a <blockquote>)
    assert reply_text(html_to_text(mail.html)) == expected


def test_outlook_reply():
    mail = parse("reply_outlook.eml")
    assert mail.cc == ["lead@example.net"]
    assert reply_text(mail.text) == "Hi,\n\nit still happens after the restart – on both floors.\n\nRegards\nMark"
    assert reply_text(html_to_text(mail.html)) == (
        "Hi,\n\nit still happens after the restart – on both floors.\n\nRegards\n\nMark")


@pytest.mark.parametrize("text, new", [
    # Apple Mail (iOS): attribution inside the quote
    ("Yes, that fixed it.\n\nSent from my iPhone\n\n> On 4 Mar 2025, at 10:02, Servicedesk "
     "<helpdesk@example.com> wrote:\n> \n> ## Reply above this line ##\n> Please restart.\n",
     "Yes, that fixed it.\n\nSent from my iPhone"),
    # Apple Mail (macOS): attribution line, then the quote
    ("Done, thanks!\n\n> On 4. Mar 2025, at 10:02, Servicedesk <helpdesk@example.com> wrote:\n>\n> Please.\n",
     "Done, thanks!"),
    # Thunderbird: "On <date>, <name> wrote:" then ">" quote, signature after it
    ("Still broken.\n\nOn 04.03.25 10:02, Servicedesk wrote:\n> ## Reply above this line ##\n>\n> Please.\n"
     "\n-- \nJürgen\n", "Still broken."),
    # Thunderbird in German
    ("Geht wieder.\n\nAm 04.03.25 um 10:02 schrieb Servicedesk:\n> Bitte neu starten.\n", "Geht wieder."),
    # Outlook plain text with the underscore rule
    ("Works now.\n\n________________________________\nFrom: Servicedesk <helpdesk@example.com>\n"
     "Sent: Tuesday, March 4, 2025 10:02 AM\nTo: Mark\nSubject: [INC0001001] x\n\nPlease restart.\n",
     "Works now."),
    # older Outlook
    ("Ok.\n\n-----Original Message-----\nFrom: Servicedesk\nSent: Tuesday\n\nPlease.\n", "Ok."),
    # our marker without any attribution (a client that quotes without saying who wrote)
    ("Top reply\n" + REPLY_MARKER + "\nhistory\n", "Top reply"),
    # interleaved answers keep their quotes; the signature goes
    ("> first question?\nanswer one\n\n> second?\nanswer two\n\n-- \nsig\n",
     "> first question?\nanswer one\n\n> second?\nanswer two"),
    # nothing to cut
    ("Just a note.\nSecond line.", "Just a note.\nSecond line."),
    # an Outlook forward with nothing above it is kept whole rather than emptied
    ("From: Jane <jane@example.com>\nSent: Monday\nTo: Mark\nSubject: x\n\nbody\n",
     "From: Jane <jane@example.com>\nSent: Monday\nTo: Mark\nSubject: x\n\nbody"),
    # Apple Mail forward kept whole
    ("FYI\n\nBegin forwarded message:\n\nFrom: Jane <jane@example.com>\nSubject: x\n\n> quoted in forward\n",
     "FYI\n\nBegin forwarded message:\n\nFrom: Jane <jane@example.com>\nSubject: x\n\n> quoted in forward"),
])
def test_reply_text(text, new):
    assert reply_text(text) == new


def test_reply_text_handles_crlf():
    assert reply_text("New text\r\n\r\nOn Mon, Jane wrote:\r\n> old\r\n") == "New text"


def test_sanitize_html():
    dirty = (
        '<html><head><title>Secret title</title><style>p{color:red}</style></head><body>'
        '<p style="color:red" onclick="steal()">Hi <script>alert(1)</script><b>bold</b></p>'
        '<a href="javascript:alert(1)">js</a><a href="https://ok.example/x" target="_top">ok</a>'
        '<a href="mailto:a@example.com">mail</a><a href="cid:x@y">cid link</a>'
        '<img src="https://tracker.example/p.gif"><img src="cid:logo@x"><img src="data:image/png;base64,iVBORw0=">'
        '<img src="data:text/html;base64,PHNjcmlwdD4="><iframe src="https://x.example"></iframe>'
        '<table border="1"><tr><td colspan="2">cell</td></tr></table></body></html>'
    )
    clean = sanitize_html(dirty)
    assert "Secret title" not in clean and "color" not in clean and "alert" not in clean
    assert "onclick" not in clean and "<script" not in clean and "<iframe" not in clean
    assert "<b>bold</b>" in clean
    assert '<a rel="noopener noreferrer">js</a>' in clean
    assert '<a href="https://ok.example/x" rel="noopener noreferrer">ok</a>' in clean
    assert 'href="mailto:a@example.com"' in clean
    assert 'href="cid:' not in clean
    assert "tracker.example" not in clean
    assert '<img src="cid:logo@x">' in clean
    assert '<img src="data:image/png;base64,iVBORw0=">' in clean
    assert "data:text/html" not in clean
    assert '<td colspan="2">cell</td>' in clean


def test_html_to_text():
    html = ('<div>Hi<br>there</div><ul><li>one</li><li>two</li></ul>'
            '<p>See <a href="https://x.example/a">the page</a> or <a href="https://x.example/b">'
            'https://x.example/b</a>.</p><blockquote><p>old</p><p>older</p></blockquote><p>end&nbsp;&amp; done</p>'
            '<style>p{}</style><table><tr><td>a</td><td>b</td></tr></table>')
    assert html_to_text(html) == (
        "Hi\nthere\n- one\n- two\n\nSee the page <https://x.example/a> or https://x.example/b.\n\n"
        "> old\n>\n> older\n\nend & done\n\na  b"
    )


def test_mail_without_from_subject_or_date_still_parses():
    mail = mail_parse(b"To: helpdesk@example.com\nX-Whatever: 1\n\nbody only\n")
    assert (mail.from_address, mail.from_name, mail.subject, mail.date, mail.message_id) == ("", "", "", None, "")
    assert mail.text == "body only"


def test_broken_values_do_not_raise():
    raw = (b"From: \"unclosed <jane@example.com\nTo: ,,, <>\nDate: the day after tomorrow\n"
           b"Subject: =?utf-8?B?not base64!?= ok\nMessage-ID: no-brackets@example.com\n"
           b"References: <a@x> garbage <b@x>\nContent-Type: multipart/mixed; boundary=\"zz\"\n\n"
           b"--zz\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
           b"SGFsbG8g\xff!!\n--zz\nContent-Type: application/octet-stream\n"
           b"Content-Disposition: attachment; filename=\"../../etc/passwd\"\n\nxyz\n")  # no closing boundary
    mail = mail_parse(raw)
    assert mail.date is None
    assert mail.message_id == "no-brackets@example.com"
    assert mail.references == ["a@x", "b@x"]
    assert mail.text.startswith("Hallo")
    assert [p.filename for p in mail.parts] == ["passwd"]


def test_encoded_word_attachment_name_and_unnamed_parts():
    raw = (b"From: a@example.com\nSubject: s\nContent-Type: multipart/mixed; boundary=b\n\n"
           b"--b\nContent-Type: text/plain\n\nsee attached\n"
           b"--b\nContent-Type: application/pdf; name=\"=?UTF-8?Q?Angebot_f=C3=BCr_Q2.pdf?=\"\n"
           b"Content-Disposition: attachment\nContent-Transfer-Encoding: base64\n\nJVBERi0=\n"
           b"--b\nContent-Type: image/jpeg\nContent-Transfer-Encoding: base64\n\n/9j/\n--b--\n")
    mail = mail_parse(raw)
    assert mail.text == "see attached"
    assert [(p.filename, p.payload) for p in mail.parts] == [
        ("Angebot für Q2.pdf", b"%PDF-"), ("image-2.jpg", b"\xff\xd8\xff")]


@pytest.mark.parametrize("raw", [b"", b"   \n", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"just some words\n"])
def test_non_mail_is_unreadable(raw):
    with pytest.raises(MailUnreadable):
        mail_parse(raw)


def test_mbox_from_line_is_tolerated():
    raw = b"From jane@example.com Tue Mar  4 10:00:00 2025\n" + sample("iso_8859_1.eml")
    assert mail_parse(raw).subject == "Écran de connexion : « mot de passe expiré »"


def test_an_empty_plain_alternative_falls_back_to_the_html():
    raw = (b"From: a@example.com\nSubject: s\nContent-Type: multipart/alternative; boundary=b\n\n"
           b"--b\nContent-Type: text/plain; charset=utf-8\n\n\n"
           b"--b\nContent-Type: text/html; charset=utf-8\n\n<p>Only <b>here</b></p>\n--b--\n")
    assert mail_parse(raw).text == "Only here"


def test_nothing_that_comes_out_carries_nul_or_other_controls():
    from email_channel.parsing import clean_text

    raw = (b"From: =?utf-8?q?Al=00ice?= <alice@example.com>\r\nTo: desk@example.com\r\nCc: =?utf-8?q?B=1Bob?= "
           b"<bob@example.com>\r\nSubject: =?utf-8?q?hi=00there=07?=\r\nMessage-ID: <a=00b@example.com>\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n\r\nline\x00one\ttab\r\nline two\x0c\r\n")

    parsed = mail_parse(raw)

    assert (parsed.subject, parsed.from_name, parsed.text) == ("hithere", "Alice", "lineone\ttab\nline two")
    strings = [parsed.message_id, parsed.subject, parsed.from_name, parsed.text, *parsed.headers.values()]
    assert not any(ch in value for value in strings for ch in "\x00\x07\x0c\x1b\r")
    assert clean_text("a\x00b\r\nc\x1fd\te\udc80") == "ab\ncd\te"
