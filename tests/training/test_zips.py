"""A training zip with one damaged or misnamed entry: that entry is refused with its name and the
reason, and the rest of the zip is still read."""

import io
import zipfile

import pytest

from generation.models import AssetPreset, TrainingSet
from generation.training import data as training_data
from tests.training.test_training import icon, png, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def training_set(alice) -> TrainingSet:
    return TrainingSet.objects.create(name="Icons", preset=AssetPreset.objects.get(slug="icon"), family="flux")


def zip_with(damaged: str, compression: int) -> bytes:
    """good.png stored whole, and `damaged` whose compressed stream is broken in the middle."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("good.png", png(icon(1)), compress_type=zipfile.ZIP_STORED)
        noise = bytes(range(256)) * 64  # compresses, but not to nothing
        archive.writestr(damaged, png(icon(2)) + noise, compress_type=compression)
    data = bytearray(buffer.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo(damaged)
    start = info.header_offset + 30 + len(damaged.encode()) + len(info.extra)
    middle = start + info.compress_size // 2
    data[middle : middle + 32] = b"\xff" * 32
    return bytes(data)


@pytest.mark.parametrize(
    "compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA], ids=["deflate", "bzip2", "lzma"]
)
def test_a_damaged_stream_refuses_its_entry_by_name_and_keeps_the_rest(training_set, compression: int) -> None:
    result = training_data.add_uploads(training_set, [upload("set.zip", zip_with("broken.png", compression))])
    assert [row.original_name for row in result.added] == ["good.png"]
    assert [name for name, _ in result.rejected] == ["broken.png"]
    assert "cannot be read" in result.rejected[0][1]


def test_a_name_that_is_not_utf8_under_the_utf8_flag_refuses_that_entry_only(training_set) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("good.png", png(icon(1)))
        archive.writestr("cafX.png", png(icon(2)))
    data = bytearray(buffer.getvalue().replace(b"cafX.png", b"caf\xe9.png"))  # Latin-1, in both headers
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # "the names are UTF-8", on its entry
        at = data.find(signature, data.find(signature) + 1)  # the second entry's header
        data[at + flags_at + 1] |= 0x08  # bit 11 of the little-endian flags
    data = bytes(data)
    with pytest.raises(UnicodeDecodeError):
        zipfile.ZipFile(io.BytesIO(data))  # what Python's zipfile makes of it
    result = training_data.add_uploads(training_set, [upload("set.zip", data)])
    assert [row.original_name for row in result.added] == ["good.png"]
    assert len(result.rejected) == 1 and "not UTF-8" in result.rejected[0][1]
