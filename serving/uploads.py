"""Multipart uploads parsed in memory, with a size cap enforced while the bytes arrive.

Starlette's ``request.form()`` spools any file part above 1 MB to a temporary file on disk. Patient
photos and videos must never touch the server's disk, so the body is read from the ASGI ``receive``
channel and fed to python-multipart's streaming parser, keeping each part in a ``bytearray``. A part
that passes its limit stops the read at once with a 413; the Content-Length header is only a shortcut.

A client that sends its headers and then stops (or trickles a byte now and then) would otherwise
hold an upload slot for as long as it keeps the connection open; ``UploadTimeouts`` ends such a
read with a 408 once nothing has arrived for a while or the body falls below a minimum rate.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import AsyncIterator

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from mottling.errors import InputError, InputTooLargeError, MottlingError, UnsupportedMediaError

# python-multipart logs a warning for every malformed header a client sends; a broken upload is
# answered with a 400 already, so the log need not repeat it.
logging.getLogger("python_multipart").setLevel(logging.ERROR)

MAX_FIELD_BYTES = 4096  # plain form fields (site, roi) are short
MAX_PARTS = 8


@dataclass
class UploadedFile:
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class ParsedForm:
    files: dict[str, UploadedFile] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    reserved_bytes: int = 0   # held in the UploadBudget until the request is done


class ServerBusyError(MottlingError):
    """Too much upload data is held at once; the client should retry shortly (503)."""

    http_status = 503


class UploadTimeoutError(InputError):
    """The body stopped arriving, or arrives too slowly to be a real upload (408)."""

    http_status = 408


@dataclass(frozen=True)
class UploadTimeouts:
    """How long a body may take: ``idle_s`` without a byte, and after ``grace_s`` at least
    ``min_rate_bytes_s`` on average (0 turns the rate check off). A stalled client is cut off after
    ``idle_s``; one that trickles bytes to dodge that is cut off soon after ``grace_s``."""

    idle_s: float = 10.0
    min_rate_bytes_s: float = 16_000.0
    grace_s: float = 10.0

    def next_wait(self, received: int, elapsed_s: float) -> float:
        """Seconds to wait for the next piece before the body counts as stalled or too slow."""
        wait = self.idle_s
        if self.min_rate_bytes_s > 0:
            # the moment the average rate would fall below the minimum with nothing more arriving
            wait = min(wait, self.grace_s + received / self.min_rate_bytes_s - elapsed_s)
        return max(wait, 0.001)

    def too_slow(self, received: int, elapsed_s: float) -> bool:
        return (self.min_rate_bytes_s > 0 and elapsed_s > self.grace_s
                and received < self.min_rate_bytes_s * (elapsed_s - self.grace_s))


class UploadBudget:
    """Bytes of upload bodies held in memory across all requests of this process.

    Each request counts its body against the budget as it arrives and gives it back when the
    answer is sent, so memory stays bounded however many large uploads arrive together. Only the
    event loop touches it, so it needs no lock.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.in_use = 0

    def take(self, n: int) -> None:
        if self.in_use + n > self.max_bytes:
            raise ServerBusyError("the server is busy with other uploads; retry in a moment")
        self.in_use += n

    def give(self, n: int) -> None:
        self.in_use -= n


def _human(n: int) -> str:
    return f"{n / 1_000_000:.4g} MB"


def _too_large(file_limits: dict[str, int], max_body_bytes: int) -> InputTooLargeError:
    if len(file_limits) == 1:
        name, limit = next(iter(file_limits.items()))
        return InputTooLargeError(f"the {name} is larger than the {_human(limit)} limit")
    limits = " and ".join(f"{_human(v)} per {k}" for k, v in file_limits.items())
    return InputTooLargeError(f"the upload is larger than the limits ({limits})")


class _PartCollector:
    """python-multipart callbacks that build the form and police per-part limits."""

    def __init__(self, file_limits: dict[str, int]):
        self.file_limits = file_limits
        self.form = ParsedForm()
        self.parts = 0
        self.finished = False
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._buffer = bytearray()
        self._name: str | None = None
        self._filename: str | None = None
        self._limit = MAX_FIELD_BYTES
        self._skip = False

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": lambda d, s, e: self._header_field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._header_value.extend(d[s:e]),
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise InputError(f"too many form parts (at most {MAX_PARTS})")
        self._headers = {}
        self._buffer = bytearray()
        self._name = self._filename = None

    def on_header_end(self) -> None:
        self._headers[bytes(self._header_field).decode("latin-1").lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get("content-disposition", b""))
        name = params.get(b"name")
        if name is None:
            raise InputError("a form part has no name")
        self._name = name.decode("utf-8", "replace")
        filename = params.get(b"filename")
        self._filename = None if filename is None else filename.decode("utf-8", "replace")
        # A file part the endpoint does not read is skipped, not stored (the body cap still holds).
        self._skip = self._filename is not None and self._name not in self.file_limits
        if self._name in self.file_limits:
            self._limit = self.file_limits[self._name]
        else:
            self._limit = MAX_FIELD_BYTES

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._skip:
            return
        if len(self._buffer) + (end - start) > self._limit:
            if self._name in self.file_limits:
                raise InputTooLargeError(
                    f"the {self._name} is larger than the {_human(self._limit)} limit")
            raise InputTooLargeError(f"form field {self._name!r} is too long")
        self._buffer.extend(data[start:end])

    def on_part_end(self) -> None:
        assert self._name is not None
        if self._skip:
            return
        if self._name in self.file_limits:
            content_type = self._headers.get("content-type")
            self.form.files[self._name] = UploadedFile(
                filename=self._filename,
                content_type=None if content_type is None else content_type.decode("latin-1"),
                data=bytes(self._buffer))
        else:
            self.form.fields[self._name] = bytes(self._buffer).decode("utf-8", "replace")
        self._buffer = bytearray()

    def on_end(self) -> None:
        self.finished = True


