"""A full media disk: a write that runs out of space leaves nothing behind (no partial file at its
name, none in .partial/), requests that write answer 507 "storage is full" rather than a 500, and
/health/ fails storage before the disk is full."""

import errno
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from django.test import Client
from django.urls import reverse

from generation.health import disk_full
from generation.models import InputImage
from generation.storage import PARTIAL_DIR, AtomicFileSystemStorage, sweep_partial
from generation.tokens import token_create
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db

PICTURE = png_bytes("red", (96, 64))


class FillsUp(ContentFile):
    """Content whose write runs out of space halfway, as a full disk answers: the first half is
    written, then ENOSPC."""

    def chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
        data = self.read()
        yield data[: len(data) // 2]
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture
def media(settings) -> Path:
    """The studio's own local storage (the tests' default is Django's plain one)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "generation.storage.AtomicFileSystemStorage",
            "OPTIONS": {"location": settings.MEDIA_ROOT},
        },
    }
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def disk_fills_up(media, monkeypatch) -> None:
    """Every file a request stores from here on runs out of space halfway through its write."""
    monkeypatch.setattr(ContentFile, "chunks", FillsUp.chunks)


def files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def test_a_write_that_runs_out_of_space_leaves_nothing_behind_and_its_name_free(media) -> None:
    storage = AtomicFileSystemStorage(location=media)
    with pytest.raises(OSError) as failure:
        storage.save("inputs/sketch.png", FillsUp(PICTURE))
    assert failure.value.errno == errno.ENOSPC
    assert files_under(media) == []
    assert storage.save("inputs/sketch.png", ContentFile(PICTURE)) == "inputs/sketch.png"
    assert (media / "inputs/sketch.png").read_bytes() == PICTURE and files_under(media) == ["inputs/sketch.png"]


def test_a_whole_write_never_overwrites_and_keeps_djangos_permissions(media, settings) -> None:
    settings.FILE_UPLOAD_PERMISSIONS = 0o640
    storage = AtomicFileSystemStorage(location=media)
    first = storage.save("renders/01.png", ContentFile(PICTURE))
    second = storage.save("renders/01.png", ContentFile(b"another"))
    assert first == "renders/01.png" and second != first and second.startswith("renders/01_")
    assert (media / first).read_bytes() == PICTURE and (media / second).read_bytes() == b"another"
    assert stat.S_IMODE((media / first).stat().st_mode) == 0o640
    assert os.listdir(media / PARTIAL_DIR) == []


def test_a_large_upload_spooled_to_disk_is_moved_in_whole(media) -> None:
    upload = TemporaryUploadedFile("big.png", "image/png", len(PICTURE), None)
    upload.write(PICTURE)
    upload.flush()
    with upload:
        name = AtomicFileSystemStorage(location=media).save("inputs/big.png", upload)
    assert (media / name).read_bytes() == PICTURE and files_under(media) == ["inputs/big.png"]


def test_without_hard_links_a_write_still_lands_whole_and_never_overwrites(media, monkeypatch) -> None:
    def no_links(source: str, target: str) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    storage = AtomicFileSystemStorage(location=media)
    assert storage.save("a.png", ContentFile(PICTURE)) == "a.png"
    assert storage.save("a.png", ContentFile(b"other")) != "a.png"
    assert (media / "a.png").read_bytes() == PICTURE and os.listdir(media / PARTIAL_DIR) == []


def test_the_sweep_removes_only_temporary_files_older_than_an_hour(media) -> None:
    (media / PARTIAL_DIR).mkdir(parents=True)
    old, fresh, kept = media / PARTIAL_DIR / "old.part", media / PARTIAL_DIR / "fresh.part", media / "kept.png"
    for path in (old, fresh, kept):
        path.write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    for path in (old, kept):
        os.utime(path, (two_hours_ago, two_hours_ago))
    assert sweep_partial() == 1
    assert not old.exists() and fresh.exists() and kept.exists()


def test_the_sweep_does_nothing_for_another_storage(tmp_path) -> None:
    (tmp_path / PARTIAL_DIR).mkdir()
    (tmp_path / PARTIAL_DIR / "old.part").write_bytes(b"x")
    os.utime(tmp_path / PARTIAL_DIR / "old.part", (0, 0))
    assert sweep_partial(storage=FileSystemStorage(location=tmp_path)) == 0


def test_a_sketch_uploaded_to_a_full_disk_answers_507_and_leaves_nothing(alice, media, disk_fills_up) -> None:
    browser = Client(raise_request_exception=False)
    browser.force_login(alice)
    response = browser.post(reverse("sketch-box"), {"sketch": SimpleUploadedFile("sketch.png", PICTURE)})
    assert response.status_code == 507 and "storage is full" in response.content.decode()
    assert not InputImage.objects.exists() and files_under(media) == []


def test_the_api_upload_to_a_full_disk_answers_json_507_saying_storage_is_full(alice, media, disk_fills_up) -> None:
    api = Client(
        HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='tests')[1]}", raise_request_exception=False
    )
    response = api.post("/api/v1/inputs", {"file": SimpleUploadedFile("sketch.png", PICTURE)})
    assert response.status_code == 507
    assert response.json()["message"].startswith("The studio's storage is full;") and response.json()["field"] is None
    assert not InputImage.objects.exists() and files_under(media) == []


def test_a_full_disk_is_recognised_however_the_error_was_wrapped() -> None:
    try:
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        except OSError as exc:
            raise RuntimeError("could not store the sketch") from exc
    except RuntimeError as wrapped:
        assert disk_full(wrapped)
    assert not disk_full(OSError(errno.EACCES, "Permission denied")) and not disk_full(None)


def test_the_health_check_fails_storage_when_free_space_is_under_the_minimum(client, media, settings) -> None:
    settings.STUDIO_MIN_FREE_DISK_MB = 2**40  # more than any disk has
    response = client.get("/health/")
    body = response.json()
    assert response.status_code == 503 and body["status"] == "failing" and body["storage"] is False
    assert body["database"] is True and body["storage_min_free_mb"] == 2**40 and body["storage_free_mb"] < 2**40


def test_the_health_check_passes_with_enough_free_space_and_says_only_what_it_said(client, media, settings) -> None:
    settings.STUDIO_MIN_FREE_DISK_MB = 0
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": True, "broker": True, "storage": True}
