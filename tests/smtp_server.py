"""A real SMTP server on loopback (aiosmtpd) that counts what it accepts and can be
told to misbehave: refuse a mailbox for good (5xx), refuse for now (4xx), drop the
line after taking a message, demand STARTTLS and a login."""

from __future__ import annotations

import asyncio
import datetime
import email
import ipaddress
import socket
import ssl
import threading
from collections import Counter
from dataclasses import dataclass, field
from email import policy
from pathlib import Path
from typing import Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Catcher:
    """What the server saw, and how it should misbehave."""
    accepted: list[email.message.EmailMessage] = field(default_factory=list)
    rcpt_attempts: Counter = field(default_factory=Counter)
    logins: list[str] = field(default_factory=list)
    refuse_forever: dict[str, str] = field(default_factory=dict)  # address -> 5xx reply
    refuse_for_now: Counter = field(default_factory=Counter)      # address -> times
    drop_after_data: set[str] = field(default_factory=set)
    data_delay_seconds: float = 0.0
    # Hang (as a stuck server would) when this address is given at RCPT, or its
    # message at DATA, setting ``stalled`` so a test can kill the client right then.
    stall_at_rcpt: set[str] = field(default_factory=set)
    stall_at_data: set[str] = field(default_factory=set)
    stalled: threading.Event = field(default_factory=threading.Event)
    # Close the line at RCPT for this address this many times (before any message).
    drop_before_data: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def delivered(self) -> Counter:
        """Messages accepted per recipient address."""
        with self.lock:
            return Counter(m["X-Envelope-To"] for m in self.accepted)

    def messages_to(self, address: str) -> list[email.message.EmailMessage]:
        with self.lock:
            return [m for m in self.accepted if m["X-Envelope-To"] == address]

    # aiosmtpd handler hooks
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.stall_at_rcpt:
            self.stalled.set()
            await asyncio.sleep(120)
        with self.lock:
            self.rcpt_attempts[address] += 1
            if self.drop_before_data.get(address, 0) > 0:
                self.drop_before_data[address] -= 1
                server.transport.close()
                return "421 closing"
            if address in self.refuse_forever:
                return self.refuse_forever[address]
            if self.refuse_for_now[address] > 0:
                self.refuse_for_now[address] -= 1
                return "451 4.3.0 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if set(envelope.rcpt_tos) & self.stall_at_data:
            self.stalled.set()
            await asyncio.sleep(120)
        if self.data_delay_seconds:
            await asyncio.sleep(self.data_delay_seconds)  # sends overlap
        for address in envelope.rcpt_tos:
            message = email.message_from_bytes(envelope.content, policy=policy.default)
            message["X-Envelope-To"] = address
            with self.lock:
                self.accepted.append(message)
        if set(envelope.rcpt_tos) & self.drop_after_data:
            server.transport.close()  # took the message, never says so
            return "250 OK"
        return f"250 2.0.0 queued as Q{len(self.accepted)}"


class SmtpServer:
    def __init__(self, catcher: Catcher, tls_files: tuple[Path, Path] | None = None,
                 logins: dict[str, str] | None = None) -> None:
        self.catcher, self.port = catcher, free_port()
        options = {}
        if tls_files:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*map(str, tls_files))
            options.update(tls_context=context, require_starttls=True)
        if logins is not None:
            def authenticate(server, session, envelope, mechanism, auth_data):
                ok = isinstance(auth_data, LoginPassword) and \
                    logins.get(auth_data.login.decode()) == auth_data.password.decode()
                if ok:
                    catcher.logins.append(auth_data.login.decode())
                return AuthResult(success=ok, handled=False)
            options.update(authenticator=authenticate, auth_required=True,
                           auth_require_tls=bool(tls_files))
        self.controller = Controller(catcher, hostname="127.0.0.1", port=self.port,
                                     server_hostname="localhost", **options)

    def __enter__(self) -> Self:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()
