"""Brand training: safe uploads, the validation report, LoRA runs on a tiny FLUX, versions."""

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from generation.devtools.demo_kit import PALETTE, SHAPES, caption, draw_icon
from generation.engine import engine_class
from generation.engine.types import GenerationRequest, LoraSpec
from generation.models import AssetPreset, BrandLora, ImageModel, JobStatus, PresetLora, TrainingRun, TrainingSet
from generation.training import data as training_data
from generation.training import defaults as training_defaults
from generation.training import services as training_services
from generation.training.lora import bucket_size, run_training

pytestmark = pytest.mark.django_db


def png(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def icon(n: int, size: int = 64) -> Image.Image:
    colours = list(PALETTE)
    return draw_icon(colours[n % 4], SHAPES[n % 6], size=size)


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data)


class TestUploads:
    def test_images_are_checked_by_content_not_by_name(self, training_set) -> None:
        result = training_data.add_uploads(
            training_set,
            [
                upload("a.png", png(icon(0))),
                upload("b.jpg", png(icon(1), "JPEG")),
                upload("c.webp", png(icon(2), "WEBP")),
                upload("fake.png", b"<html>not an image</html>"),
                upload("d.gif", png(icon(3), "GIF")),
            ],
        )
        assert len(result.added) == 3
        assert [name for name, _ in result.rejected] == ["fake.png", "d.gif"]
        assert all("not a PNG, JPEG or WebP" in reason for _, reason in result.rejected)
        stored = [row.file.name for row in training_set.images.all()]
        assert all(name.startswith(f"training/sets/{training_set.pk}/") for name in stored)

    def test_a_decompression_bomb_is_refused_before_decoding(self, training_set) -> None:
        bomb = png(Image.new("1", (8000, 8000)))  # 64 MP of nothing compresses to a few kB
        result = training_data.add_uploads(training_set, [upload("bomb.png", bomb)])
        assert not result.added and result.rejected[0][1] == "8000×8000 is 64,000,000 pixels; the limit is 40,000,000"

    def test_a_zip_brings_its_images_and_same_name_captions_and_nothing_else(self, training_set) -> None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("icons/circle.png", png(icon(0)))
            archive.writestr("icons/circle.txt", "a flat blue circle icon on a light background")
            archive.writestr("icons/star.png", png(icon(3)))
            archive.writestr("../../escape.png", png(icon(4)))
            archive.writestr("__MACOSX/._circle.png", b"junk")
            archive.writestr("notes.md", b"hello")
        result = training_data.add_uploads(training_set, [upload("set.zip", buffer.getvalue())])
        names = sorted(row.original_name for row in result.added)
        assert names == ["circle.png", "star.png"]
        assert training_set.images.get(original_name="circle.png").caption.startswith("a flat blue circle")
        assert [name for name, _ in result.rejected] == ["../../escape.png", "notes.md"]
        assert all(row.file.name.startswith(f"training/sets/{training_set.pk}/") for row in result.added)

    def test_an_oversized_caption_refuses_its_image_only_and_says_the_limit_in_bytes(self, training_set) -> None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("big.png", png(icon(0)))
            archive.writestr("big.txt", "x" * 20_000)
            archive.writestr("fine.png", png(icon(1)))
            archive.writestr("fine.txt", "a flat green square icon")
        result = training_data.add_uploads(training_set, [upload("set.zip", buffer.getvalue())])
        assert [row.original_name for row in result.added] == ["fine.png"]
        assert result.rejected == [("big.png", "its caption big.txt is over 10,000 bytes")]

    def test_captions_without_an_image_are_reported_not_dropped(self, training_set) -> None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("lonely.txt", "a caption whose image was forgotten")
            archive.writestr("other.txt", "and another")
        result = training_data.add_uploads(training_set, [upload("captions.zip", buffer.getvalue())])
        assert not result.added
        assert [name for name, _ in result.rejected] == ["lonely.txt", "other.txt"]
        assert all("no image of the same name" in reason for _, reason in result.rejected)

    def test_a_caption_is_text_whatever_it_says(self, training_set) -> None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("odd.png", png(icon(0)))
            archive.writestr("odd.txt", "!unsafe path")  # once a marker the upload code read as a refusal
        result = training_data.add_uploads(training_set, [upload("set.zip", buffer.getvalue())])
        assert [row.caption for row in result.added] == ["!unsafe path"] and not result.rejected

    def test_an_image_too_small_to_learn_from_is_refused_with_its_size(self, training_set) -> None:
        result = training_data.add_uploads(training_set, [upload("tiny.png", png(icon(0, 20)))])
        assert not result.added
        assert result.rejected == [("tiny.png", "20×20 px is too small to learn from; at least 32 px a side")]

    def test_the_resolution_warning_uses_the_size_the_familys_models_train_at(self, training_set) -> None:
        from generation.training.defaults import training_side

        side, model = training_side(training_set)
        add_icons(training_set, 3, size=max(32, side // 2))
        finding = training_data.report(training_set).checks[1].findings[0]
        assert f"under {side} px on the short side, the size {model} trains at" in finding.message
        ImageModel.objects.filter(family="flux").exclude(options__has_key="native_size").update(enabled=False)
        small_side, small_model = training_side(training_set)
        assert small_side < side and small_model  # only models with a native size left: they train there

    def test_a_zip_bomb_is_refused(self, training_set) -> None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("huge.png", b"\0" * (60 * 2**20))
        result = training_data.add_uploads(training_set, [upload("bomb.zip", buffer.getvalue())])
        assert not result.added and "zip bomb" in result.rejected[0][1]


def add_icons(training_set: TrainingSet, count: int, *, size: int = 64, captions: bool = True) -> None:
    files = [upload(f"{n}.png", png(icon(n, size))) for n in range(count)]
    training_data.add_uploads(training_set, files)
    if captions:
        for n, row in enumerate(training_set.images.order_by("pk")):
            row.caption = caption(list(PALETTE)[n % 4], SHAPES[n % 6]) + " on a light grey background"
            row.save()


class TestReport:
    def test_the_report_scores_the_brief_checklist(self, training_set) -> None:
        add_icons(training_set, 12)
        report = training_data.report(training_set)
        by_name = {check.name: check for check in report.checks}
        assert "needs at least 20" in by_name["Number of images"].findings[0].message
        assert "under 1024 px" in by_name["Resolution"].findings[0].message
        assert 0 < report.score < 100 and report.errors

    def test_duplicates_and_crops_are_found_by_perceptual_hash(self, training_set) -> None:
        base = icon(0, 256)
        crop = base.crop((26, 26, 230, 230)).resize((256, 256))
        training_data.add_uploads(
            training_set,
            [upload("a.png", png(base)), upload("a-copy.jpg", png(base, "JPEG")), upload("a-crop.png", png(crop))],
        )
        findings = training_data.report(training_set).checks[2].findings
        messages = " ".join(f.message for f in findings)
        assert "a.png and a-copy.jpg: near-duplicates" in messages
        assert "a-crop.png" in messages

    def test_recolours_of_one_glyph_are_not_duplicates_but_re_saves_and_crops_still_are(self, training_set) -> None:
        blue, orange = draw_icon("blue", "star", size=256), draw_icon("orange", "star", size=256)
        crop = orange.crop((26, 26, 230, 230)).resize((256, 256))
        uploads = [("blue.png", png(blue)), ("orange.png", png(orange)), ("orange.jpg", png(orange, "JPEG"))]
        uploads += [("orange-crop.png", png(crop))]
        training_data.add_uploads(training_set, [upload(name, data) for name, data in uploads])
        messages = " ".join(f.message for f in training_data.report(training_set).checks[2].findings)
        assert "orange.png and orange.jpg: near-duplicates" in messages and "orange-crop.png" in messages
        assert "blue.png" not in messages

    def test_images_hashed_before_colours_were_kept_are_judged_on_the_greyscale_hash(self, training_set) -> None:
        training_data.add_uploads(
            training_set, [upload("a.png", png(icon(0, 256))), upload("b.png", png(icon(0, 256)))]
        )
        for row in training_set.images.all():
            row.hashes = {"full": row.hashes["full"], "crops": row.hashes["crops"]}
            row.save()
        messages = " ".join(f.message for f in training_data.report(training_set).checks[2].findings)
        assert "a.png and b.png: near-duplicates" in messages

    def test_missing_short_and_mixed_captions_are_reported(self, training_set) -> None:
        add_icons(training_set, 3, captions=False)
        rows = list(training_set.images.order_by("pk"))
        rows[1].caption = "icon"
        rows[2].caption = "a minimal purple glyph of a star on a plain white background, vector style"
        rows[0].caption = "a flat blue icon of a circle on a plain white background, vector style"
        rows[0].save(), rows[1].save(), rows[2].save()
        rows[0].caption = ""
        rows[0].save()
        checks = {c.name: c for c in training_data.report(training_set).checks}
        text = " ".join(f.message for f in checks["Captions"].findings)
        assert "1 image(s) have no caption" in text and "1 caption(s) under 6 words" in text
        terms = " ".join(f.message for f in checks["Consistent terms"].findings)
        assert "“icon”" in terms and "“glyph”" in terms

    def test_captions_that_contradict_the_asset_types_template_are_reported(self, training_set) -> None:
        """The Icon template (which every prompt carries) says "solid background" and "subtle
        gradients"; an outline set captioned "flat ... outline style" is told both at once."""
        add_icons(training_set, 3, captions=False)
        for n, row in enumerate(training_set.images.order_by("pk")):
            row.caption = f"a flat blue shape {n} icon, outline style"
            row.save()
        check = {c.name: c for c in training_data.report(training_set).checks}["Consistent terms"]
        text = " ".join(f.message for f in check.findings)
        assert "3 caption(s) say “outline” where the Icon template" in text and "says “solid”" in text
        assert "say “flat”" in text and "“gradients”" in text
        assert check.score < 0.5

    def test_excluded_images_leave_the_report(self, training_set) -> None:
        add_icons(training_set, 3)
        training_set.images.update(excluded=True)
        assert training_data.report(training_set).count == 0


def test_buckets_keep_the_aspect_ratio_on_the_16_px_grid() -> None:
    assert bucket_size(1024, 1024, 1024) == (1024, 1024)
    assert bucket_size(1600, 900, 1024) == (1360, 768)
    assert bucket_size(500, 1000, 64) == (32, 80)


class TestRuns:
    @pytest.fixture
    def ready_set(self, training_set, lora_root) -> TrainingSet:
        add_icons(training_set, 24)
        return training_set

    def start(self, training_set, alice, **overrides) -> TrainingRun:
        params = {"steps": 4, "resolution": 64, "batch_size": 2, "sample_every": 2, "checkpoint_every": 2}
        params["learning_rate"] = 2e-2  # a visible change in 4 steps
        params["sample_steps"] = 2
        return training_services.run_create(
            training_set=training_set,
            model=ImageModel.objects.get(key="tiny-flux"),
            user=alice,
            overrides=params | overrides,
        )

    def test_prior_preservation_trains_on_the_base_models_drawings_beside_the_set(
        self, ready_set, alice, lora_root, monkeypatch
    ) -> None:
        from generation.training.lora import Trainer

        drawn = []
        real = Trainer._prior_latents

        def spy(trainer):
            latents = real(trainer)
            drawn.append((latents.shape, list(trainer._prior_prompts())))
            return latents

        monkeypatch.setattr(Trainer, "_prior_latents", spy)
        run = self.start(ready_set, alice, prior_images=3, prior_weight=0.5)
        run_training(str(run.pk), worker="gpu@test")
        run.refresh_from_db()
        assert run.status == JobStatus.COMPLETE, run.error
        ((shape, prompts),) = drawn
        assert shape[0] == 3 and len(prompts) == 3
        assert prompts[0].startswith("a flat blue shield icon, Fluent 2")  # a test prompt through the template
        assert "bsicon" not in prompts[0]  # the base's drawing, without the set's trigger word

    def test_a_run_trains_a_versioned_lora_the_engine_loads(self, ready_set, alice, lora_root, tiny_flux_dir) -> None:
        run = self.start(ready_set, alice)
        run_training(str(run.pk), worker="gpu@test")
        run.refresh_from_db()
        assert run.status == JobStatus.COMPLETE, run.error
        assert run.step == 4 and [step for step, _ in run.losses] == [1, 2, 3, 4]
        # The base model's samples first (step 0), then the run's, each judged for drift from them.
        assert [sample["step"] for sample in run.samples] == [0, 2, 4] and len(run.content_hash) == 64
        assert len(run.samples[0]["images"]) == 4  # the asset type's test prompts
        assert "colour_shift" in run.samples[2]["drift"] and "warning" in run.samples[2]
        lora = run.lora
        assert lora.file == "flux/icon-v1.safetensors" and lora.version == 1
        assert (lora_root / "flux/icon-v1.json").is_file()
        assert lora.metadata["base_model"]["key"] == "tiny-flux" and lora.metadata["final_loss"] > 0
        lora.full_clean()  # the admin's own checks accept the file
        engine = engine_class("flux")(tiny_flux_dir, device="cpu")
        request = GenerationRequest("bsicon, a flat blue circle icon", "", 64, 64, 2, 3.5, [7])
        images: list = []
        engine.generate(request, max_batch=1, on_step=lambda s, t: None, on_images=lambda f, i: images.extend(i))
        with_lora = GenerationRequest(**{**request.__dict__, "loras": [LoraSpec(lora.path, 1.0)]})
        engine.generate(with_lora, max_batch=1, on_step=lambda s, t: None, on_images=lambda f, i: images.extend(i))
        assert np.abs(np.asarray(images[0], dtype=int) - np.asarray(images[1], dtype=int)).mean() > 0.5

    def test_a_second_run_makes_version_two_and_publishing_switches_between_them(
        self, ready_set, alice, lora_root
    ) -> None:
        first, second = self.start(ready_set, alice), self.start(ready_set, alice, steps=2)
        run_training(str(first.pk), worker="gpu@test")
        run_training(str(second.pk), worker="gpu@test")
        v1, v2 = BrandLora.objects.order_by("version")
        assert (v1.version, v2.version) == (1, 2)
        training_services.lora_publish(lora=v2)
        assert [link.lora for link in PresetLora.objects.filter(preset=ready_set.preset)] == [v2]
        training_services.lora_publish(lora=v1)  # roll back
        assert [link.lora for link in PresetLora.objects.filter(preset=ready_set.preset)] == [v1]

    def test_a_cancelled_run_stops_and_resumes_from_its_checkpoint(self, ready_set, alice, monkeypatch) -> None:
        from generation.training import lora as lora_module

        run = self.start(ready_set, alice, steps=6)
        real = lora_module.Trainer._checkpoint

        def cancel_then_checkpoint(self, step, optimizer):
            TrainingRun.objects.filter(pk=self.run.pk).update(status=JobStatus.CANCELLED)  # Cancel clicked
            real(self, step, optimizer)  # the checkpoint is still written, then the run stops

        monkeypatch.setattr(lora_module.Trainer, "_checkpoint", cancel_then_checkpoint)
        monkeypatch.setattr(lora_module.Trainer, "last_save", 0.0, raising=False)
        run_training(str(run.pk), worker="gpu@test")
        run.refresh_from_db()
        assert run.status == JobStatus.CANCELLED and run.checkpoint and run.step == 2
        monkeypatch.setattr(lora_module.Trainer, "_checkpoint", real)
        training_services.run_resume(run=run)
        run_training(str(run.pk), worker="gpu@test")
        run.refresh_from_db()
        assert run.status == JobStatus.COMPLETE and run.losses[0][0] == 1 and run.losses[-1][0] == 6

    def test_a_set_with_report_errors_cannot_start_a_run(self, training_set, alice) -> None:
        add_icons(training_set, 3)
        with pytest.raises(training_services.TrainingError, match="needs at least 20"):
            self.start(training_set, alice)

    def test_a_family_not_trained_yet_fails_with_a_reason(self, ready_set, alice) -> None:
        ready_set.family = "chroma"
        ready_set.save()
        model = ImageModel.objects.get(key="chroma1-hd")
        with pytest.raises(training_services.TrainingError, match="cannot be trained here yet"):
            training_services.run_create(training_set=ready_set, model=model, user=alice)
        run = TrainingRun.objects.create(training_set=ready_set, model_key=model.key, params={"steps": 1})
        run_training(str(run.pk), worker="gpu@test")
        run.refresh_from_db()
        assert run.status == JobStatus.FAILED and "not supported yet" in run.error


@pytest.fixture
def staff_client(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory(username="stella", is_staff=True))
    return client


class TestPages:
    def test_staff_create_a_set_upload_caption_and_exclude(self, staff_client) -> None:
        from django.urls import reverse

        response = staff_client.post(
            reverse("training"), {"name": "Icons", "preset": AssetPreset.objects.get(slug="icon").pk, "family": "flux"}
        )
        training_set = TrainingSet.objects.get()
        assert response.status_code == 302 and response.url == training_set.get_absolute_url()
        files = [SimpleUploadedFile(f"{n}.png", png(icon(n))) for n in range(2)] + [SimpleUploadedFile("x.png", b"no")]
        page = staff_client.post(training_set.get_absolute_url(), {"files": files}, follow=True).content.decode()
        assert "Added 2 image(s)." in page and "x.png: not a PNG, JPEG or WebP image" in page
        image = training_set.images.first()
        url = reverse("training-image", args=[image.pk])
        tile = staff_client.post(url, {"caption": "a flat blue circle icon"}, HTTP_HX_REQUEST="true").content.decode()
        assert "a flat blue circle icon" in tile
        staff_client.post(url, {"excluded": "1"}, HTTP_HX_REQUEST="true")
        image.refresh_from_db()
        assert image.excluded and image.caption == "a flat blue circle icon"
        page = staff_client.get(training_set.get_absolute_url()).content.decode()
        assert "1 image included" in page and "needs at least 20" in page
        assert staff_client.get(reverse("training-file", args=[image.file.name])).status_code == 200

    def test_the_training_pages_offer_no_download_bar_for_studio_images_they_do_not_show(
        self, staff_client, training_set
    ) -> None:
        from django.urls import reverse

        for url in (reverse("training"), training_set.get_absolute_url()):
            assert "Download selected" not in staff_client.get(url).content.decode()
        assert "Download selected" in staff_client.get("/").content.decode()

    def test_a_run_that_cannot_start_is_a_form_error(self, staff_client, training_set) -> None:
        add_icons(training_set, 3)
        response = staff_client.post(training_set.get_absolute_url(), {"model": "1"})
        model = ImageModel.objects.get(key="tiny-flux")
        response = staff_client.post(training_set.get_absolute_url(), {"model": model.pk})
        assert response.status_code == 422 and "Fix the report" in response.content.decode()
        assert not TrainingRun.objects.exists()

    def test_designers_cannot_reach_training_and_files_stay_inside_training(self, alice_client, staff_client) -> None:
        from django.urls import reverse

        assert alice_client.get(reverse("training")).status_code == 302
        assert staff_client.get("/training/files/generations/1/x.png").status_code == 404
        assert staff_client.get("/training/files/training/../secret").status_code == 404

    def test_a_finished_run_shows_its_plot_samples_and_publishes(
        self, staff_client, training_set, lora_root, alice
    ) -> None:
        from django.urls import reverse

        add_icons(training_set, 24)
        run = TestRuns().start(training_set, alice)
        run_training(str(run.pk), worker="gpu@test")
        page = staff_client.get(reverse("training-run", args=[run.pk])).content.decode()
        assert "<polyline" in page and "step 2" in page and "Publish to Icon" in page
        assert "Started " in page and " · ended " in page and " · took " in page
        assert staff_client.get(reverse("training-run", args=[run.pk]), HTTP_HX_REQUEST="true").status_code == 286
        lora = BrandLora.objects.get()
        assert lora.path.stat().st_mode & 0o777 == lora.path.with_suffix(".json").stat().st_mode & 0o777 == 0o644
        staff_client.post(reverse("lora-action", args=[lora.pk, "publish"]))
        assert PresetLora.objects.filter(preset=training_set.preset, lora=lora).exists()
        response = staff_client.post(reverse("lora-action", args=[lora.pk, "compare"]))
        from generation.models import JobGroup

        group = JobGroup.objects.get()
        assert response.url == group.get_absolute_url() and group.kind == "loras"
        labels = {job.params["lora_label"] for job in group.jobs.all()}
        assert labels == {"current: no LoRA", "candidate: Icon v1"}  # published: against none, not itself
        assert group.jobs.count() == 2 * len(training_set.preset.test_prompts)
        assert "candidate: Icon v1" in staff_client.get(group.get_absolute_url()).content.decode()


def test_a_designer_picks_a_trained_version_or_none_in_the_studio(alice_client, training_set, lora_root) -> None:
    from django.urls import reverse

    from generation.models import GenerationJob

    preset = training_set.preset
    for name in ("icon-v1", "icon-v2"):  # jobs leave out a LoRA whose file is missing
        (lora_root / "flux").mkdir(parents=True, exist_ok=True)
        (lora_root / "flux" / f"{name}.safetensors").write_bytes(b"")
    v1 = BrandLora.objects.create(
        name="Icon v1", family="flux", file="flux/icon-v1.safetensors", preset=preset, version=1
    )
    v2 = BrandLora.objects.create(
        name="Icon v2", family="flux", file="flux/icon-v2.safetensors", preset=preset, version=2
    )
    v2.trigger_words = "bsicon"
    v2.save()
    training_services.lora_publish(lora=v1)
    page = alice_client.get(reverse("studio") + "?preset=icon").content.decode()
    assert "Icon v2 (FLUX.1)" in page and "published version" in page

    def submit(choice: str) -> GenerationJob:
        data = {"preset": "icon", "prompt": "a key", "quality": "draft", "variations": "1", "brand_lora": choice}
        data["model"] = "tiny-flux"
        assert alice_client.post(reverse("studio"), data).status_code == 302
        return GenerationJob.objects.latest("created_at")

    job = submit("")
    assert [lora["name"] for lora in job.params["loras"]] == ["Icon v1"]
    assert "LoRA Icon v1 0.85" in alice_client.get(reverse("job", args=[job.pk])).content.decode()
    job = submit(str(v2.pk))
    assert [lora["name"] for lora in job.params["loras"]] == ["Icon v2"] and job.params["prompt"].startswith("bsicon, ")
    job = submit("none")
    assert job.params["loras"] == [] and "no LoRA" in alice_client.get(reverse("job", args=[job.pk])).content.decode()


def test_the_training_forms_offer_the_families_that_train_with_the_models_their_loras_fit(
    staff_client, training_set
) -> None:
    from django.urls import reverse

    home = staff_client.get(reverse("training")).content.decode()
    assert "Asset type" in home and ">Preset<" not in home
    assert "FLUX.1 (LoRAs for Demo brand (offline), Tiny FLUX (random weights))" in home
    assert "FLUX.2 [klein] (no model of this family enabled yet)" in home
    assert "Chroma" not in home and "FLUX.1 Kontext" not in home  # no training for these families
    page = staff_client.get(training_set.get_absolute_url()).content.decode()
    model = ImageModel.objects.filter(family="flux", enabled=True).first()
    defaults = training_defaults.training_defaults(training_set, model)
    assert f'placeholder="{defaults["steps"]:g}"' in page and f'placeholder="{defaults["rank"]:g}"' in page
    assert f"Advanced (empty = the defaults for {model.name}, shown greyed)" in page


def test_the_web_side_and_the_worker_agree_on_which_families_train() -> None:
    from generation.training.objectives import OBJECTIVES

    assert set(training_defaults.FAMILY_DEFAULTS) == set(OBJECTIVES)


@pytest.mark.parametrize("family", ["sd3", "sdxl", "flux2", "zimage", "qwenimage", "hidream"])
def test_each_trainable_familys_lora_trains_and_loads(
    family, training_set, alice, lora_root, settings, tmp_path
) -> None:
    from generation.devtools.tiny import TINY_BUILDERS

    folder = TINY_BUILDERS[family](tmp_path / "models" / f"tiny-{family}")
    settings.STUDIO_MODELS_DIR = tmp_path / "models"
    model = ImageModel.objects.create(
        key=f"tiny-{family}",
        name=f"Tiny {family}",
        family=family,
        local_path=f"tiny-{family}",
        license_name="demo",
        commercial_use=True,
    )
    training_set.family = family
    training_set.save()
    add_icons(training_set, 24)
    params = {"steps": 3, "resolution": 64, "batch_size": 2, "sample_every": 3, "checkpoint_every": 2}
    run = training_services.run_create(
        training_set=training_set,
        model=model,
        user=alice,
        overrides=params | {"learning_rate": 5e-2, "sample_steps": 2},
    )
    run_training(str(run.pk), worker="gpu@test")
    run.refresh_from_db()
    assert run.status == JobStatus.COMPLETE, run.error
    lora = run.lora
    assert lora.file == f"{family}/icon-v1.safetensors" and lora.family == family
    engine = engine_class(family)(folder, device="cpu")
    request = GenerationRequest("bsicon, a flat blue circle icon", "", 64, 64, 2, 3.5, [7])
    images: list = []
    for loras in ([], [LoraSpec(lora.path, 1.0)]):
        engine.generate(
            GenerationRequest(**{**request.__dict__, "loras": loras}),
            max_batch=1,
            on_step=lambda s, t: None,
            on_images=lambda f, i: images.extend(i),
        )
    assert np.abs(np.asarray(images[0], dtype=int) - np.asarray(images[1], dtype=int)).mean() > 0.1


def test_comparing_lora_versions_counts_against_the_per_user_limits(staff_client, training_set, settings) -> None:
    from django.urls import reverse

    from generation.models import GenerationJob, JobGroup

    preset = training_set.preset
    lora = BrandLora.objects.create(name="Icon v1", family="flux", file="flux/icon-v1.safetensors", preset=preset)
    settings.STUDIO_MAX_JOBS_IN_FLIGHT = 2 * len(preset.test_prompts) - 1
    response = staff_client.post(reverse("lora-action", args=[lora.pk, "compare"]), follow=True)
    assert "the limit is" in response.content.decode()
    assert not JobGroup.objects.exists() and not GenerationJob.objects.exists()  # nothing half-made


def test_trained_loras_live_under_the_var_folder_and_an_older_checkouts_files_move_there(settings, tmp_path) -> None:
    import os
    from importlib import import_module

    from django.apps import apps

    if "STUDIO_LORA_ROOT" not in os.environ:
        assert Path(settings.STUDIO_LORA_ROOT) == Path(settings.VAR_DIR) / "loras"
    settings.BASE_DIR = tmp_path / "checkout"
    settings.STUDIO_LORA_ROOT = tmp_path / "var" / "loras"
    old = tmp_path / "checkout" / "loras" / "flux"
    old.mkdir(parents=True)
    (old / "icon-v1.safetensors").write_bytes(b"weights")
    (old / "icon-v1.json").write_text("{}")
    BrandLora.objects.create(name="Icon v1", family="flux", file="flux/icon-v1.safetensors")
    move_files = import_module("generation.migrations.0030_lora_files_under_var").move_files
    move_files(apps, None)
    move_files(apps, None)  # again: nothing left to move, nothing lost
    new = tmp_path / "var" / "loras" / "flux"
    assert (new / "icon-v1.safetensors").read_bytes() == b"weights" and (new / "icon-v1.json").is_file()
    assert not (old / "icon-v1.safetensors").exists()
