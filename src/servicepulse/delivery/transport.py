"""How a finished message leaves: a local outbox or an SMTP server.

A transport either accepts a message (returning the server's reply, which names the
message in the server's own log) or raises one of three errors, because each calls
for a different reaction:

- TemporaryDeliveryError: nothing was handed over (4xx reply, refused connection,
  timeout before the message body); trying again later is safe.
- PermanentDeliveryError: the server refused for good (5xx, unknown mailbox, failed
  login); trying again sends nothing, a person must fix the address or the account.
- InDoubtDeliveryError: the body was handed over but the server's final reply never
  came; the message may or may not be on its way. Re-sending risks a duplicate, so
  the data team is told instead.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from servicepulse.connections import airflow_connection
from servicepulse.delivery.outbox import write_to_outbox
from servicepulse.errors import PermanentError, RetryableError, ServicePulseError
from servicepulse.settings import Settings, SmtpSettings

log = logging.getLogger(__name__)


class DeliveryError(ServicePulseError):
    pass


class TemporaryDeliveryError(DeliveryError, RetryableError):
    """The mail server could not take it now; the next try may."""


class PermanentDeliveryError(DeliveryError, PermanentError):
    """The mail server refused it for good."""


class InDoubtDeliveryError(DeliveryError, PermanentError):
    """The hand-over started and its outcome is unknown: a person settles it."""


class Transport(Protocol):
    name: str

    def send(self, message: EmailMessage, sender: str, recipient: str,
             folder: tuple[str, ...], stem: str,
             on_handover: Callable[[], None] | None = None) -> str:
        """Hand ``message`` over for ``recipient``; return the accepting reply.
        ``on_handover`` is called just before the step after which the message may
        have reached the recipient (a lost answer from then on means in doubt)."""
        ...


class OutboxTransport:
    """The embedded default: one .eml per message under output/outbox/<folder>/."""
    name = "outbox"

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox

    def send(self, message, sender, recipient, folder, stem, on_handover=None):
        path = write_to_outbox(self.outbox, folder, stem, message, on_handover=on_handover)
        return f"written to {path}"


@dataclass(frozen=True)
class SmtpEndpoint:
    host: str
    port: int
    security: str
    login: str | None
    password: str | None


def smtp_endpoint(config: SmtpSettings, environ: dict[str, str] | None = None) -> SmtpEndpoint:
    """Where and as whom to connect: the Airflow connection when there is one (its
    host, port, login, password and extra ``security`` win), else the settings and
    $SERVICEPULSE_SMTP_USER / $SERVICEPULSE_SMTP_PASSWORD."""
    environ = os.environ if environ is None else environ
    endpoint = SmtpEndpoint(config.host, config.port, config.security,
                            environ.get("SERVICEPULSE_SMTP_USER") or None,
                            environ.get("SERVICEPULSE_SMTP_PASSWORD") or None)
    connection = airflow_connection(config.connection_id) if config.connection_id else None
    if connection is None:
        return endpoint
    extra = connection.extra_dejson or {}
    security = extra.get("security", endpoint.security)
    if security not in ("starttls", "ssl", "none"):
        raise PermanentDeliveryError(
            f"Airflow connection {config.connection_id!r}: extra 'security' must be "
            f"starttls, ssl or none, got {security!r}")
    return SmtpEndpoint(connection.host or endpoint.host, connection.port or endpoint.port,
                        security, connection.login or endpoint.login,
                        connection.password or endpoint.password)


class SmtpTransport:
    name = "smtp"

    def __init__(self, config: SmtpSettings, endpoint: SmtpEndpoint,
                 ca_file: Path | None = None) -> None:
        self.config, self.endpoint, self.ca_file = config, endpoint, ca_file

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def _connect(self) -> smtplib.SMTP:
        e, timeout = self.endpoint, self.config.timeout_seconds
        if e.security == "ssl":
            smtp = smtplib.SMTP_SSL(e.host, e.port, timeout=timeout, context=self._tls_context())
        else:
            smtp = smtplib.SMTP(e.host, e.port, timeout=timeout)
        smtp.ehlo()
        if e.security == "starttls":
            smtp.starttls(context=self._tls_context())
            smtp.ehlo()
        if e.login:
            smtp.login(e.login, e.password or "")
        return smtp

    def send(self, message, sender, recipient, folder, stem, on_handover=None):
        where = f"SMTP {self.endpoint.host}:{self.endpoint.port}"
        body_sent = False
        payload = message.as_bytes()  # a message that cannot be written fails here, early
        try:
            smtp = self._connect()
            try:
                code, reply = smtp.mail(sender)
                _check(code, reply, f"{where} refused sender {sender}")
                code, reply = smtp.rcpt(recipient)
                _check(code, reply, f"{where} refused recipient {recipient}")
                if on_handover:
                    on_handover()
                body_sent = True
                code, reply = smtp.data(payload)
                _check(code, reply, f"{where} refused the message for {recipient}")
            finally:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()
        except DeliveryError:
            raise
        except (smtplib.SMTPNotSupportedError, ssl.SSLCertVerificationError) as exc:
            raise PermanentDeliveryError(f"{where}: {exc} (check smtp.security and "
                                         "smtp.ca_file)") from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentDeliveryError(f"{where}: login failed ({exc.smtp_code} "
                                         f"{_text(exc.smtp_error)})") from exc
        except smtplib.SMTPResponseException as exc:
            _check(exc.smtp_code, exc.smtp_error, f"{where}")
            raise TemporaryDeliveryError(f"{where}: {exc}") from exc
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # Sent the body but lost the line before the final reply: maybe delivered.
            if body_sent:
                raise InDoubtDeliveryError(
                    f"{where}: connection lost after the message for {recipient} was "
                    f"handed over, before the server confirmed it ({exc or type(exc).__name__})"
                ) from exc
            raise TemporaryDeliveryError(f"{where}: {type(exc).__name__}: {exc}") from exc
        return f"{code} {_text(reply)}"


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _check(code: int, reply: bytes | str, what: str) -> None:
    if 200 <= code < 400:
        return
    error = PermanentDeliveryError if 500 <= code < 600 else TemporaryDeliveryError
    raise error(f"{what}: {code} {_text(reply)}")


def transport_for(settings: Settings) -> Transport:
    if settings.delivery.transport == "outbox":
        return OutboxTransport(settings.output_path / "outbox")
    smtp = settings.delivery.smtp
    return SmtpTransport(smtp, smtp_endpoint(smtp),
                         settings.path(smtp.ca_file) if smtp.ca_file else None)


__all__ = ["DeliveryError", "InDoubtDeliveryError", "OutboxTransport",
           "PermanentDeliveryError", "SmtpTransport", "TemporaryDeliveryError", "Transport",
           "smtp_endpoint", "transport_for"]
