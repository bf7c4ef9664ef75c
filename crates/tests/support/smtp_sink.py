"""An SMTP server on loopback for notify-svc's tests: aiosmtpd (PyPI) receiving mail and
writing each message, parsed with the standard library, as one JSON line to a file.

    python3 smtp_sink.py PORT OUT.jsonl [--auth USER:PASS | --raw]

Each record also says when it arrived (`received_at`, seconds since the epoch); the mail
benchmark measures with it. With --raw a record is only that and the message as received
(`raw`), unparsed, so the server keeps up with a benchmark.

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


class RawSink:
    def __init__(self, out):
        self.out = open(out, "a", encoding="utf-8")

    async def handle_DATA(self, server, session, envelope):
        record = {"received_at": time.time(), "raw": envelope.content.decode("latin-1")}
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()
        return "250 OK"


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
    raw = len(sys.argv) > 3 and sys.argv[3] == "--raw"
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
    handler = RawSink(out) if raw else Sink(out)
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.run(asyncio.Event().wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
