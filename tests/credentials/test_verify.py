"""Verify, through the API and the page: a file made here and unchanged, made here and changed
after download, or not made here; forged, truncated and stripped manifests; files that are not
images. Alice owns the images; Bob may not see them; Ada is staff."""

import io
import struct
import zlib

import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image

from generation.credentials import keys
from generation.credentials.download import PNG
from generation.credentials.manifest import sign
from generation.models import GeneratedImage
from tests.credentials.studio_files import api_client, downloaded, encoded, picture, stored_image
from tests.factories import PASSWORD, GeneratedImageFactory, GenerationJobFactory, UserFactory

pytestmark = pytest.mark.django_db


def upload(data: bytes, name: str = "upload.png") -> io.BytesIO:
    file = io.BytesIO(data)
    file.name = name
    return file


def api_verify(client, data: bytes, name: str = "upload.png"):
    return client.post("/api/v1/verify", {"file": upload(data, name)})


def verified(client, data: bytes, name: str = "upload.png") -> dict:
    """The API's answer for one file (asserted 200)."""
    response = api_verify(client, data, name)
    assert response.status_code == 200, response.content
    return response.json()


def page_verify(client, data: bytes, name: str = "upload.png"):
    return client.post(reverse("verify"), {"file": upload(data, name)})


def download(client, image: GeneratedImage, **query) -> bytes:
    return downloaded(client.get(reverse("image-file", args=[image.pk]), {"download": "1", **query}))


def chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    found, at = [], 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        found.append((png[at + 4 : at + 8], png[at + 8 : at + 8 + length]))
        at += 12 + length
    return found


def png_of(parts: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d)) for k, d in parts)
    return b"\x89PNG\r\n\x1a\n" + body


def with_manifest(png: bytes, change) -> bytes:
    """The PNG with its C2PA chunk (caBX) changed by `change` (None: removed), the rest intact."""
    parts = [(kind, change(data) if kind == b"caBX" else data) for kind, data in chunks(png)]
    assert any(kind == b"caBX" for kind, _ in chunks(png))
    return png_of([(kind, data) for kind, data in parts if data is not None])


@pytest.fixture
def ada(db):
    return UserFactory(username="ada", is_staff=True)


def test_a_file_downloaded_unchanged_is_made_by_this_studio_unmodified(alice, alice_client, signing) -> None:
    image = stored_image(alice)
    answer = verified(api_client(alice), download(alice_client, image))
    assert answer["verdict"] == "unmodified" and answer["manifest"] == "intact"
    assert answer["image"]["id"] == str(image.pk) and answer["image"]["page_url"].endswith(f"/images/{image.pk}/")
    page = page_verify(alice_client, download(alice_client, image, format="webp"), "x.webp").content.decode()
    assert "Made by this studio, unmodified" in page and reverse("image", args=[image.pk]) in page


def test_a_file_re_saved_after_download_is_made_here_and_changed_naming_its_image(alice, alice_client, signing) -> None:
    image = stored_image(alice)
    served = Image.open(io.BytesIO(download(alice_client, image)))
    half = served.resize((256, 256), Image.Resampling.LANCZOS)
    for copy in (encoded(served, "PNG"), encoded(half, "WEBP", quality=85), encoded(served, "JPEG", quality=90)):
        answer = verified(api_client(alice), copy)
        assert answer["verdict"] == "changed" and answer["manifest"] == "absent"
        assert answer["watermark"] == image.pk.hex[:8] and answer["image"]["id"] == str(image.pk)
    page = page_verify(alice_client, encoded(half, "PNG")).content.decode()
    assert "changed after download" in page and reverse("image", args=[image.pk]) in page


def test_a_picture_the_studio_never_made_has_no_studio_credentials(alice, alice_client, signing) -> None:
    answer = verified(api_client(alice), encoded(picture(seed=5), "PNG"))
    assert answer == answer | {"verdict": "none", "manifest": "absent", "watermark": None, "image": None}
    assert "No studio credentials" in page_verify(alice_client, encoded(picture(seed=5), "PNG")).content.decode()


