"""Filing a petition from a kiosk request: body parsing, media validation, durable storage.

Order matters for durability: uploads are fsynced, probed, renamed into place and their directory
fsynced; only then is the transaction (petition row + media rows) committed and the 201 sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from server.auth.roles import Principal
from server.config import Settings
from server.db import transaction
from server.errors import BadRequest, PayloadTooLarge
from server.keys import SESSIONMAKER, SETTINGS
from server.petitions import pins, receipts, service, storage
from server.petitions.deadlines import PetitionType
from server.petitions.media_probe import InvalidMedia, ProbedMedia, probe_media
from server.petitions.models import Petition
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
            upload.content_type, upload.suffix = storage.sniff_image(upload.temp.path)
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


async def file_from_request(request: web.Request, kiosk: Principal) -> Filed:
    settings: Settings = request.app[SETTINGS]
    media_dir = settings.media_dir
    uploads: list[Upload] = []
    committed: list[Path] = []
    try:
        if request.content_type == "application/json":
            data = await json_body(request, FileInput)
        elif request.content_type == "multipart/form-data":
            data = await _read_multipart(request, media_dir, uploads)
        else:
            raise BadRequest("send application/json or multipart/form-data", code="unsupported_media_type")
        if not data.body.strip() and not any(u.kind == "message" for u in uploads):
            raise BadRequest("a petition needs text or a recorded message", code="text_or_message_required")
        await _validate_uploads(uploads)
        pin = receipts.generate_pin()
        pin_hash = await asyncio.to_thread(
            receipts.hash_pin, pin, pepper=pins.pin_pepper(settings), params=pins.pin_params(settings)
        )
        new = service.NewPetition(
            petition_type=PetitionType(data.petition_type),
            department_id=data.department_id,
            title=_title(data, uploads),
            body=data.body,
            resident_phone=data.phone,
            resident_name=data.name,
            is_public=data.is_public,
        )
        async with transaction(request.app[SESSIONMAKER]) as session:
            petition = await service.file_petition(session, kiosk, new, pin_hash)
            for upload in uploads:
                name = await asyncio.to_thread(
                    storage.commit_file, media_dir, upload.temp, petition.receipt_year, upload.suffix
                )
                committed.append(media_dir / name)
                service.attach_media(
                    session,
                    petition,
                    service.StoredMedia(
                        kind=upload.kind,
                        storage_name=name,
                        content_type=upload.content_type,
                        size_bytes=upload.temp.size,
                        sha256=upload.temp.sha256,
                        duration_s=upload.probed.duration_s if upload.probed else None,
                        has_video=bool(upload.probed and upload.probed.video_codec),
                    ),
                )
            await session.flush()
            await session.refresh(petition, attribute_names=["media", "village", "department"])
        committed.clear()  # the rows are committed: the files are theirs now
        return Filed(petition=petition, pin=pin)
    finally:
        for upload in uploads:
            storage.discard(upload.temp.path)
        for path in committed:  # the transaction failed after the files were moved into place
            storage.discard(path)
