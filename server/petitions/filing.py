"""Filing a petition from a kiosk request: body parsing, media validation, durable storage.

Order matters for durability: uploads are fsynced, probed, renamed into place and their directory
fsynced; only then is the transaction (petition row + media rows) committed and the 201 sent.

Idempotency: a kiosk sends an ``Idempotency-Key`` header (a random UUID it made when the resident
pressed Send, kept with the request until the receipt is shown). The key is stored hashed with the
petition in the filing transaction under a primary key (kiosk, key hash), so of two concurrent
sends one files and the other fails on the constraint and answers with the winner's receipt; a
resend after a lost 201 fails on it the same way and gets the same receipt (no lookup before the
transaction: the constraint is the lookup, and a filing is one transaction). The PIN is made here
and stored only as a hash, so to give a resend the same PIN the filing row keeps it sealed with a
one-time pad derived from the key and the server's pepper: whoever holds the key (that kiosk,
until it forgets the request) gets it back, the database alone does not.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.roles import Principal
from server.config import Settings
from server.db import transaction, utcnow
from server.errors import BadRequest, Conflict, PayloadTooLarge
from server.keys import SESSIONMAKER, SETTINGS
from server.petitions import pins, receipts, service, storage, throttle
from server.petitions.deadlines import PetitionType
from server.petitions.media_probe import InvalidMedia, ProbedMedia, probe_media
from server.petitions.models import FilingKey, Petition
from server.petitions.schemas import FileInput
from server.validation import MAX_JSON_BYTES, json_body, validate

log = logging.getLogger(__name__)


@dataclass
class Upload:
    temp: storage.TempUpload
    kind: str  # "message" or "photo"
    content_type: str = ""
    suffix: str = ""
    probed: ProbedMedia | None = None


@dataclass(frozen=True)
class Filed:
    petition: Petition
    pin: str
    replayed: bool = False  # an earlier send with the same idempotency key filed it


IDEMPOTENCY_HEADER = "Idempotency-Key"
# A UUID (36) or any random token of URL-safe characters; short keys could collide by chance.
_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")


def idempotency_key(request: web.Request) -> str | None:
    """The request's idempotency key, None without one (API clients other than the kiosk page)."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not _KEY_PATTERN.fullmatch(key):
        raise BadRequest(
            f"{IDEMPOTENCY_HEADER} must be 16-128 letters, digits, '-' or '_' (a UUID)",
            code="invalid_idempotency_key",
        )
    return key


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _pin_pad(key: str, pepper: bytes) -> list[int]:
    digest = hmac.new(pepper, b"filing-pin-seal:" + key.encode(), hashlib.sha256).digest()
    return [b % 10 for b in digest[: receipts.PIN_LENGTH]]


def seal_pin(pin: str, key: str, pepper: bytes) -> str:
    """Digit-wise one-time pad; the pad's tiny modulo bias leaks nothing usable about 4 digits."""
    return "".join(str((int(d) + p) % 10) for d, p in zip(pin, _pin_pad(key, pepper), strict=True))


def unseal_pin(sealed: str, key: str, pepper: bytes) -> str:
    return "".join(str((int(d) - p) % 10) for d, p in zip(sealed, _pin_pad(key, pepper), strict=True))


