"""An SMTP server on loopback for notify-svc's tests: aiosmtpd (PyPI) receiving mail and
writing each message, parsed with the standard library, as one JSON line to a file.

    python3 smtp_sink.py PORT OUT.jsonl [--auth USER:PASS]

Each record also says when it arrived (`received_at`, seconds since the epoch); the mail
benchmark measures with it.

Prints one line, "ready", once it accepts connections. With --auth it requires AUTH
(PLAIN or LOGIN, allowed without TLS on loopback) with that user and password.
"""

import asyncio
import email
import email.policy
import json
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, out):
        self.out = out

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "message_id": str(message["Message-ID"]),
            "text": text.get_content() if text is not None else "",
            "html": html.get_content() if html is not None else "",
            "auth": session.authenticated,
            "received_at": time.time(),
        }
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return "250 OK"


def main():
    port = int(sys.argv[1])
    out = sys.argv[2]
    credentials = None
    if len(sys.argv) > 4 and sys.argv[3] == "--auth":
        credentials = tuple(sys.argv[4].split(":", 1))

    def authenticator(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        given = (auth_data.login.decode(), auth_data.password.decode())
        return AuthResult(success=given == credentials)

    kwargs = {}
    if credentials is not None:
        kwargs = {
            "authenticator": authenticator,
            "auth_required": True,
            "auth_require_tls": False,
        }
    controller = Controller(Sink(out), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.run(asyncio.Event().wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