async def read_multipart(request: Request, file_limits: dict[str, int], max_body_bytes: int,
                         budget: UploadBudget | None = None,
                         timeouts: UploadTimeouts | None = None) -> ParsedForm:
    """Read a ``multipart/form-data`` body into memory; ``file_limits`` maps part names to byte caps.

    Raises ``UnsupportedMediaError`` (415) for another content type, ``InputTooLargeError`` (413)
    as soon as a part or the whole body passes its limit, ``InputError`` (400) for a broken body,
    ``ServerBusyError`` (503) when ``budget`` has no room left, ``UploadTimeoutError`` (408) when the
    body stalls or crawls (``timeouts``; None waits for ever). On success the bytes taken from
    ``budget`` are in ``reserved_bytes``; the caller gives them back when done.
    """
    content_type, params = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data":
        raise UnsupportedMediaError("send the upload as multipart/form-data")
    boundary = params.get(b"boundary")
    if not boundary:
        raise InputError("the multipart body has no boundary")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
        raise _too_large(file_limits, max_body_bytes)

    collector = _PartCollector(file_limits)
    try:
        parser = MultipartParser(boundary, collector.callbacks())
    except FormParserError as err:
        raise InputError(f"malformed multipart body: {err}") from None
    received = 0
    try:
        async for chunk in _body_chunks(request, timeouts):
            received += len(chunk)
            if received > max_body_bytes:
                raise _too_large(file_limits, max_body_bytes)
            if budget is not None:
                budget.take(len(chunk))
                collector.form.reserved_bytes += len(chunk)
            if chunk:
                parser.write(chunk)
        parser.finalize()
        if not collector.finished:
            raise InputError("the multipart body is truncated or malformed")
    except FormParserError as err:
        _give_back(budget, collector.form)
        raise InputError(f"malformed multipart body: {err}") from None
    except ClientDisconnect:
        _give_back(budget, collector.form)
        raise InputError("the upload was interrupted before it finished") from None
    except BaseException:
        _give_back(budget, collector.form)
        raise
    return collector.form


async def _body_chunks(request: Request, timeouts: UploadTimeouts | None) -> AsyncIterator[bytes]:
    """The body as it arrives, read from ``receive`` so each wait can have a deadline."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    received = 0
    while True:
        if timeouts is None:
            message = await request.receive()
        else:
            wait = timeouts.next_wait(received, loop.time() - started)
            try:
                message = await asyncio.wait_for(request.receive(), wait)
            except asyncio.TimeoutError:
                raise _timeout_error(timeouts, received, loop.time() - started) from None
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        received += len(chunk)
        yield chunk
        if not message.get("more_body", False):
            return
        if timeouts is not None and timeouts.too_slow(received, loop.time() - started):
            raise _timeout_error(timeouts, received, loop.time() - started)


def _timeout_error(timeouts: UploadTimeouts, received: int, elapsed_s: float) -> UploadTimeoutError:
    if timeouts.too_slow(received, elapsed_s + 0.001):
        return UploadTimeoutError(
            f"the upload is too slow ({received} bytes in {elapsed_s:.0f} s; at least "
            f"{timeouts.min_rate_bytes_s / 1000:g} kB/s is needed); send it again")
    return UploadTimeoutError(
        f"the upload stalled: nothing arrived for {timeouts.idle_s:g} s; send it again")


class UploadSlots:
    """Uploads in progress at once and the bytes they hold; past either, new uploads get a 503.

    ``hold`` is the one way an endpoint reads a body: it takes a slot, reads the form under the
    timeouts, and gives slot and bytes back when the answer is ready, however the request ends.
    Only the event loop touches the counters, so they need no lock.
    """

    def __init__(self, max_uploads: int, budget: UploadBudget, timeouts: UploadTimeouts) -> None:
        self.max_uploads = max_uploads
        self.budget = budget
        self.timeouts = timeouts
        self.active = 0

    @property
    def exhausted(self) -> bool:
        """No new upload could start now (every slot taken, or the byte budget spent)."""
        return self.active >= self.max_uploads or self.budget.in_use >= self.budget.max_bytes

    @asynccontextmanager
    async def hold(self, request: Request, file_limits: dict[str, int]) -> AsyncIterator[ParsedForm]:
        if self.active >= self.max_uploads:
            raise ServerBusyError("the server is busy with other uploads; retry in a moment")
        self.active += 1
        form = None
        try:
            body_cap = sum(file_limits.values()) + 64 * 1024
            form = await read_multipart(request, file_limits, body_cap, self.budget, self.timeouts)
            yield form
        finally:
            self.active -= 1
            if form is not None:
                _give_back(self.budget, form)


def _give_back(budget: UploadBudget | None, form: ParsedForm) -> None:
    if budget is not None:
        budget.give(form.reserved_bytes)
        form.reserved_bytes = 0
