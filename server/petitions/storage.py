"""Files of petitions under ``settings.media_dir``: uploads are streamed to a temporary file with a
size cap, validated, then made durable (fsync + atomic rename + directory fsync) *before* the
petition row is committed, so a 201 never points at a file that a crash could lose.

A crash between the rename and the commit leaves an orphan file (never a row without its file);
orphans carry a random name and are harmless.

``SpaceGuard`` keeps ``MAEUL_MIN_FREE_MB`` of the disk free for small writes: new media are
refused (507) before they can fill it, so logins, PIN checks and text requests keep working.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from aiohttp import BodyPartReader

from server.durable import fsync_dir
from server.errors import BadRequest, MediaStorageLow, PayloadTooLarge
from server.validation import MAX_JSON_BYTES

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
MAX_MESSAGE_BYTES = 40 * 1024 * 1024
MAX_PHOTO_BYTES = 8 * 1024 * 1024
MAX_PHOTOS = 3

# Content type and file suffix by sniffed container family (see media_probe).
MESSAGE_TYPES = {
    ("webm", False): ("audio/webm", ".webm"),
    ("webm", True): ("video/webm", ".webm"),
    ("matroska", False): ("audio/x-matroska", ".mka"),
    ("matroska", True): ("video/x-matroska", ".mkv"),
    ("ogg", False): ("audio/ogg", ".ogg"),
    ("ogg", True): ("video/ogg", ".ogv"),
    ("mp4", False): ("audio/mp4", ".m4a"),
    ("mp4", True): ("video/mp4", ".mp4"),
}


# Bodies up to this size are text: a JSON request, a login, a PIN check, or a text-only filing
# (its JSON part and the multipart framing). Larger ones carry media.
SMALL_BODY_BYTES = MAX_JSON_BYTES + 4096
# What a body of unknown length may hold at most: a filing's message and photos.
MAX_UNSIZED_BODY_BYTES = MAX_MESSAGE_BYTES + MAX_PHOTOS * MAX_PHOTO_BYTES
MIB = 1024 * 1024


@dataclass
class SpaceGuard:
    """Refuses new media while the disk of ``directory`` would keep less than ``min_free_bytes``.

    Each media request reserves its declared size before its body is read, and the check and the
    reservation happen with no ``await`` between them, so concurrent uploads cannot all pass a
    check that only one of them fits. (Bytes an upload has already written count twice, in the
    free space and in its reservation: the guard errs on the side of refusing.)
    """

    directory: Path
    min_free_bytes: int
    reserved: int = 0

    def free_bytes(self) -> int:
        folder = self.directory
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent  # the data directory may not exist before the first write
        return shutil.disk_usage(folder).free

    def is_low(self, free_bytes: int) -> bool:
        return free_bytes < self.min_free_bytes

    @asynccontextmanager
    async def reserve(self, nbytes: int) -> AsyncIterator[None]:
        """Room for a body of ``nbytes`` of media, or MediaStorageLow (507)."""
        if self.min_free_bytes <= 0:
            yield
            return
        free = await asyncio.to_thread(self.free_bytes)
        if self.is_low(free - self.reserved - nbytes):
            log.warning(
                "media refused: disk space low",
                extra={"free_mb": free // MIB, "reserved_mb": self.reserved // MIB, "body_bytes": nbytes},
            )
            raise MediaStorageLow(
                f"the disk keeps less than {self.min_free_bytes // MIB} MB free with this upload"
            )
        self.reserved += nbytes
        try:
            yield
        finally:
            self.reserved -= nbytes


@dataclass
class TempUpload:
    path: Path
    size: int
    sha256: str


def _tmp_dir(media_dir: Path) -> Path:
    path = media_dir / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


async def receive_part(part: BodyPartReader, media_dir: Path, max_bytes: int, what: str) -> TempUpload:
    """Stream one multipart file part to a temporary file (fsynced); refuse more than ``max_bytes``."""
    path = await asyncio.to_thread(_tmp_dir, media_dir) / f"upload-{uuid.uuid4().hex}"
    digest = hashlib.sha256()
    size = 0
    # File I/O (above all the fsync) and the SHA-256 of each chunk run on worker threads, never on
    # the event loop: a 40 MB message hashed on the loop stalls every other request for tens of ms.
    handle = await asyncio.to_thread(open, path, "wb")
    try:
        try:
            while True:
                chunk = await part.read_chunk(CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(
                        f"the {what} is larger than {max_bytes} bytes", code=f"{what}_too_large"
                    )
                await asyncio.to_thread(_hash_and_write, digest, handle, chunk)
            await asyncio.to_thread(_flush_and_sync, handle)
        finally:
            await asyncio.to_thread(handle.close)
    except BaseException:
        discard(path)
        raise
    if size == 0:
        discard(path)
        raise BadRequest(f"the {what} is empty", code=f"{what}_empty")
    return TempUpload(path=path, size=size, sha256=digest.hexdigest())


def _hash_and_write(digest: hashlib._Hash, handle: BinaryIO, chunk: bytes) -> None:
    # One thread hop per chunk for both; hashlib releases the GIL on chunks this large. Chunks of
    # one upload are awaited one after the other, so the digest is never updated concurrently.
    digest.update(chunk)
    handle.write(chunk)


def _flush_and_sync(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def sniff_image(path: Path) -> tuple[str, str]:
    """(content type, suffix) from the magic bytes of a photo, or BadRequest."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", ".jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", ".png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp", ".webp"
    raise BadRequest("a photo must be a JPEG, PNG or WebP image", code="photo_not_image")


def commit_file(media_dir: Path, upload: TempUpload, year: int, suffix: str, area: str = "petitions") -> str:
    """Move a validated upload to its final name atomically and durably; return the storage name
    (relative to ``media_dir``). ``area`` is the feature's folder (petitions, notices, …)."""
    return commit_files(media_dir, [(upload, suffix)], year, [], area)[0]


def commit_files(
    media_dir: Path,
    uploads: list[tuple[TempUpload, str]],
    year: int,
    moved: list[Path],
    area: str = "petitions",
) -> list[str]:
    """``commit_file`` for several uploads (each with its suffix), fsyncing each directory once
    after all the renames. Every file moved is appended to ``moved`` as soon as it is, so the
    caller can remove them if this or what follows fails."""
    folder = media_dir / area / str(year)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for upload, suffix in uploads:
        name = f"{area}/{year}/{uuid.uuid4().hex}{suffix}"
        os.replace(upload.path, media_dir / name)
        moved.append(media_dir / name)
        names.append(name)
    fsync_dir(folder)
    for source in sorted({upload.path.parent for upload, _ in uploads}):
        fsync_dir(source)
    return names


def discard(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError:
        log.warning("could not remove a temporary upload", exc_info=True)


def discard_all(paths: list[Path]) -> None:
    for path in paths:
        discard(path)


def resolve(media_dir: Path, storage_name: str) -> Path:
    """The absolute path of a stored file; refuses names that escape ``media_dir``."""
    root = media_dir.resolve()
    path = (root / storage_name).resolve()
    if root not in path.parents:
        raise BadRequest("invalid storage name", code="invalid_storage_name")
    return path
