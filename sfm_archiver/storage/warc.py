"""WARC 1.1 files of HTTP exchanges (API calls, link checks), beside the JSON-lines captures.

Evidence of exactly what was asked and answered, as SFM 2.x kept it. Files live in the capture's
hour folder as `<collection>-<kind>-<stamp>.warc.gz` and start with a `warcinfo` record naming the
software, collection and job. Each record is its own gzip member, and each request/response pair
(response first, the request pointing at it with `WARC-Concurrent-To`) reaches the file in one
`write()`, so a killed process leaves whole records, and `seal_abandoned_files` (which cuts a file
back to its last complete gzip member) repairs a torn tail the same way as for captures.

Secrets never reach a file: credential headers (Authorization, cookies, anything naming a token
or key) are dropped from requests, and every configured secret is replaced by `[redacted]`
wherever it appears, including URLs and bodies.

`WarcWriter.record` takes an `HttpExchange` (the link checker's); `WarcWriter.hook` is a requests
response hook: `record_session(session, writer)` or `record_api_calls(...)` make every exchange
of a session (a tweepy Client's included) land in the WARC.
"""

from __future__ import annotations

import io
import socket
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

import requests
from warcio.statusandheaders import StatusAndHeaders, StatusAndHeadersParser
from warcio.timeutils import datetime_to_iso_date
from warcio.utils import Digester
from warcio.warcwriter import WARCWriter

from sfm_archiver import SOFTWARE
from sfm_archiver.platforms import secrets_of
from sfm_archiver.storage.exchange import HttpExchange, Redactor, from_requests
from sfm_archiver.storage.rotating import OpenFileRegistry, RotatingFile
from sfm_archiver.storage.writer import compress_member
from sfm_archiver.timeutil import Clock, utcnow

WARC_VERSION = "1.1"
WARC_PROTOCOL = f"WARC/{WARC_VERSION}"
WARC_SPEC = "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"
ClientT = TypeVar("ClientT")


class WarcWriter:
    """Appends exchanges of one collection and kind to WARC files rotated by the clock.

    Thread-safe. `sync_every_write=True` makes each exchange durable before `write_*` returns
    (API calls: few and precious); otherwise call `sync()` before a checkpoint moves on (link
    checks: thousands, synced per batch).
    """

    def __init__(
        self,
        archive_root: Path,
        collection: str,
        kind: str,
        job: str,
        *,
        clock: Clock = utcnow,
        registry: OpenFileRegistry | None = None,
        rotation: timedelta = timedelta(hours=1),
        secrets: Iterable[str] = (),
        sync_every_write: bool = False,
        operator: str = "",
    ):
        self._file = RotatingFile(
            archive_root, collection, kind, "warc.gz",
            clock=clock, registry=registry, rotation=rotation, header=self._start_file,
            block_name="WARC records",
        )
        self.collection = self._file.collection
        self.kind = kind
        self.job = job
        self.clock = clock
        self.redactor = Redactor(secrets)
        self.sync_every_write = sync_every_write
        self.operator = operator
        self.records_written = 0
        self.exchanges_written = 0
        self._lock = threading.Lock()
        self._warcinfo_id: str | None = None

    @property
    def path(self) -> Path | None:
        return self._file.path

    # -- what callers use ------------------------------------------------------------------

    def record(self, exchange: HttpExchange) -> None:
        """Write one exchange: the response record, then the request record pointing at it."""
        target = self.redactor.text(exchange.url)
        request_block = self.redactor.bytes(exchange.request_block())
        response_block = self.redactor.bytes(exchange.response_block())
        self._write_pair(target, exchange.sent_at, request_block, response_block, exchange.truncated)

    def write_exchange(self, response: requests.Response, body: bytes | None = None,
                       truncated: bool | str = False) -> None:
        """Record a requests `response` and the request that produced it.

        `body` is what was read of it (default: its content; do not pass a streamed response
        without a body). `truncated`: True for a body cut at a length limit, or the
        WARC-Truncated reason itself.
        """
        if body is None:
            body = response.content or b""
        reason = "length" if truncated is True else truncated or None
        self.record(from_requests(response, body, self.clock() - response.elapsed, reason))

    def hook(self, response: requests.Response, *args, **kwargs) -> requests.Response:
        """requests response hook: record every exchange of a session.

        A streamed response (`stream=True`) is recorded with its headers only and marked
        `WARC-Truncated: unspecified`, so the hook never consumes a body its caller will read.
        """
        if kwargs.get("stream"):
            self.write_exchange(response, b"", truncated="unspecified")
        else:
            self.write_exchange(response)
        return response

    def sync(self) -> None:
        """Make everything written so far durable."""
        with self._lock:
            self._file.sync()

    def rotate_if_due(self, now: datetime | None = None) -> bool:
        with self._lock:
            return self._file.rotate_if_due(now)

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def __enter__(self) -> WarcWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- records ---------------------------------------------------------------------------

    def _write_pair(self, target: str, sent_at: datetime, request_block: bytes, response_block: bytes,
                    truncated: str | None) -> None:
        date = warc_date(sent_at)
        response_id = StatusAndHeadersParser.make_warc_id()
        response = _record_headers("response", response_id, date, target, response_block)
        if truncated:
            response.append(("WARC-Truncated", truncated))
        request = _record_headers("request", StatusAndHeadersParser.make_warc_id(), date, target, request_block)
        request.append(("WARC-Concurrent-To", response_id))
        with self._lock:
            self._file.ensure_open()
            linked = [("WARC-Warcinfo-ID", self._warcinfo_id)] if self._warcinfo_id else []
            self._file.append(_record(response + linked, response_block) + _record(request + linked, request_block))
            self.records_written += 2
            self.exchanges_written += 1
            if self.sync_every_write:
                self._file.sync()

    def _start_file(self, path: Path) -> bytes:
        """The warcinfo record that opens each new file (called by the rotating file)."""
        head, self._warcinfo_id = self._warcinfo(path.name)
        return head

    def _warcinfo(self, filename: str) -> tuple[bytes, str]:
        builder = WARCWriter(io.BytesIO(), gzip=True, warc_version=WARC_VERSION)
        info = {
            "software": SOFTWARE,
            "format": f"WARC File Format {WARC_VERSION}",
            "conformsTo": WARC_SPEC,
            "hostname": socket.gethostname(),
            "operator": self.operator,
            "isPartOf": self.collection,
            "collection": self.collection,
            "job": self.job,
            "description": f"HTTP exchanges of the {self.job} job of collection {self.collection} ({self.kind})",
        }
        record = builder.create_warcinfo_record(filename, info)
        record.rec_headers.replace_header("WARC-Date", warc_date(self.clock()))
        builder.write_record(record)
        return builder.out.getvalue(), record.rec_headers.get_header("WARC-Record-ID")


