"""Delivering queued messages to the targets, in a background thread that never blocks harvesting.

Messages wait in the state store (`notify_outbox`) until every target took them: a failure is
logged (the target's URL without credentials) and retried with exponential backoff; a restart
resumes the queue. Targets are named by a stable id (a hash of the URL, never the URL: it may
hold a password), so the queue survives a reload that adds or removes one.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import ssl
import threading
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Callable

from sfm_archiver.config import Config
from sfm_archiver.errors import DeliveryError
from sfm_archiver.notify.settings import Smtp, redact_url
from sfm_archiver.notify.store import NotifyStore, Outgoing
from sfm_archiver.state import StateStore
from sfm_archiver.timeutil import Clock, utcnow

log = logging.getLogger("sfm_archiver.notify")
logging.getLogger("apprise").setLevel(logging.CRITICAL)  # it may log target URLs; we log redacted ones

BACKOFF_FIRST = 10.0
BACKOFF_MAX = 3600.0
MAX_ATTEMPTS = 12  # about five hours of retries


def backoff(attempts: int, first: float = BACKOFF_FIRST, cap: float = BACKOFF_MAX) -> float:
    """Seconds before the next try after `attempts` failed ones (10 s, 20 s, 40 s ... 1 h)."""
    return min(cap, first * 2 ** max(0, attempts - 1))


def target_ids(config: Config) -> dict[str, str]:
    """Every configured target by its id: `smtp` or `url:<hash>` -> a printable name."""
    targets = {f"url:{hashlib.sha256(url.encode()).hexdigest()[:16]}": url for url in config.notify.targets}
    if config.notify.smtp is not None:
        targets["smtp"] = "smtp"
    return targets


def secrets(config: Config) -> list[str]:
    """The passwords in the notify settings, for the log's secret mask."""
    found = [config.notify.smtp.password] if config.notify.smtp is not None else []
    for url in config.notify.targets:
        userinfo = url.split("://", 1)[-1].split("/", 1)[0].rpartition("@")[0]
        found.append(userinfo.partition(":")[2])
    return [secret for secret in found if secret]


def describe(config: Config, target_id: str) -> str:
    if target_id == "smtp" and config.notify.smtp is not None:
        smtp = config.notify.smtp
        return f"smtp://{smtp.host}:{smtp.port} to {', '.join(smtp.to)}"
    url = target_ids(config).get(target_id)
    return redact_url(url) if url else target_id


def send(config: Config, target_id: str, message: dict) -> None:
    """Deliver one message to one target; raise DeliveryError saying why not."""
    if target_id == "smtp":
        if config.notify.smtp is None:
            raise DeliveryError("notify.smtp is no longer configured")
        send_smtp(config.notify.smtp, message, config.organization.contact_email)
        return
    url = target_ids(config).get(target_id)
    if url is None:
        raise DeliveryError("the target is no longer configured")
    send_apprise(url, message)


def send_apprise(url: str, message: dict) -> None:
    import apprise

    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise DeliveryError(f"{redact_url(url)}: not a URL Apprise understands")
    email = url.split("://", 1)[0].lower() in ("mailto", "mailtos")
    body, body_format = (message["html"], apprise.NotifyFormat.HTML) if email and message.get("html") else (message["text"], apprise.NotifyFormat.TEXT)
    kind = {"problem": apprise.NotifyType.FAILURE, "resolved": apprise.NotifyType.SUCCESS}.get(message.get("kind"), apprise.NotifyType.INFO)
    if not notifier.notify(title=message["subject"], body=body, body_format=body_format, notify_type=kind):
        raise DeliveryError(f"{redact_url(url)} did not accept the message")


def send_smtp(settings: Smtp, message: dict, fallback_sender: str = "") -> None:
    email = EmailMessage()
    email["Subject"] = message["subject"]
    email["From"] = settings.sender or fallback_sender or f"sfm-archiver@{settings.host}"
    email["To"] = ", ".join(settings.to)
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = make_msgid(domain="sfm-archiver")
    email.set_content(message["text"])
    if message.get("html"):
        email.add_alternative(f"<html><body>{message['html']}</body></html>", subtype="html")
    try:
        if settings.security == "ssl":
            client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        with client:
            if settings.security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if settings.username:
                client.login(settings.username, settings.password)
            client.send_message(email)
    except (OSError, smtplib.SMTPException) as error:
        raise DeliveryError(f"smtp://{settings.host}:{settings.port}: {error}") from None


