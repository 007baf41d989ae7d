"""Style references: an IP-Adapter add-on attached per job on the loaded weights, on tiny SDXL."""

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from generation.devtools.tiny import (
    IP_ADAPTER_WEIGHTS,
    build_tiny_flux_ip_adapter,
    build_tiny_ip_adapter,
    build_tiny_sdxl,
    build_tiny_zimage,
)
from generation.engine import engine_class
from generation.engine.types import EngineError, GenerationRequest, IPAdapterSpec
from generation.jobs import submit as jobs_submit
from generation.models import AddOn, GenerationJob, ImageModel, InputImage, JobStatus
from generation.worker import run as worker_run
from tests.factories import BrandKitFactory
from tests.pipes import record_argument


@pytest.fixture(scope="module")
def sdxl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_sdxl(tmp_path_factory.mktemp("models") / "tiny-sdxl")


@pytest.fixture(scope="module")
def ip_adapter_dir(sdxl_dir: Path) -> Path:
    return build_tiny_ip_adapter(sdxl_dir.parent / "tiny-ip-adapter", sdxl_dir / "unet")


def draw(engine, **fields) -> np.ndarray:
    images: list = []
    request = GenerationRequest(
        prompt="a star", negative_prompt="", width=64, height=64, steps=3, guidance_scale=3.5, seeds=[4], **fields
    )
    engine.generate(request, max_batch=1, on_step=lambda *_: None, on_images=lambda _, batch: images.extend(batch))
    return np.asarray(images[0], dtype=np.float32)


def test_references_steer_the_image_and_leave_no_trace_in_the_next_job(sdxl_dir, ip_adapter_dir) -> None:
    engine = engine_class("sdxl")(sdxl_dir, device="cpu")
    spec = IPAdapterSpec(ip_adapter_dir, IP_ADAPTER_WEIGHTS)
    plain, held = draw(engine), engine.memory_bytes
    red, noise = Image.new("RGB", (64, 64), "red"), Image.effect_noise((64, 64), 90).convert("RGB")
    with_red = draw(engine, references=[red], ip_adapter=spec)
    assert engine.memory_bytes > held  # its encoder and weights count against the worker's budget
    assert np.abs(with_red - plain).mean() > 0.5  # the reference moved the image
    assert np.abs(draw(engine, references=[red], ip_adapter=spec) - with_red).max() == 0  # reproducible
    assert np.abs(draw(engine, references=[red, noise], ip_adapter=spec) - with_red).mean() > 0.1  # both count
    weaker = draw(engine, references=[red], ip_adapter=spec, reference_strength=0.1)
    assert np.abs(weaker - with_red).mean() > 0.1
    assert len(engine._ip_adapters) == 1  # read from disk once for the worker
    assert np.abs(draw(engine) - plain).max() == 0  # taken off: as if it had never been loaded
    # Put back as built the first time (not built again): the same image, then none of it.
    assert np.abs(draw(engine, references=[red], ip_adapter=spec) - with_red).max() == 0
    assert np.abs(draw(engine) - plain).max() == 0


def test_xlabs_flux_ip_adapter_steers_flux_and_leaves_no_trace(tiny_flux_dir, tmp_path) -> None:
    """XLabs' FLUX IP-Adapter layout (ip_adapter_proj_model.*, double_blocks.N.processor.*)
    through FluxPipeline's load_ip_adapter, attached per job like SDXL's."""
    folder = build_tiny_flux_ip_adapter(tmp_path / "flux-ip", tiny_flux_dir / "transformer")
    engine = engine_class("flux")(tiny_flux_dir, device="cpu")
    spec = IPAdapterSpec(folder, IP_ADAPTER_WEIGHTS)
    plain = draw(engine)
    red = Image.new("RGB", (64, 64), "red")
    with_red = draw(engine, references=[red], ip_adapter=spec)
    assert np.abs(with_red - plain).mean() > 0.5
    assert np.abs(draw(engine, references=[red], ip_adapter=spec, reference_strength=0.1) - with_red).mean() > 0.1
    assert np.abs(draw(engine) - plain).max() == 0
    assert np.abs(draw(engine, references=[red], ip_adapter=spec) - with_red).max() == 0  # put back as built
    assert np.abs(draw(engine) - plain).max() == 0


