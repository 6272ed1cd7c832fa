"""RFC 5322 messages with the report attached, written to a local outbox.

The embedded default does not talk to a mail server: each message is an ``.eml``
file that any mail client opens. One file per (report, period, recipient), so a
re-run replaces a message instead of queuing a second one.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr, formatdate
from pathlib import Path

from servicepulse.filenames import safe_name


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    maintype: str = "application"
    subtype: str = "pdf"


@dataclass(frozen=True)
class InlineImage:
    """An image the HTML body shows by ``cid:<cid>`` (RFC 2392): it travels inside the
    message, so the mail client shows it without fetching anything."""
    cid: str
    content: bytes
    subtype: str = "png"


def build_message(sender: str, recipients: list[tuple[str, str]], subject: str,
                  html_body: str, text_body: str, identity: str,
                  attachment: Attachment | None = None,
                  message_id: str | None = None,
                  also_attached: tuple[Attachment, ...] = (),
                  inline_images: tuple[InlineImage, ...] = ()) -> EmailMessage:
    """A text + HTML message to (name, address) recipients, the HTML with its
    ``inline_images`` (multipart/related), then ``attachment`` and ``also_attached``. The
    Message-ID is ``message_id`` when given (the send ledger's), else derived from
    ``identity`` and the attachment, so the same message keeps the same id."""
    message = EmailMessage(policy=SMTP)
    message["From"] = formataddr(("ServicePulse", sender))
    message["To"] = ", ".join(formataddr(recipient) for recipient in recipients)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    content = attachment.content if attachment else b""
    digest = message_id or hashlib.sha256(identity.encode() + content).hexdigest()[:32]
    message["Message-ID"] = f"<{digest}@servicepulse.local>"
    message.set_content(text_body)
    message.add_alternative(html_body, subtype="html")
    html_part = message.get_payload()[1]
    for image in inline_images:
        html_part.add_related(image.content, maintype="image", subtype=image.subtype,
                              cid=f"<{image.cid}>", disposition="inline",
                              filename=f"{image.cid.split('@')[0]}.{image.subtype}")
    if inline_images:
        html_part.set_param("type", "text/html")  # RFC 2387: the root part's type
    for item in ([attachment] if attachment else []) + list(also_attached):
        message.add_attachment(item.content, maintype=item.maintype,
                               subtype=item.subtype, filename=item.filename)
    return message


def write_to_outbox(outbox: Path, folder_parts: tuple[str, ...], name: str,
                    message: EmailMessage,
                    on_handover: Callable[[], None] | None = None) -> Path:
    """Write ``message`` to outbox/<folder parts>/<name>.eml, replacing any earlier one.
    The rename is the hand-over: before it nothing is delivered (a full disk leaves
    only a temporary file, removed), after it the message is there whole."""
    folder = outbox.joinpath(*(safe_name(part) for part in folder_parts))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{safe_name(name)}.eml"
    temporary = path.with_suffix(f".eml.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(message.as_bytes())
        if on_handover:
            on_handover()
        temporary.replace(path)  # a reader never sees half a message
    finally:
        temporary.unlink(missing_ok=True)
    return path
