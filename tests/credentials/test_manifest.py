"""The C2PA manifest every download carries: read back by c2pa-python's Reader from the PNG, the
WebP, the SVG and the zip, with what it says checked; and what a download carries without a
certificate (the IPTC source type in XMP)."""

import io
import zipfile

import c2pa
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.urls import reverse
from PIL import Image

from generation.credentials import keys, manifest, xmp
from generation.models import BrandLora, GeneratedImage
from tests.credentials.studio_files import api_client, downloaded, encoded, picture, stored_image
from tests.factories import GeneratedImageFactory, GenerationJobFactory

pytestmark = pytest.mark.django_db

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
LORA = {"name": "Icons", "path": "flux/icons-v3.safetensors", "strength": 0.8, "trigger_words": ""}


def read(data: bytes, mime: str, anchors: bytes) -> tuple[str, dict]:
    """The validation state and the active manifest, trusting the studio's root as Verify does."""
    trust = {"trust": {"trust_anchors": anchors.decode()}, "verify": {"verify_trust": True}}
    with c2pa.Reader(mime, io.BytesIO(data), context=c2pa.Context(c2pa.Settings.from_dict(trust))) as reader:
        return reader.get_validation_state(), reader.get_active_manifest()


def assertion(active: dict, label: str) -> dict:
    return next(a["data"] for a in active["assertions"] if a["label"] == label)


def lora_image(owner) -> GeneratedImage:
    image = stored_image(owner)
    image.job.params["loras"] = [LORA]
    image.job.params["kit"] = {"slug": "acme", "name": "Acme", "version": 4}  # as recipe freezes it
    image.job.save()
    BrandLora.objects.create(name="Icons", family="flux", file=LORA["path"], version=3)
    return image


def test_a_downloaded_png_carries_a_signed_manifest_naming_model_loras_and_asset_type_version(
    alice, alice_client, signing
) -> None:
    image = lora_image(alice)
    data = downloaded(alice_client.get(reverse("image-file", args=[image.pk]), {"download": "1"}))
    state, active = read(data, "image/png", signing.root)
    assert state == "Trusted" and active["claim_generator_info"][0]["name"] == "Brand Studio"
    [created, adjusted] = assertion(active, "c2pa.actions.v2")["actions"]
    assert created["action"] == "c2pa.created" and created["digitalSourceType"] == IPTC + "trainedAlgorithmicMedia"
    assert created["softwareAgent"]["name"] == image.job.params["model"]["name"]
    assert adjusted["action"] == "c2pa.color_adjustments"  # the finishing stage the worker recorded
    record = assertion(active, "com.brandstudio.generation")
    assert record["image"] == str(image.pk) and record["job"] == str(image.job_id)
    assert record["model"]["key"] == "tiny-flux" and record["model"]["license"] == image.job.params["model"]["license"]
    assert record["loras"] == [{"name": "Icons", "file": LORA["path"], "version": 3, "strength": 0.8}]
    assert record["asset_type"] == {"slug": image.job.preset.slug, "version": image.job.params["preset_version"]}
    assert record["kit_version"] == "acme v4"


def test_the_webp_through_the_api_carries_the_same_manifest(alice, signing) -> None:
    image = lora_image(alice)
    data = downloaded(api_client(alice).get(f"/api/v1/images/{image.pk}/file?format=webp"))
    state, active = read(data, "image/webp", signing.root)
    assert state == "Trusted" and active["title"].endswith(".webp")
    assert assertion(active, "com.brandstudio.generation")["loras"][0]["version"] == 3
    assert Image.open(io.BytesIO(data)).size == (512, 512)


def test_a_finished_images_render_is_the_ingredient_its_finishing_actions_name(alice, alice_client, signing) -> None:
    image = stored_image(alice)  # finishing changed the render: the PNG is a new file
    data = downloaded(alice_client.get(reverse("image-file", args=[image.pk])))
    _, active = read(data, "image/png", signing.root)
    assert [i["relationship"] for i in active["ingredients"]] == ["componentOf"]
    adjusted = assertion(active, "c2pa.actions.v2")["actions"][1]
    assert adjusted["parameters"]["ingredients"][0]["url"].endswith("c2pa.ingredient.v3")


def test_an_edit_names_its_source_image_as_parent_ingredient_with_the_actions_taken(
    alice, alice_client, signing
) -> None:
    source = stored_image(alice)
    job = GenerationJobFactory(owner=alice, images_total=1, status="complete")
    job.params["edit"] = {"of": str(source.pk), "of_seed": source.seed, "instruction": "make it blue"}
    job.save()
    edited = GeneratedImageFactory(job=job)
    data = downloaded(alice_client.get(reverse("image-file", args=[edited.pk])))
    state, active = read(data, "image/png", signing.root)
    assert state == "Trusted"
    [ingredient] = active["ingredients"]
    assert ingredient["relationship"] == "parentOf" and ingredient["title"] == source.download_name
    opened, changed = assertion(active, "c2pa.actions.v2")["actions"]
    assert opened["action"] == "c2pa.opened" and opened["parameters"]["ingredients"]
    assert changed["digitalSourceType"] == IPTC + "compositeWithTrainedAlgorithmicMedia"
    assert assertion(active, "com.brandstudio.generation")["source"] == {"kind": "edit", "image": str(source.pk)}