def _fingerprint(data: FileInput, uploads: list[Upload]) -> str:
    """What the filing says and carries; a resend must match it to get the earlier receipt."""
    media = sorted(f"{u.kind}:{u.temp.sha256}" for u in uploads)
    canonical = json.dumps({"petition": data.model_dump(mode="json"), "media": media}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _earlier_filing(
    sessionmaker: async_sessionmaker[AsyncSession],
    kiosk: Principal,
    key: str,
    fingerprint: str,
    pepper: bytes,
) -> Filed | None:
    """The petition this kiosk already filed under ``key``, with its PIN; None if there is none."""
    async with transaction(sessionmaker) as session:
        row = await session.get(FilingKey, (kiosk.id, _key_hash(key)))
        if row is None:
            return None
        if not hmac.compare_digest(row.fingerprint, fingerprint):
            raise Conflict(
                "this idempotency key was already used for a different request",
                code="idempotency_key_reused",
            )
        petition = await session.get(Petition, row.petition_id)
        if petition is None:  # deleted since (the key row goes with it; a race at most)
            return None
        return Filed(petition=petition, pin=unseal_pin(row.pin_sealed, key, pepper), replayed=True)


async def _refuse_early(
    sessionmaker: async_sessionmaker[AsyncSession], kiosk: Principal, key: str | None, limit: throttle.Limit
) -> None:
    """Refuse a kiosk past its filing limit before it uploads a recorded message (up to 64 MiB)
    for nothing, unless this is a resend of a filing it made (whose receipt it still needs).
    Only a check: the reservation in the filing transaction is what counts, also under
    concurrency. A JSON body is small: its filing is refused in the transaction."""
    async with transaction(sessionmaker) as session:
        refused = await throttle.used_up(session, limit)
        if refused is None:
            return
        if key is not None and await session.get(FilingKey, (kiosk.id, _key_hash(key))) is not None:
            return
    raise throttle.rate_limited(refused)


async def _next_part(reader: MultipartReader) -> object:
    try:
        return await reader.next()
    except (HttpProcessingError, ValueError, AssertionError, LookupError) as exc:
        raise BadRequest("the multipart body is malformed", code="invalid_multipart") from exc


async def _read_multipart(request: web.Request, media_dir: Path, uploads: list[Upload]) -> FileInput:
    try:
        reader = await request.multipart()
    except (HttpProcessingError, ValueError, AssertionError, LookupError) as exc:
        raise BadRequest("the multipart body is malformed", code="invalid_multipart") from exc
    data: FileInput | None = None
    while True:
        part = await _next_part(reader)
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            raise BadRequest("nested multipart bodies are not accepted", code="invalid_multipart")
        if part.name == "petition":
            try:
                raw = await part.read(decode=False)
            except (HttpProcessingError, ValueError, AssertionError, LookupError) as exc:
                raise BadRequest("the multipart body is malformed", code="invalid_multipart") from exc
            if len(raw) > MAX_JSON_BYTES:
                raise PayloadTooLarge(f"the petition part is limited to {MAX_JSON_BYTES} bytes")
            try:
                parsed = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise BadRequest("the petition part is not valid JSON", code="malformed_json") from exc
            if not isinstance(parsed, dict):
                raise BadRequest("the petition part must be a JSON object", code="malformed_json")
            data = validate(FileInput, parsed)
        elif part.name in ("media", "photo"):
            await _receive_file(part, media_dir, uploads)
        else:
            raise BadRequest(f"unexpected part {part.name!r}", code="unexpected_part")
    if data is None:
        raise BadRequest("the multipart body needs a 'petition' part (JSON)", code="petition_part_missing")
    return data


async def _receive_file(part: BodyPartReader, media_dir: Path, uploads: list[Upload]) -> None:
    try:
        await _receive_file_part(part, media_dir, uploads)
    except (HttpProcessingError, ValueError, AssertionError, LookupError) as exc:
        raise BadRequest("the multipart body is malformed", code="invalid_multipart") from exc


async def _receive_file_part(part: BodyPartReader, media_dir: Path, uploads: list[Upload]) -> None:
    if part.name == "media":
        if any(u.kind == "message" for u in uploads):
            raise BadRequest("only one recorded message per petition", code="too_many_messages")
        temp = await storage.receive_part(part, media_dir, storage.MAX_MESSAGE_BYTES, "media")
        uploads.append(Upload(temp, "message"))
    else:
        if sum(u.kind == "photo" for u in uploads) >= storage.MAX_PHOTOS:
            raise BadRequest(f"at most {storage.MAX_PHOTOS} photos", code="too_many_photos")
        temp = await storage.receive_part(part, media_dir, storage.MAX_PHOTO_BYTES, "photo")
        uploads.append(Upload(temp, "photo"))


async def _validate_uploads(uploads: list[Upload]) -> None:
    for upload in uploads:
        if upload.kind == "photo":
            upload.content_type, upload.suffix = await asyncio.to_thread(
                storage.sniff_image, upload.temp.path
            )
            continue
        try:
            probed = await asyncio.to_thread(
                probe_media, upload.temp.path, max_bytes=storage.MAX_MESSAGE_BYTES
            )
        except InvalidMedia as exc:
            if exc.code == "too_large":
                raise PayloadTooLarge(exc.message, code="media_too_large") from exc
            raise BadRequest(exc.message, code=f"media_{exc.code}", details={"media": exc.code}) from exc
        has_video = probed.video_codec is not None
        upload.probed = probed
        family = "webm" if probed.container == "webm" else probed.container
        upload.content_type, upload.suffix = storage.MESSAGE_TYPES[(family, has_video)]


def _title(data: FileInput, uploads: list[Upload]) -> str:
    if data.title:
        return data.title
    ptype = PetitionType(data.petition_type)
    message = next((u for u in uploads if u.kind == "message"), None)
    if message is not None:
        kind = "영상" if message.probed and message.probed.video_codec else "음성"
        return f"{ptype.label_ko} — {kind} 메시지"
    first_line = data.body.strip().splitlines()[0] if data.body.strip() else ptype.label_ko
    return first_line[:60]


async def file_from_request(request: web.Request, kiosk: Principal, limit: throttle.Limit) -> Filed:
    """File the request's petition, counted on the kiosk's filing ``limit``; or its earlier
    filing, when this is a resend of one (``Filed.replayed``; not counted)."""
    settings: Settings = request.app[SETTINGS]
    sessionmaker = request.app[SESSIONMAKER]
    key = idempotency_key(request)
    pepper = pins.pin_pepper(settings)
    media_dir = settings.media_dir
    uploads: list[Upload] = []
    committed: list[Path] = []
    try:
        if request.content_type == "application/json":
            data = await json_body(request, FileInput)
        elif request.content_type == "multipart/form-data":
            await _refuse_early(sessionmaker, kiosk, key, limit)
            data = await _read_multipart(request, media_dir, uploads)
        else:
            raise BadRequest("send application/json or multipart/form-data", code="unsupported_media_type")
        if not data.body.strip() and not any(u.kind == "message" for u in uploads):
            raise BadRequest("a petition needs text or a recorded message", code="text_or_message_required")
        await _validate_uploads(uploads)
        fingerprint = _fingerprint(data, uploads)
        received_at = utcnow()
        pin = receipts.generate_pin()
        pin_hash = await asyncio.to_thread(
            receipts.hash_pin, pin, pepper=pepper, params=pins.pin_params(settings)
        )
        # The files go to their final names, durably, before the transaction: the directory fsyncs
        # then do not hold the receipt counter's lock that every other filing waits on. The row
        # still commits only after them, so a crash in between leaves an orphan file at most,
        # never a row without its file; a failed transaction removes them (``committed``).
        year = receipts.receipt_year(received_at)
        if uploads:
            names = await asyncio.to_thread(
                storage.commit_files, media_dir, [(u.temp, u.suffix) for u in uploads], year, committed
            )
        else:
            names = []
        new = service.NewPetition(
            petition_type=PetitionType(data.petition_type),
            department_id=data.department_id,
            title=_title(data, uploads),
            body=data.body,
            resident_phone=data.phone,
            resident_name=data.name,
            is_public=data.is_public,
        )
        claim = None
        if key is not None:
            claim = FilingKey(
                kiosk_id=kiosk.id,
                key_hash=_key_hash(key),
                fingerprint=fingerprint,
                pin_sealed=seal_pin(pin, key, pepper),
            )
        stored = [_stored(upload, name) for upload, name in zip(uploads, names, strict=True)]
        try:
            petition = await _store(sessionmaker, kiosk, new, pin_hash, received_at, stored, claim, limit)
        except IntegrityError:
            # The key is already taken: a resend of a filing committed earlier, or a concurrent
            # send with the same key that won. Its receipt (or 409 for a different request).
            replay = None
            if key is not None:
                replay = await _earlier_filing(sessionmaker, kiosk, key, fingerprint, pepper)
            if replay is None:
                raise
            return replay
        committed.clear()  # the rows are committed: the files are theirs, whatever happens next
        return Filed(petition=petition, pin=pin)
    finally:
        # The temporary uploads, and the files the failed transaction had moved into place. On a
        # worker thread like all file I/O of a filing; if this task is cancelled meanwhile, the
        # thread still finishes the unlinks.
        leftovers = [upload.temp.path for upload in uploads] + committed
        if leftovers:
            await asyncio.to_thread(storage.discard_all, leftovers)


def _stored(upload: Upload, name: str) -> service.StoredMedia:
    return service.StoredMedia(
        kind=upload.kind,
        storage_name=name,
        content_type=upload.content_type,
        size_bytes=upload.temp.size,
        sha256=upload.temp.sha256,
        duration_s=upload.probed.duration_s if upload.probed else None,
        has_video=bool(upload.probed and upload.probed.video_codec),
    )


async def _store(
    sessionmaker: async_sessionmaker[AsyncSession],
    kiosk: Principal,
    new: service.NewPetition,
    pin_hash: str,
    received_at: dt.datetime,
    media: list[service.StoredMedia],
    claim: FilingKey | None,
    limit: throttle.Limit,
) -> Petition:
    """The filing transaction, the only commit of a filing: the petition (its receipt number),
    its key claim, its media rows and the kiosk's filing reservation.

    The key claim is flushed before the reservation, so a resend is recognised (IntegrityError on
    the key) even when the kiosk's limit is used up. The petition comes back with everything its
    receipt shows already loaded: no query after the commit."""
    async with sessionmaker() as session, session.begin():
        petition = await service.file_petition(session, kiosk, new, pin_hash, received_at=received_at)
        if claim is not None:
            claim.petition_id = petition.id
            session.add(claim)
        for stored in media:
            service.attach_media(session, petition, stored)
        await session.flush()
        await throttle.reserve_filing(session, limit)
    return petition