def deliver_due(store: NotifyStore, config: Config, now: datetime, sender: Callable = send, target: str | None = None) -> int:
    """One pass over the due messages (of one target, when given); returns how many were delivered."""
    done = 0
    for message in store.due(now, target):
        if _deliver_one(store, config, message, now, sender):
            done += 1
    return done


def _deliver_one(store: NotifyStore, config: Config, message: Outgoing, now: datetime, sender: Callable) -> bool:
    failed, errors = [], []
    body = {"kind": message.kind, "subject": message.subject, "text": message.text, "html": message.html}
    for target in message.pending:
        try:
            sender(config, target, body)
            log.info("notification %r sent to %s", message.subject, describe(config, target))
        except Exception as error:  # noqa: BLE001 - any failure of one target: retry it, go on with the rest
            failed.append(target)
            errors.append(f"{describe(config, target)}: {error}")
    if not failed:
        store.delivered(message.id)
        return True
    attempts = message.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        log.error("notification %r given up after %d attempts: %s", message.subject, attempts, "; ".join(errors))
        store.delivered(message.id)
        return False
    wait = backoff(attempts)
    log.warning("notification %r not delivered (attempt %d): %s; next try in %.0f s", message.subject, attempts, "; ".join(errors), wait)
    store.retry_later(message.id, failed, attempts, now + timedelta(seconds=wait), "; ".join(errors)[:2000])
    return False


class Deliverer:
    """One background thread per target, so a hung server delays only its own messages.

    Each thread wakes when a message is queued (`wake`) or its next retry is due.
    """

    def __init__(self, state: StateStore, config: Callable[[], Config], clock: Clock = utcnow, sender: Callable = send):
        self._state = state
        self._config = config
        self._clock = clock
        self._sender = sender
        self._stop = threading.Event()
        self._workers: dict[str, tuple[threading.Thread, threading.Event]] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        self.wake()

    def wake(self) -> None:
        """Wake every target's thread (starting threads for targets added by a reload)."""
        with self._lock:
            if self._stop.is_set():
                return
            for target in target_ids(self._config()):
                if target not in self._workers:
                    event = threading.Event()
                    thread = threading.Thread(target=self._run, args=(target, event), name=f"notify-{target}", daemon=True)
                    self._workers[target] = (thread, event)
                    thread.start()
            for _thread, event in self._workers.values():
                event.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads; one stuck in a hung connection is left behind (a daemon thread)."""
        with self._lock:
            self._stop.set()
            workers = list(self._workers.values())
        for _thread, event in workers:
            event.set()
        for thread, _event in workers:
            thread.join(timeout / max(1, len(workers)))

    def _run(self, target: str, wake: threading.Event) -> None:
        store = NotifyStore(self._state)
        while not self._stop.is_set():
            wake.clear()
            try:
                deliver_due(store, self._config(), self._clock(), self._sender, target)
                upcoming = store.next_due(target)
            except Exception as error:  # noqa: BLE001 - the delivery thread must outlive any one failure
                log.error("notification delivery to %s: %s", describe(self._config(), target), error)
                upcoming = None
            wait = 60.0 if upcoming is None else max(0.05, (upcoming - self._clock()).total_seconds())
            wake.wait(min(wait, 60.0))
        self._state.close()


def send_test(config: Config, now: datetime | None = None, sender: Callable = send) -> list[tuple[str, str | None]]:
    """`notify --test`: one test message to every target now; (target, error or None) each."""
    from sfm_archiver.notify.messages import test_message

    message = test_message(now or utcnow(), config.organization.name)
    results = []
    for target in target_ids(config):
        try:
            sender(config, target, message)
            results.append((describe(config, target), None))
        except Exception as error:  # noqa: BLE001 - report every target's own result
            results.append((describe(config, target), str(error)))
    return results