def test_a_stripped_manifest_leaves_the_watermark_to_tell(alice, alice_client, signing) -> None:
    image = stored_image(alice)
    stripped = with_manifest(download(alice_client, image), lambda data: None)
    answer = verified(api_client(alice), stripped)
    assert (answer["verdict"], answer["manifest"], answer["image"]["id"]) == ("changed", "absent", str(image.pk))


def test_a_truncated_or_garbled_manifest_is_damaged_and_the_watermark_tells(alice, alice_client, signing) -> None:
    image = stored_image(alice)
    signed = download(alice_client, image)
    truncated = with_manifest(signed, lambda data: data[: len(data) // 2])
    garbled = with_manifest(signed, lambda data: data[:40] + bytes(b ^ 0x5A for b in data[40:80]) + data[80:])
    for broken in (truncated, garbled):
        answer = verified(api_client(alice), broken)
        assert answer["verdict"] == "changed" and answer["manifest"] == "damaged"
        assert answer["image"]["id"] == str(image.pk)


def test_our_manifest_over_other_pixels_is_changed_after_download(alice, alice_client, signing) -> None:
    image = stored_image(alice)
    signed = download(alice_client, image)
    ours = next(data for kind, data in chunks(signed) if kind == b"caBX")
    repainted = Image.open(io.BytesIO(signed))
    repainted.paste((255, 0, 0), (0, 0, 40, 40))
    parts = chunks(encoded(repainted, "PNG"))
    parts.insert(1, (b"caBX", ours))  # the manifest we signed, over pixels it does not match
    answer = verified(api_client(alice), png_of(parts))
    assert (answer["verdict"], answer["manifest"], answer["image"]["id"]) == ("changed", "changed", str(image.pk))


def test_a_manifest_signed_by_anyone_else_is_not_this_studios(alice, alice_client, signing) -> None:
    image = stored_image(alice)
    forger = keys.development_chain(organisation="Brand Studio")  # same names, another key
    forged_keys = keys.SigningKeys(forger.chain, forger.key, forger.root, keys.CURVES["secp256r1"])
    stranger = GeneratedImage(pk=image.pk, job=GenerationJobFactory(owner=alice), seed=1)  # claims to be ours
    on_a_stranger = sign(io.BytesIO(encoded(picture(seed=9), "PNG")), PNG, stranger, forged_keys).read()
    answer = verified(api_client(alice), on_a_stranger)
    assert (answer["verdict"], answer["manifest"], answer["image"]) == ("none", "untrusted", None)
    copy = encoded(Image.open(io.BytesIO(download(alice_client, image))), "PNG")
    on_ours = sign(io.BytesIO(copy), PNG, image, forged_keys).read()
    assert verified(api_client(alice), on_ours)["verdict"] == "changed"  # the mark still says it is ours


def test_bob_learns_the_verdict_but_not_which_of_alices_images(alice, alice_client, bob, bob_client, signing) -> None:
    image = stored_image(alice)
    signed = download(alice_client, image)
    answer = verified(api_client(bob), signed)
    assert answer["verdict"] == "unmodified" and answer["image"] is None and answer["lineage"] == []
    page = page_verify(bob_client, signed).content.decode()
    assert "not yours to see" in page and str(image.pk) not in page


def test_staff_see_the_image_its_job_in_the_admin_and_what_it_was_made_from(alice, alice_client, ada, signing) -> None:
    source = stored_image(alice)
    edited = stored_image(alice)
    edited.job.params["edit"] = {"of": str(source.pk), "of_seed": source.seed, "instruction": "bluer"}
    edited.job.save()
    answer = verified(api_client(ada), download(alice_client, edited))
    assert answer["image"] == answer["image"] | {"id": str(edited.pk), "page_url": None}
    assert answer["job_admin_url"].endswith(reverse("admin:generation_generationjob_change", args=[edited.job_id]))
    assert [(step["kind"], step["image_id"]) for step in answer["lineage"]] == [("edit", str(source.pk))]
    ada_client = Client()
    assert ada_client.login(username="ada", password=PASSWORD)
    page = page_verify(ada_client, download(alice_client, edited)).content.decode()
    assert reverse("admin:generation_generationjob_change", args=[source.job_id]) in page


def test_a_file_that_is_not_an_image_is_a_400_that_says_so_and_a_form_error_on_the_page(alice, alice_client) -> None:
    response = api_verify(api_client(alice), b"%PDF-1.7 not a picture", "report.pdf")
    assert response.status_code == 400
    assert response.json() == {"message": "report.pdf: not a PNG, JPEG or WebP image.", "field": "file"}
    page = page_verify(alice_client, b"%PDF-1.7 not a picture", "report.pdf")
    assert page.status_code == 422 and "report.pdf: not a PNG, JPEG or WebP image." in page.content.decode()


def test_a_file_cut_short_is_a_400_not_a_server_error(alice, alice_client, signing) -> None:
    image = stored_image(alice)
    signed = download(alice_client, image)
    response = api_verify(api_client(alice), signed[: len(signed) // 2])
    assert response.status_code == 400 and "damaged" in response.json()["message"]
    assert page_verify(alice_client, signed[: len(signed) // 2]).status_code == 422


def test_no_file_is_a_form_error_and_the_page_is_in_the_nav(alice_client) -> None:
    page = alice_client.get(reverse("verify")).content.decode()
    assert f'href="{reverse("verify")}"' in page
    response = alice_client.post(reverse("verify"))
    assert response.status_code == 422 and "Choose a file to verify." in response.content.decode()
    assert api_verify(api_client(UserFactory(username="carol")), b"").status_code == 400


def test_without_a_certificate_the_watermark_still_says_made_here_and_that_changes_cannot_be_told(
    alice, alice_client
) -> None:
    image = stored_image(alice)
    answer = verified(api_client(alice), download(alice_client, image))
    assert (answer["verdict"], answer["manifest"], answer["image"]["id"]) == ("changed", "absent", str(image.pk))
    assert "no certificate" in answer["message"]


def test_signed_out_visitors_are_sent_to_sign_in(client) -> None:
    assert client.get(reverse("verify")).status_code == 302
    assert client.post("/api/v1/verify").status_code == 401


def test_a_downloaded_svg_verifies_and_an_svg_changed_after_does_not(alice, alice_client, signing) -> None:
    image = GeneratedImageFactory(job__owner=alice, traced=True)
    svg = download(alice_client, image, format="svg")
    answer = verified(api_client(alice), svg, "icon.svg")
    assert (answer["verdict"], answer["image"]["id"]) == ("unmodified", str(image.pk))
    changed = svg.replace(b'fill="#0f6cbd"', b'fill="#ff0000"')
    answer = verified(api_client(alice), changed, "icon.svg")
    assert (answer["verdict"], answer["manifest"], answer["watermark"]) == ("none", "changed", None)


def test_a_reviewer_sees_the_lineage_but_no_admin_links(alice, alice_client, bob, bob_client, signing) -> None:
    from django.contrib.auth.models import Group

    from generation.auth import REVIEWER_GROUP

    bob.groups.add(Group.objects.get_or_create(name=REVIEWER_GROUP)[0])
    source = stored_image(alice)
    edited = stored_image(alice)
    edited.job.params["edit"] = {"of": str(source.pk), "of_seed": source.seed, "instruction": "bluer"}
    edited.job.save()
    answer = verified(api_client(bob), download(alice_client, edited))
    assert answer["image"]["id"] == str(edited.pk) and answer["job_admin_url"] is None
    assert [(step["kind"], step["admin_url"]) for step in answer["lineage"]] == [("edit", None)]
    page = page_verify(bob_client, download(alice_client, edited)).content.decode()
    assert "Made from:" in page and "/admin/" not in page.split("Made from:")[1]