def test_a_family_without_an_ip_adapter_or_a_sketch_with_references_is_a_clear_error(
    sdxl_dir, ip_adapter_dir, tmp_path
) -> None:
    red = Image.new("RGB", (64, 64), "red")
    spec = IPAdapterSpec(ip_adapter_dir, IP_ADAPTER_WEIGHTS)
    zimage = engine_class("zimage")(build_tiny_zimage(tmp_path / "zimage"), device="cpu")
    with pytest.raises(EngineError, match="take no style references"):
        draw(zimage, references=[red], ip_adapter=spec)
    engine = engine_class("sdxl")(sdxl_dir, device="cpu")
    with pytest.raises(EngineError, match="not with a sketch"):
        draw(engine, references=[red], ip_adapter=spec, init_image=red, strength=0.6)
    broken = ip_adapter_dir.parent / "broken-ip"
    broken.mkdir(exist_ok=True)
    (broken / IP_ADAPTER_WEIGHTS).write_bytes(b"not safetensors")
    with pytest.raises(EngineError, match="cannot be read") as caught:
        draw(engine, references=[red], ip_adapter=IPAdapterSpec(broken, IP_ADAPTER_WEIGHTS))
    assert str(broken) not in str(caught.value)


# --- the studio's side: the add-on registered, the form, the worker, the zip, the API


def png_file(colour: str, name: str) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buffer, format="PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


@pytest.fixture
def sdxl_studio(db, tiny_flux_dir: Path) -> ImageModel:
    """Tiny SDXL and its tiny IP-Adapter under the tests' STUDIO_MODELS_DIR, registered."""
    models = tiny_flux_dir.parent
    if not (models / "tiny-sdxl").exists():
        build_tiny_sdxl(models / "tiny-sdxl")
        build_tiny_ip_adapter(models / "tiny-ip-adapter", models / "tiny-sdxl" / "unet")
    model = ImageModel.objects.create(
        key="tiny-sdxl",
        name="Tiny SDXL",
        family="sdxl",
        local_path="tiny-sdxl",
        license_name="test",
        commercial_use=True,
        supports_img2img=True,
    )
    AddOn.objects.create(
        key="tiny-ip",
        name="Tiny IP-Adapter",
        family="sdxl",
        local_path="tiny-ip-adapter",
        license_name="test",
        commercial_use=False,
        license_notice="Tiny IP-Adapter: tests only.",
    )
    return model


def submit(client, model: str = "tiny-sdxl", **extra):
    data = {"preset": "test-icon", "prompt": "a star", "model": model, "quality": "standard", "variations": "1"}
    return client.post(reverse("studio"), data | extra, HTTP_HX_REQUEST="true")


@pytest.mark.django_db
def test_a_job_with_references_runs_through_the_add_on_and_carries_them(alice_client, preset, sdxl_studio) -> None:
    references = [png_file("red", "red.png"), png_file("blue", "blue.png")]
    response = submit(alice_client, references=references, reference_strength="0.4")
    assert response.status_code == 200, response.content.decode()[:3000]
    job = GenerationJob.objects.get()
    assert len(job.params["references"]) == 2 and job.params["reference_strength"] == 0.4
    assert job.params["ip_adapter"]["key"] == "tiny-ip" and job.params["model"]["commercial_use"] is False
    assert "Style references at 0.4 through Tiny IP-Adapter" in response.content.decode()
    worker_run.run_job(str(job.pk), worker="gpu@test")
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETE, job.error
    archive = zipfile.ZipFile(io.BytesIO(b"".join(alice_client.get(reverse("job-zip", args=[job.pk])))))
    assert len([n for n in archive.namelist() if n.startswith("inputs/reference-")]) == 2
    assert "LICENSE-NOTICES.txt" in archive.namelist()  # the add-on's license rides with the images
    page = alice_client.get(reverse("job-reuse", args=[job.pk]), follow=True).content.decode()
    assert all(str(row.pk) in page for row in InputImage.objects.all())


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"references": [png_file("red", f"{n}.png") for n in range(5)]}, "At most 4 style references; there are 5"),
        ({"references": [png_file("red", "r.png")], "model": "tiny-flux"}, "Tiny FLUX"),
        ({"references": [SimpleUploadedFile("x.png", b"nope")]}, "not a PNG, JPEG or WebP image"),
    ],
    ids=["five", "no-add-on", "not-an-image"],
)
def test_references_that_cannot_be_used_are_a_form_error(alice_client, preset, sdxl_studio, extra, says) -> None:
    response = submit(alice_client, **extra)
    body = response.content.decode()
    assert response.status_code == 422 and says in body, body[:3000]
    assert not GenerationJob.objects.exists()
    if "model" in extra:
        assert "cannot take style references" in body and "Tiny SDXL" in body


