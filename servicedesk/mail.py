"""The local run's mail backend: each message printed as a person reads it, not as MIME.

Django's console backend prints the raw message: encoded subject lines (=?utf-8?q?...), the whole HTML
alternative and base64 parts. This one prints the headers that matter, decoded, the plain-text body, and
one line naming each HTML alternative and attachment. Used when no EMAIL_HOST is set.
"""

from django.core.mail.backends.console import EmailBackend

RULE = "-" * 78


class ReadableConsoleBackend(EmailBackend):
    def write_message(self, message):
        message.message()  # builds the MIME message: bad headers fail here exactly as they would over SMTP
        lines = [f"Mail from {message.from_email}", f"To:      {', '.join(message.to)}"]
        if message.cc:
            lines.append(f"Cc:      {', '.join(message.cc)}")
        if message.reply_to:
            lines.append(f"Reply-To: {', '.join(message.reply_to)}")
        lines += [f"Subject: {message.subject}", "", message.body.rstrip("\n"), ""]
        for alternative in getattr(message, "alternatives", []):
            content, mimetype = alternative[0], alternative[1]
            lines.append(f"[{mimetype} alternative, {len(content)} characters, not shown]")
        for attachment in message.attachments:
            if isinstance(attachment, tuple | list):
                filename, content, mimetype = attachment[0], attachment[1], attachment[2]
                lines.append(f"[attachment {filename or 'unnamed'} ({mimetype or 'unknown type'}, "
                             f"{len(content or '')} bytes)]")
            else:  # a MIMEBase part
                lines.append(f"[attachment {attachment.get_filename() or 'unnamed'} "
                             f"({attachment.get_content_type()})]")
        lines.append(RULE)
        self.stream.write("\n".join(lines) + "\n")