@pytest.mark.parametrize(
    ("steering", "expected"),
    [
        ({}, "trainedAlgorithmicMedia"),
        ({"variation": {"of": "x", "mode": "img2img"}}, "trainedAlgorithmicMedia"),
        ({"sketch": {"input": "x"}}, "compositeWithTrainedAlgorithmicMedia"),
        ({"inpaint": {"of": "x", "outpaint": {"left": 20}}}, "compositeWithTrainedAlgorithmicMedia"),
        ({"edit": {"of": "x"}}, "compositeWithTrainedAlgorithmicMedia"),
    ],
)
def test_edits_repaints_and_sketches_are_composites_and_the_rest_made_by_a_model_alone(steering, expected) -> None:
    job = GenerationJobFactory.build(params=steering)
    assert manifest.source_type(job) == expected


def test_the_svg_carries_its_manifest_embedded(alice, alice_client, signing) -> None:
    image = GeneratedImageFactory(job__owner=alice, traced=True)
    data = downloaded(alice_client.get(reverse("image-file", args=[image.pk]), {"format": "svg"}))
    state, active = read(data, "image/svg+xml", signing.root)
    assert state == "Trusted" and data.startswith(b"<svg") and b"c2pa:manifest" in data
    assert "c2pa.converted" in [a["action"] for a in assertion(active, "c2pa.actions.v2")["actions"]]
    assert IPTC.encode() in data  # the XMP source type beside it


def test_a_zip_carries_signed_pngs_and_svgs(alice, alice_client, signing) -> None:
    image = GeneratedImageFactory(job__owner=alice, traced=True)
    archive = zipfile.ZipFile(io.BytesIO(downloaded(alice_client.get(reverse("job-zip", args=[image.job_id])))))
    png, svg = archive.namelist()
    assert read(archive.read(png), "image/png", signing.root)[0] == "Trusted"
    assert read(archive.read(svg), "image/svg+xml", signing.root)[0] == "Trusted"
    assert archive.testzip() is None


def test_without_a_certificate_downloads_carry_the_iptc_source_type_in_xmp_and_no_manifest(alice, alice_client) -> None:
    image = stored_image(alice)
    png = downloaded(alice_client.get(reverse("image-file", args=[image.pk])))
    webp = downloaded(api_client(alice).get(f"/api/v1/images/{image.pk}/file?format=webp"))
    source_type = f"<Iptc4xmpExt:DigitalSourceType>{IPTC}trainedAlgorithmicMedia</Iptc4xmpExt:DigitalSourceType>"
    assert source_type in Image.open(io.BytesIO(png)).info["XML:com.adobe.xmp"]
    assert source_type.encode() in Image.open(io.BytesIO(webp)).info["xmp"]
    for data, mime in ((png, "image/png"), (webp, "image/webp")):
        assert c2pa.Reader.try_create(mime, io.BytesIO(data)) is None


@pytest.mark.parametrize(
    ("image", "options"),
    [
        (picture().convert("RGBA"), {"lossless": True}),  # VP8L with its alpha bit
        (picture(), {"lossless": True}),  # VP8L
        (picture(), {"quality": 80}),  # VP8, lossy
        (picture().convert("RGBA"), {"quality": 80}),  # VP8X with ALPH already
    ],
)
def test_xmp_goes_into_every_kind_of_webp_without_touching_a_pixel(image, options) -> None:
    original = encoded(image, "WEBP", **options)
    rewritten = xmp.with_xmp(io.BytesIO(original), "image/webp", xmp.packet("trainedAlgorithmicMedia")).read()
    before, after = Image.open(io.BytesIO(original)), Image.open(io.BytesIO(rewritten))
    assert after.mode == before.mode and after.tobytes() == before.tobytes()
    assert b"trainedAlgorithmicMedia" in after.info["xmp"]


def test_the_command_writes_a_development_chain_that_signs_downloads(alice, alice_client, settings, tmp_path) -> None:
    call_command("make_signing_chain", "--dir", str(tmp_path / "credentials"), stdout=io.StringIO())
    settings.STUDIO_C2PA_CERT_FILE = str(tmp_path / "credentials" / "signing-chain.pem")
    settings.STUDIO_C2PA_KEY_FILE = str(tmp_path / "credentials" / "signing-key.pem")
    image = GeneratedImageFactory(job__owner=alice)
    data = downloaded(alice_client.get(reverse("image-file", args=[image.pk])))
    root = (tmp_path / "credentials" / "root-ca.pem").read_bytes()
    assert read(data, "image/png", root)[0] == "Trusted"


def test_a_key_that_is_not_the_certificates_is_refused_with_a_reason(settings, tmp_path) -> None:
    (tmp_path / "chain.pem").write_bytes(keys.development_chain().chain)
    (tmp_path / "key.pem").write_bytes(keys.development_chain().key)
    settings.STUDIO_C2PA_CERT_FILE = str(tmp_path / "chain.pem")
    settings.STUDIO_C2PA_KEY_FILE = str(tmp_path / "key.pem")  # another chain's key
    with pytest.raises(ImproperlyConfigured, match="is not the key of the first certificate"):
        keys.signing_keys()


def test_with_a_certificate_a_download_streams_through_the_studio_even_where_blob_urls_are_on(
    alice, alice_client, settings, signing
) -> None:
    settings.STUDIO_SIGNED_DOWNLOADS = True  # Azure's short-lived blob URLs would serve the stored bytes
    image = GeneratedImageFactory(job__owner=alice)
    response = alice_client.get(reverse("image-file", args=[image.pk]), {"download": "1"})
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment")
    assert read(downloaded(response), "image/png", signing.root)[0] == "Trusted"