@pytest.mark.django_db
def test_references_with_a_sketch_are_refused(alice_client, preset, sdxl_studio) -> None:
    response = submit(alice_client, references=[png_file("red", "r.png")], sketch=png_file("white", "s.png"))
    assert response.status_code == 422 and "take the sketch off first" in response.content.decode()


@pytest.mark.django_db
def test_an_add_on_is_checked_when_an_admin_saves_it(sdxl_studio, tiny_flux_dir) -> None:
    addon = AddOn.objects.get()
    addon.full_clean()  # the tiny one fits the tiny SDXL
    addon.weight_name = "missing.safetensors"
    with pytest.raises(ValidationError, match="No missing.safetensors"):
        addon.full_clean()
    cut = tiny_flux_dir.parent / "tiny-ip-adapter" / "cut.safetensors"
    cut.write_bytes((tiny_flux_dir.parent / "tiny-ip-adapter" / IP_ADAPTER_WEIGHTS).read_bytes()[:-100])
    addon.weight_name = "cut.safetensors"
    with pytest.raises(ValidationError, match="cut short"):
        addon.full_clean()
    addon.weight_name, addon.family = IP_ADAPTER_WEIGHTS, "flux"  # an SDXL one on FLUX.1: widths compared
    with pytest.raises(ValidationError, match="transformer reads text of width 32"):
        addon.full_clean()
    addon.family = "zimage"
    with pytest.raises(ValidationError, match="takes no IP-Adapter"):
        addon.full_clean()


@pytest.mark.django_db
def test_the_api_takes_references_by_input_or_image(alice, preset, sdxl_studio) -> None:
    from django.test import Client

    from generation.tokens import token_create

    api = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='t')[1]}")
    sent = api.post("/api/v1/inputs", {"file": png_file("red", "red.png")}).json()
    body = {"asset_type": "test-icon", "description": "a star", "model": "tiny-sdxl", "variations": 1}
    created = api.post(
        "/api/v1/jobs",
        body | {"references": [{"input": sent["id"]}], "reference_strength": 0.5},
        content_type="application/json",
    )
    assert created.status_code == 202, created.content
    assert created.json()["references"][0].endswith(f"/api/v1/inputs/{sent['id']}/file")
    five = api.post("/api/v1/jobs", body | {"references": [{"input": sent["id"]}] * 5}, content_type="application/json")
    assert five.status_code == 422
    neither = api.post("/api/v1/jobs", body | {"references": [{}]}, content_type="application/json")
    assert neither.status_code == 422 and neither.json()["field"] == "references"


@pytest.mark.django_db
def test_use_as_reference_fills_the_form_with_the_image_as_a_reference(alice_client, alice, preset, sdxl_studio):
    from tests.test_workflow import finished_job

    image = finished_job(alice, preset=preset).images.first()
    response = alice_client.get(reverse("image-as-reference", args=[image.pk]))
    stored = InputImage.objects.get()
    assert response.status_code == 302 and f"reference_inputs={stored.pk}" in response["Location"]
    page = alice_client.get(response["Location"]).content.decode()
    assert "Style reference 1" in page and f'value="{stored.pk}"' in page


@pytest.mark.django_db
def test_the_api_lists_what_each_model_can_be_steered_with(alice, sdxl_studio) -> None:
    from django.test import Client

    from generation.tokens import token_create

    api = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='t')[1]}")
    can = {m["key"]: m["can"] for m in api.get("/api/v1/models").json()}
    assert can["tiny-sdxl"] == ["sketch", "inpaint", "references"]
    assert can["demo-brand"] == ["sketch", "inpaint"]


@pytest.mark.django_db
def test_more_like_this_of_a_steered_image_starts_from_the_image_alone(alice_client, preset, sdxl_studio) -> None:
    from generation.worker import run as worker_run

    submit(alice_client, references=[png_file("red", "red.png")])
    job = GenerationJob.objects.get()
    worker_run.run_job(str(job.pk), worker="gpu@test")
    varied = jobs_submit.job_vary(image=job.images.first(), strength="subtle")
    assert not {"references", "ip_adapter", "control", "sketch"} & set(varied.params)
    worker_run.run_job(str(varied.pk), worker="gpu@test")
    varied.refresh_from_db()
    assert varied.status == JobStatus.COMPLETE, varied.error


