"""An SMTP server on loopback for notify-svc's tests: aiosmtpd (PyPI) receiving mail and
writing each message, parsed with the standard library, as one JSON line to a file.

    python3 smtp_sink.py PORT OUT.jsonl [--auth USER:PASS | --raw | --tls starttls|implicit DIR]

Each record also says when it arrived (`received_at`, seconds since the epoch); the mail
benchmark measures with it. With --raw a record is only that and the message as received
(`raw`), unparsed, so the server keeps up with a benchmark. With --tls it makes a private
CA and a certificate for 127.0.0.1 (the CA's certificate in DIR/ca.pem) and requires
STARTTLS, or speaks TLS from the first byte (implicit); records then say `tls: true`.

Prints one line, "ready", once it accepts connections. With --auth it requires AUTH
(PLAIN or LOGIN, allowed without TLS on loopback) with that user and password.
"""

import asyncio
import email
import email.policy
import json
import os
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
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "received_at": time.time(),
        }
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return "250 OK"


def tls_context(directory):
    """A CA and a server certificate for 127.0.0.1, made with `cryptography`."""
    import datetime
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "notify test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)  # noqa: E731
    with open(os.path.join(directory, "ca.pem"), "wb") as f:
        f.write(pem(ca))
    with open(os.path.join(directory, "server.pem"), "wb") as f:
        f.write(pem(cert))
    with open(os.path.join(directory, "server.key"), "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(
        os.path.join(directory, "server.pem"), os.path.join(directory, "server.key")
    )
    return context


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
    if len(sys.argv) > 5 and sys.argv[3] == "--tls":
        context = tls_context(sys.argv[5])
        if sys.argv[4] == "starttls":
            kwargs = {"tls_context": context, "require_starttls": True}
        else:
            kwargs = {"ssl_context": context}
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