def record_session(session: requests.Session, writer: WarcWriter) -> WarcWriter:
    """Record every exchange `session` makes (a tweepy Client's `.session`, for instance)."""
    session.hooks.setdefault("response", []).append(writer.hook)
    return writer


@contextmanager
def record_api_calls(ctx, collection: str, kind: str, job: str, client: ClientT) -> Iterator[ClientT]:
    """`with record_api_calls(ctx, name, "timeline", job, client) as client:` records every
    request the client's session makes in the collection's WARC files while the block runs.

    `client` is anything with a requests `session` (XClient, tweepy.Client); it is returned
    unchanged. Nothing is recorded when the collection's `warc:` is off.
    """
    writer = api_writer(ctx, collection, kind, job)
    if writer is None:
        yield client
        return
    hooks = client.session.hooks.setdefault("response", [])
    hooks.append(writer.hook)
    try:
        yield client
    finally:
        if writer.hook in hooks:
            hooks.remove(writer.hook)
        writer.close()


def api_writer(ctx, collection: str, kind: str, job: str, config=None) -> WarcWriter | None:
    """The WARC writer for API calls of a collection, or None when its `warc:` is off.

    `config`: the configuration to read (default `ctx.config`; a reloaded one for streams)."""
    config = config or ctx.config
    if not config.collection(collection).warc:
        return None
    return WarcWriter(
        config.paths.archive, collection, kind, job,
        clock=ctx.clock, registry=ctx.store, rotation=config.storage.rotation,
        secrets=secrets_of(config), sync_every_write=True, operator=_operator(config),
    )


def link_writer(ctx, collection: str) -> WarcWriter | None:
    """The WARC writer of a fetch-urls run, or None when `urls.warc` is off."""
    config = ctx.config
    if not config.urls.warc:
        return None
    return WarcWriter(
        config.paths.archive, collection, "urls", "fetch_urls",
        clock=ctx.clock, registry=ctx.store, rotation=config.storage.rotation,
        secrets=secrets_of(config), operator=_operator(config),
    )


def _operator(config) -> str:
    organization = config.organization
    return f"{organization.name} <{organization.contact_email}>" if organization.contact_email else organization.name


def _record_headers(kind: str, record_id: str, date: str, target: str, block: bytes) -> list[tuple[str, str]]:
    """WARC headers of a request or response record holding the HTTP message `block`."""
    split = block.find(b"\r\n\r\n")
    payload = block[split + 4:] if split >= 0 else b""
    return [
        ("WARC-Type", kind), ("WARC-Record-ID", record_id), ("WARC-Date", date), ("WARC-Target-URI", target),
        ("WARC-Payload-Digest", _digest(payload)), ("WARC-Block-Digest", _digest(block)),
        ("Content-Type", f"application/http; msgtype={kind}"),
    ]


def _record(headers: list[tuple[str, str]], block: bytes) -> bytes:
    """One WARC record as its own gzip member.

    warcio's record model (StatusAndHeaders, Digester, record ids) is used directly: its
    record builder parses back the HTTP message it is given and cost 0.7 ms per exchange,
    the largest share of a link check's CPU time.
    """
    head = StatusAndHeaders("", headers + [("Content-Length", str(len(block)))], protocol=WARC_PROTOCOL)
    return compress_member(head.to_bytes() + block + b"\r\n\r\n", 6)


def _digest(data: bytes) -> str:
    digester = Digester("sha1")
    digester.update(data)
    return str(digester)


def warc_date(moment: datetime) -> str:
    """WARC 1.1 date with microseconds, UTC."""
    return datetime_to_iso_date(moment.astimezone(timezone.utc).replace(tzinfo=None), use_micros=True)