# --- the asset type's own brand references


def brand_reference(preset, colour: str = "red"):
    from django.core.files.base import ContentFile

    from generation.models import BrandReference

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buffer, format="PNG")
    if preset.kit is None:
        preset.kit = BrandKitFactory()
        preset.save()
    reference = BrandReference(kit=preset.kit, name=f"{colour} swatch")
    reference.file.save("swatch.png", ContentFile(buffer.getvalue()), save=False)
    reference.full_clean()
    reference.save()
    return reference


@pytest.mark.django_db
def test_an_asset_types_brand_references_steer_its_jobs_unless_turned_off(alice_client, preset, sdxl_studio) -> None:
    reference = brand_reference(preset)
    response = submit(alice_client)
    job = GenerationJob.objects.get()
    assert job.params["references"] == [{"brand": str(reference.pk), "name": "red swatch", "file": reference.file.name}]
    assert "The asset type's brand reference at 0.6 through Tiny IP-Adapter" in response.content.decode()
    worker_run.run_job(str(job.pk), worker="gpu@test")
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETE, job.error
    archive = zipfile.ZipFile(io.BytesIO(b"".join(alice_client.get(reverse("job-zip", args=[job.pk])))))
    assert f"inputs/brand-reference-{reference.pk}.png" in archive.namelist()
    assert alice_client.get(reverse("brand-reference-file", args=[reference.pk])).status_code == 200
    submit(alice_client, brand_references_off="on")
    assert "references" not in GenerationJob.objects.latest("created_at").params
    submit(alice_client, model="tiny-flux")  # no IP-Adapter: the job is made without them
    assert "references" not in GenerationJob.objects.latest("created_at").params
    own = submit(alice_client, references=[png_file("blue", "blue.png")])  # the designer's own win
    assert own.status_code == 200 and "input" in GenerationJob.objects.latest("created_at").params["references"][0]


@pytest.mark.django_db
def test_a_brand_reference_is_checked_when_an_admin_adds_it(preset) -> None:
    from django.core.files.base import ContentFile

    from generation.models import BrandReference

    for colour in ("red", "green", "blue", "white"):
        brand_reference(preset, colour)
    with pytest.raises(ValidationError, match="at most 4 brand references"):
        brand_reference(preset, "black")
    broken = BrandReference(kit=preset.kit)
    broken.file.save("x.png", ContentFile(b"not an image"), save=False)
    with pytest.raises(ValidationError, match="not a PNG, JPEG or WebP image"):
        broken.full_clean()


@pytest.mark.django_db
def test_without_an_ip_adapter_or_an_edit_model_nothing_offers_them(alice_client, alice, preset) -> None:
    """The embedded studio: no field, button or link for what no model here can do."""
    from tests.test_workflow import finished_job

    assert "Style references" not in alice_client.get(reverse("studio")).content.decode()
    page = alice_client.get(reverse("image", args=[finished_job(alice, preset=preset).images.first().pk]))
    assert "Use as reference" not in page.content.decode() and ">Edit</a>" not in page.content.decode()


# --- FLUX.2 klein: style references through its pipeline's own image input, no add-on


@pytest.mark.parametrize(("family", "folder"), [("flux2", "tiny-klein"), ("qwenimageedit", "tiny-qwenimageedit")])
def test_a_model_that_takes_pictures_gets_references_after_the_image_it_edits(
    family, folder, tiny_flux_dir, monkeypatch
) -> None:
    """FLUX.2 klein and Qwen-Image-Edit-Plus: references through the pipeline's own image input."""
    from generation.devtools.tiny import TINY_BUILDERS

    path = tiny_flux_dir.parent / folder
    if not path.exists():
        TINY_BUILDERS[family](path)
    engine = engine_class(family)(path, device="cpu")
    red, blue = Image.new("RGB", (64, 64), "red"), Image.new("RGB", (64, 64), "blue")
    seen = record_argument(monkeypatch, type(engine.pipe), "image")
    plain = draw(engine)
    with_red = draw(engine, references=[red])
    both = draw(engine, references=[red, blue])
    draw(engine, references=[blue], edit_images=[red])
    assert np.abs(with_red - plain).max() > 0 and np.abs(both - with_red).max() > 0  # each reference counts
    pictures = [images for images in seen if images]  # a plain job gets none (Qwen: not even this pipeline)
    assert [len(images) for images in pictures] == [1, 2, 2]
    assert [image.getpixel((0, 0)) for image in pictures[2]] == [(255, 0, 0), (0, 0, 255)]  # the edited image first
    assert np.abs(draw(engine) - plain).max() == 0  # nothing left for the next job


@pytest.fixture
def klein_studio(db, tiny_flux_dir: Path) -> ImageModel:
    from generation.devtools.tiny import build_tiny_flux2_klein

    if not (tiny_flux_dir.parent / "tiny-klein").exists():
        build_tiny_flux2_klein(tiny_flux_dir.parent / "tiny-klein")
    return ImageModel.objects.create(
        key="tiny-klein", name="Tiny klein", family="flux2", local_path="tiny-klein", license_name="t", commercial_use=1
    )


@pytest.mark.django_db
def test_a_klein_job_follows_references_without_an_add_on(alice_client, alice, preset, klein_studio) -> None:
    from generation.tokens import token_create

    page = alice_client.get(reverse("studio")).content.decode()
    assert "Style references" in page and "follows its references as given" in page
    response = submit(alice_client, model="tiny-klein", references=[png_file("red", "red.png")])
    assert response.status_code == 200, response.content.decode()[:3000]
    job = GenerationJob.objects.get()
    assert len(job.params["references"]) == 1
    assert "ip_adapter" not in job.params and "reference_strength" not in job.params  # none to set
    assert "through the model's own image input" in response.content.decode()
    worker_run.run_job(str(job.pk), worker="gpu@test")
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETE, job.error
    _, key = token_create(user=alice, name="cli")
    models = alice_client.get("/api/v1/models", HTTP_AUTHORIZATION=f"Bearer {key}").json()
    assert "references" in next(m for m in models if m["key"] == "tiny-klein")["can"]


@pytest.mark.django_db
def test_a_flux_ip_adapter_is_checked_against_each_flux_model_and_offered_to_those_it_fits(
    alice_client, preset, tiny_flux_dir, settings
) -> None:
    """The demo model and tiny FLUX are one family of two sizes: XLabs' layout is read, its
    widths and block count compared, and only the model it fits takes references through it."""
    from generation.control.addons import reference_addon

    models = Path(settings.STUDIO_MODELS_DIR)
    build_tiny_flux_ip_adapter(models / "tiny-flux-ip", tiny_flux_dir / "transformer")
    addon = AddOn(
        key="xlabs-tiny",
        name="Tiny XLabs IP-Adapter",
        family="flux",
        local_path="tiny-flux-ip",
        license_name="FLUX.1 [dev] Non-Commercial License",
        commercial_use=False,
    )
    other = ImageModel.objects.create(
        key="wide-flux", name="Wide FLUX", family="flux", local_path="wide-flux", license_name="t", commercial_use=1
    )
    (models / "wide-flux" / "transformer").mkdir(parents=True, exist_ok=True)
    config = json.loads((tiny_flux_dir / "transformer" / "config.json").read_text())
    (models / "wide-flux" / "transformer" / "config.json").write_text(json.dumps(config | {"num_layers": 3}))
    addon.full_clean()  # it fits tiny FLUX, so it is saved, and offered to it alone
    addon.save()
    tiny = ImageModel.objects.get(key="tiny-flux")
    assert reference_addon(tiny) == addon and reference_addon(other) is None
    ImageModel.objects.filter(key="tiny-flux").update(enabled=False)  # the wide one alone: refused, saying why
    with pytest.raises(ValidationError, match="layers for 1 double blocks; Wide FLUX has 3"):
        addon.full_clean()
    ImageModel.objects.filter(key="tiny-flux").update(enabled=True)
    response = submit(alice_client, model="tiny-flux", references=[png_file("red", "red.png")])
    assert response.status_code == 200, response.content.decode()[:3000]
    job = GenerationJob.objects.get()
    assert job.params["ip_adapter"]["key"] == "xlabs-tiny" and job.params["model"]["commercial_use"] is False
    worker_run.run_job(str(job.pk), worker="gpu@test")
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETE, job.error
