"""Captions written for a training set: a captioner add-on (a transformers image-text-to-text
folder; here a tiny Qwen2.5-VL with random weights, read by the real loading code) writes the
missing captions on a worker, in the set's words; the designer reviews them on the set page."""

import ast
import json
import shutil
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from generation import tasks
from generation.devtools.tiny import build_tiny_depth_estimator
from generation.devtools.tiny_captioner import CAPTION_WORDS, build_tiny_captioner
from generation.jobs import lifecycle
from generation.models import AddOn, AddOnKind, AssetPreset, TrainingImage, TrainingSet
from generation.models.training import CaptionSource
from generation.training import data as training_data
from generation.training import services as training_services
from generation.training.captions import captioner as captioner_module
from generation.training.captions import progress, terms
from generation.training.captions.wording import wording_of
from generation.training.lora import Trainer
from tests.factories import UserFactory
from tests.training.test_training import icon, png, upload

pytestmark = pytest.mark.django_db

TINY = "tiny-captioner"


@pytest.fixture(scope="session")
def tiny_captioner_dir(tmp_path_factory) -> Path:
    return build_tiny_captioner(tmp_path_factory.mktemp("captioner") / TINY)


@pytest.fixture
def models_dir(settings, tiny_captioner_dir: Path) -> Path:
    """STUDIO_MODELS_DIR (the conftest's) with the tiny captioner in it."""
    models = Path(settings.STUDIO_MODELS_DIR)
    if not (models / TINY).exists():
        shutil.copytree(tiny_captioner_dir, models / TINY)
    return models


def captioner_row(folder: str = TINY, **fields) -> AddOn:
    values = {
        "key": "tiny-captioner",
        "name": "Tiny captioner",
        "kind": AddOnKind.CAPTIONER,
        "family": "",
        "local_path": folder,
        "license_name": "Apache-2.0",
        "commercial_use": True,
        "for_testing": True,
    }
    return AddOn(**(values | fields))


@pytest.fixture
def captioner(models_dir) -> AddOn:
    row = captioner_row()
    row.full_clean()
    row.save()
    return row


@pytest.fixture
def fast(monkeypatch) -> None:
    """A few words a caption: the pipeline is under test, not the (random) words."""
    monkeypatch.setattr(captioner_module, "MAX_NEW_TOKENS", 24)


@pytest.fixture
def training_set(db) -> TrainingSet:
    preset = AssetPreset.objects.get(slug="icon")
    return TrainingSet.objects.create(name="Icons", preset=preset, family="flux", trigger_word="bsicon")


def add_images(training_set: TrainingSet, captions: list[str]) -> list[TrainingImage]:
    first = training_set.images.count()
    files = [upload(f"{n}.png", png(icon(n))) for n in range(first, first + len(captions))]
    images = training_data.add_uploads(training_set, files).added
    for image, caption in zip(images, captions, strict=True):
        image.caption = caption
        image.save(update_fields=["caption"])
    return images


@pytest.fixture
def sent(monkeypatch) -> list[tuple]:
    """What the services send to the queue (by name, after commit)."""
    calls: list[tuple] = []
    monkeypatch.setattr(lifecycle, "send_task", lambda name, *args, **options: calls.append((name, *args)))
    return calls


def start(training_set, captioner, sent, django_capture_on_commit_callbacks) -> str:
    """Start a pass as the set page does; the token it was sent with."""
    user = UserFactory(username="stella", is_staff=True)
    with django_capture_on_commit_callbacks(execute=True):
        training_services.captions_start(training_set=training_set, captioner=captioner, user=user)
    name, set_id, token = sent[-1]
    assert name == training_services.CAPTIONS and set_id == training_set.pk
    return token


# Every word the tiny captioner can say but “icon”, replaced: whatever it writes, the set's terms show.
STAFF_TERMS = {
    "flat icon": ["flat", "minimal"],
    "hue": ["yellow", "red", "green", "blue", "orange", "purple", "grey", "white", "black"],
    "form": ["circle", "square", "triangle", "star", "heart", "cloud", "shapes"],
    "look": ["clean", "solid", "centered", "illustration", "background"],
}


# --- the add-on, checked at save


def test_a_transformers_image_to_text_folder_is_accepted_as_a_captioner(models_dir) -> None:
    captioner_row().full_clean()


def test_a_depth_estimator_is_refused_as_a_captioner_saying_what_it_holds(settings, tmp_path) -> None:
    settings.STUDIO_MODELS_DIR = tmp_path
    build_tiny_depth_estimator(tmp_path / "depth")
    with pytest.raises(ValidationError) as refused:
        captioner_row("depth").full_clean()
    message = " ".join(refused.value.message_dict["local_path"])
    assert "DepthAnythingForDepthEstimation, not a model that writes text about an image" in message


@pytest.mark.parametrize(
    ("spoil", "said"),
    [
        (lambda f: (f / "config.json").unlink(), "No readable config.json in"),
        (lambda f: edit_config(f, auto_map={"AutoModel": "modeling_x.X"}), "trust_remote_code"),
        (lambda f: edit_config(f, architectures=["Qwen3ForCausalLM"], vision_config=None), "a text model"),
        (lambda f: (f / "processor_config.json").unlink(), "No image processor in"),
        (lambda f: (f / "tokenizer.json").unlink() or (f / "tokenizer_config.json").unlink(), "No tokenizer in"),
        (lambda f: (f / "model.safetensors").unlink(), "No .safetensors weights in"),
        (lambda f: truncate(f / "model.safetensors"), "model.safetensors"),
    ],
    ids=["no-config", "remote-code", "text-only", "no-processor", "no-tokenizer", "no-weights", "cut-weights"],
)
def test_a_folder_that_is_not_a_whole_captioner_is_refused_with_what_is_wrong(
    spoil, said, tiny_captioner_dir, settings, tmp_path
) -> None:
    settings.STUDIO_MODELS_DIR = tmp_path
    shutil.copytree(tiny_captioner_dir, tmp_path / "broken")
    spoil(tmp_path / "broken")
    with pytest.raises(ValidationError) as refused:
        captioner_row("broken").full_clean()
    assert said in " ".join(refused.value.message_dict["local_path"])


def edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    config = {key: value for key, value in config.items() if value is not None}
    (folder / "config.json").write_text(json.dumps(config))


def truncate(file: Path) -> None:
    file.write_bytes(file.read_bytes()[:-100])


def test_a_captioner_serves_every_family(models_dir) -> None:
    with pytest.raises(ValidationError, match="leave the family blank"):
        captioner_row(family="flux").full_clean()


def test_the_admin_refuses_a_folder_that_is_no_captioner_and_saves_nothing(admin_client, settings, tmp_path) -> None:
    settings.STUDIO_MODELS_DIR = tmp_path
    (tmp_path / "empty").mkdir()
    data = {
        "name": "Not one",
        "key": "not-one",
        "kind": AddOnKind.CAPTIONER,
        "family": "",
        "enabled": "on",
        "local_path": "empty",
        "weight_name": "ip-adapter.safetensors",
        "license_name": "MIT",
    }
    response = admin_client.post(reverse("admin:generation_addon_add"), data)
    assert response.status_code == 200 and "No readable config.json in" in response.content.decode()
    assert not AddOn.objects.exists()


# --- the worker: captions in the set's words


def test_the_captioner_writes_only_the_missing_captions_in_the_sets_words(
    training_set, captioner, sent, fast, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    training_set.terminology = STAFF_TERMS
    training_set.save(update_fields=["terminology"])
    empty, written_by_hand, left_out = add_images(training_set, ["", "a blue cloud icon drawn by hand", ""])
    left_out.excluded = True
    left_out.save(update_fields=["excluded"])
    answers: list[str] = []
    real = captioner_module.Captioner.caption

    def spy(self, image, prompt):
        answers.append(real(self, image, prompt))
        assert prompt and "“flat icon”, never “flat”, “minimal”" in prompt  # the chat turn carries the terms
        return answers[-1]

    monkeypatch.setattr(captioner_module.Captioner, "caption", spy)
    token = start(training_set, captioner, sent, django_capture_on_commit_callbacks)
    tasks.write_training_captions(training_set.pk, token)  # the task's body, in-process

    empty.refresh_from_db(), written_by_hand.refresh_from_db(), left_out.refresh_from_db()
    assert len(answers) == 1  # one image was included and had none
    assert empty.caption == terms.finish(answers[0], wording_of(training_set)) != ""
    assert empty.caption_source == CaptionSource.CAPTIONER and empty.needs_review
    assert set(CAPTION_WORDS) <= {word for words in STAFF_TERMS.values() for word in words} | {"icon"}
    assert set(empty.caption.replace(",", " ").split()) <= {"flat", "icon", "hue", "form", "look"}
    assert written_by_hand.caption == "a blue cloud icon drawn by hand" and not written_by_hand.needs_review
    assert left_out.caption == ""
    done = progress.progress_of(TrainingSet.objects.get(pk=training_set.pk))
    assert (done.status, done.total, done.done, done.written, done.failed) == ("done", 1, 1, 1, 0)


def test_the_trigger_word_and_the_template_come_once_in_what_trains(
    training_set, captioner, sent, fast, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    """The trainer puts the trigger word and the template around each caption: the captioner's
    caption carries neither, so the prompt it trains on says each once."""
    (image,) = add_images(training_set, [""])
    monkeypatch.setattr(
        captioner_module.Captioner,
        "caption",
        lambda self, picture, prompt: "The image shows a BSICON blue cloud, minimal vector style, bsicon.",
    )
    token = start(training_set, captioner, sent, django_capture_on_commit_callbacks)
    captioner_module.write_captions(training_set.pk, token, worker="training@test")
    image.refresh_from_db()
    assert image.caption == "a blue cloud"
    trained = Trainer._caption(SimpleNamespace(training_set=training_set, preset=training_set.preset), image.caption)
    assert trained.lower().count("bsicon") == 1 and trained.count("minimal vector style") == 1
    assert trained.startswith("bsicon, a blue cloud, Fluent 2 design icon")


def test_an_image_the_captioner_fails_on_keeps_no_caption_and_says_why_and_the_rest_go_on(
    training_set, captioner, sent, fast, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    first, second = add_images(training_set, ["", ""])
    real = captioner_module._picture

    def picture(image):
        if image.pk == first.pk:
            raise OSError("cannot identify image file")
        return real(image)

    monkeypatch.setattr(captioner_module, "_picture", picture)
    token = start(training_set, captioner, sent, django_capture_on_commit_callbacks)
    captioner_module.write_captions(training_set.pk, token, worker="training@test")
    first.refresh_from_db(), second.refresh_from_db()
    assert first.caption == "" and "OSError: cannot identify image file" in first.caption_error
    assert second.caption and second.needs_review
    done = progress.progress_of(TrainingSet.objects.get(pk=training_set.pk))
    assert (done.status, done.written, done.failed) == ("done", 1, 1)


def test_a_caption_a_person_writes_while_the_captioner_runs_is_kept(
    training_set, captioner, sent, fast, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    first, second = add_images(training_set, ["", ""])
    real = captioner_module.Captioner.caption

    def meanwhile(self, image, prompt):
        TrainingImage.objects.filter(pk=second.pk).update(caption="a person's own caption")
        return real(self, image, prompt)

    monkeypatch.setattr(captioner_module.Captioner, "caption", meanwhile)
    token = start(training_set, captioner, sent, django_capture_on_commit_callbacks)
    captioner_module.write_captions(training_set.pk, token, worker="training@test")
    second.refresh_from_db()
    assert second.caption == "a person's own caption" and second.caption_source == CaptionSource.HUMAN


def test_a_captioner_that_does_not_load_fails_the_pass_with_the_reason(
    training_set, captioner, sent, django_capture_on_commit_callbacks, models_dir
) -> None:
    add_images(training_set, [""])
    token = start(training_set, captioner, sent, django_capture_on_commit_callbacks)
    captioner.local_path = "gone"  # saved without clean(): the folder went away after it was checked
    captioner.save()
    captioner_module.write_captions(training_set.pk, token, worker="training@test")
    failed = progress.progress_of(TrainingSet.objects.get(pk=training_set.pk))
    assert failed.status == "failed" and "Tiny captioner could not be loaded from 'gone'" in failed.error


def test_a_stopped_pass_writes_nothing_more(training_set, captioner, sent, django_capture_on_commit_callbacks) -> None:
    (image,) = add_images(training_set, [""])
    token = start(training_set, captioner, sent, django_capture_on_commit_callbacks)
    training_services.captions_stop(training_set=training_set)
    captioner_module.write_captions(training_set.pk, token, worker="training@test")
    image.refresh_from_db()
    assert image.caption == "" and progress.progress_of(TrainingSet.objects.get(pk=training_set.pk)).status == "stopped"


def test_an_unreachable_queue_fails_the_pass_at_once(
    training_set, captioner, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    add_images(training_set, [""])

    def down(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(lifecycle, "send_task", down)
    with django_capture_on_commit_callbacks(execute=True):
        training_services.captions_start(training_set=training_set, captioner=captioner, user=UserFactory())
    failed = progress.progress_of(TrainingSet.objects.get(pk=training_set.pk))
    assert failed.status == "failed" and "The job queue is unreachable (ConnectionError)" in failed.error


def test_a_pass_is_refused_when_nothing_is_missing_or_one_is_on_the_way(
    training_set, captioner, sent, django_capture_on_commit_callbacks
) -> None:
    add_images(training_set, ["a caption"])
    with pytest.raises(training_services.TrainingError, match="nothing to write"):
        training_services.captions_start(training_set=training_set, captioner=captioner, user=UserFactory())
    add_images(training_set, [""])
    start(training_set, captioner, sent, django_capture_on_commit_callbacks)
    with pytest.raises(training_services.TrainingError, match="already on this set"):
        training_services.captions_start(training_set=training_set, captioner=captioner, user=UserFactory())


def test_a_pass_whose_worker_went_silent_is_shown_stopped_and_can_start_again(
    training_set, captioner, sent, django_capture_on_commit_callbacks
) -> None:
    add_images(training_set, [""])
    token = start(training_set, captioner, sent, django_capture_on_commit_callbacks)
    progress.advance(training_set.pk, token, status=progress.RUNNING)
    state = TrainingSet.objects.get(pk=training_set.pk).captioning
    state["heartbeat"] = (timezone.now() - timedelta(hours=1)).isoformat()
    TrainingSet.objects.filter(pk=training_set.pk).update(captioning=state)
    silent = progress.progress_of(TrainingSet.objects.get(pk=training_set.pk))
    assert not silent.active and silent.label == "Stopped: the worker went away"
    assert start(training_set, captioner, sent, django_capture_on_commit_callbacks) != token


def test_the_caption_task_goes_to_the_training_queue(settings) -> None:
    assert settings.CELERY_TASK_ROUTES[training_services.CAPTIONS] == {"queue": "training"}
    assert tasks.write_training_captions.name == training_services.CAPTIONS


def test_the_web_side_of_captions_imports_neither_torch_nor_transformers() -> None:
    from tests.test_architecture import MODULES, TREES

    web = [name for name in MODULES if name.startswith("generation.training.captions.") and "captioner" not in name]
    web += ["generation.training.services", "generation.training.views", "generation.training.data"]
    for name in web:
        imported = {
            alias.name if isinstance(node, ast.Import) else node.module or ""
            for node in ast.walk(TREES[name])
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        assert not {m for m in imported if m.split(".")[0] in {"torch", "transformers"}}, name


# --- the report


def test_the_report_counts_the_captions_nobody_has_reviewed_as_a_warning(training_set) -> None:
    images = add_images(training_set, ["a blue circle icon on a white background"] * 3)
    TrainingImage.objects.filter(pk__in=[images[0].pk, images[1].pk]).update(
        caption_source=CaptionSource.CAPTIONER, caption_reviewed=False
    )
    TrainingImage.objects.filter(pk=images[2].pk).update(caption_source=CaptionSource.CAPTIONER, caption_reviewed=True)
    captions = {check.name: check for check in training_data.report(training_set).checks}["Captions"]
    (finding,) = [f for f in captions.findings if "captioner" in f.message]
    assert finding.level == "warning" and finding.message.startswith("2 caption(s) written by the captioner")
    assert sorted(finding.images) == sorted([images[0].pk, images[1].pk])


# --- the set page: start, progress, review


@pytest.fixture
def staff_client(db) -> Client:
    client = Client()
    client.force_login(UserFactory(username="sam", is_staff=True))
    return client


def test_staff_start_the_captioner_follow_it_and_review_its_captions(
    staff_client, training_set, captioner, sent, fast, django_capture_on_commit_callbacks
) -> None:
    first, second, by_hand = add_images(training_set, ["", "", "a red heart icon on a white background"])
    page = staff_client.get(training_set.get_absolute_url()).content.decode()
    assert "Write missing captions" in page and "Tiny captioner" in page
    url = reverse("training-captions", args=[training_set.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url, {"action": "start", "captioner": captioner.pk}, follow=True)
    assert "Tiny captioner is writing 2 missing caption(s)" in response.content.decode()
    polled = staff_client.get(url, HTTP_HX_REQUEST="true")
    assert polled.status_code == 200 and 'hx-trigger="every 2s"' in polled.content.decode()
    assert "Waiting for a training worker" in polled.content.decode()

    captioner_module.write_captions(training_set.pk, sent[-1][2], worker="training@test")
    ended = staff_client.get(url, HTTP_HX_REQUEST="true")
    assert ended.status_code == 286 and ended["HX-Refresh"] == "true" and "2 captions written" in ended.content.decode()
    page = staff_client.get(training_set.get_absolute_url()).content.decode()
    assert page.count("Written by the captioner, not reviewed") == 2
    assert "2 caption(s) written by the captioner and not reviewed yet" in page
    only = staff_client.get(training_set.get_absolute_url(), {"captions": "unreviewed"}).content.decode()
    # Match the alt text: stored file names are random hex and may end in "2.png" too.
    assert only.count("<figure") == 2 and f'alt="{by_hand.original_name}"' not in only

    tile_url = reverse("training-image", args=[first.pk])
    tile = staff_client.post(tile_url, {"reviewed": "1"}, HTTP_HX_REQUEST="true").content.decode()
    assert "Written by the captioner, approved" in tile and "not reviewed" not in tile
    edit_url = reverse("training-image", args=[second.pk])
    staff_client.post(edit_url, {"caption": "a green star icon on a white background"}, HTTP_HX_REQUEST="true")
    first.refresh_from_db(), second.refresh_from_db()
    assert first.caption_source == CaptionSource.CAPTIONER and not first.needs_review
    assert second.caption_source == CaptionSource.HUMAN and not second.needs_review
    page = staff_client.get(training_set.get_absolute_url()).content.decode()
    assert "not reviewed" not in page


def test_staff_stop_the_captioner_from_the_set_page(
    staff_client, training_set, captioner, sent, django_capture_on_commit_callbacks
) -> None:
    add_images(training_set, [""])
    url = reverse("training-captions", args=[training_set.pk])
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(url, {"action": "start", "captioner": captioner.pk})
    assert "Stop the captioner" in staff_client.get(training_set.get_absolute_url()).content.decode()
    page = staff_client.post(url, {"action": "stop"}, follow=True).content.decode()
    assert "Stopped the captioner" in page and "Write missing captions" in page


def test_a_captioner_failing_on_an_image_says_why_on_its_tile(staff_client, training_set) -> None:
    (image,) = add_images(training_set, [""])
    TrainingImage.objects.filter(pk=image.pk).update(caption_error="The captioner failed on this image: OSError: x")
    page = staff_client.get(training_set.get_absolute_url()).content.decode()
    assert "The captioner failed on this image: OSError: x" in page


def test_the_set_page_says_how_to_register_a_captioner_when_there_is_none(staff_client, training_set) -> None:
    page = staff_client.get(training_set.get_absolute_url()).content.decode()
    assert "No captioner is registered" in page and "Write missing captions" not in page


def test_staff_keep_the_sets_terms_and_a_list_that_cannot_work_is_a_form_error(staff_client, training_set) -> None:
    url = training_set.get_absolute_url()
    staff_client.post(url, {"terminology": "flat icon: flat, Minimal\nicon: glyph"})
    training_set.refresh_from_db()
    assert training_set.terminology == {"flat icon": ["flat", "minimal"], "icon": ["glyph"]}
    page = staff_client.get(url).content.decode()
    assert "flat icon: flat, minimal" in page
    assert "From the Icon template, too: “background” for backdrop" in page  # the template's own words
    refused = staff_client.post(url, {"terminology": "flat: minimal\nsimple: minimal"})
    assert (
        refused.status_code == 422 and "“minimal” is replaced by both “flat” and “simple”" in refused.content.decode()
    )
    training_set.refresh_from_db()
    assert training_set.terminology == {"flat icon": ["flat", "minimal"], "icon": ["glyph"]}


def test_designers_cannot_start_the_captioner(alice_client, training_set) -> None:
    url = reverse("training-captions", args=[training_set.pk])
    assert alice_client.post(url, {"action": "start"}).status_code == 302
    assert training_set.captioning == {}


# --- the terms, as unit tests


class TestTerms:
    TEMPLATE = "{subject}, flat vector icon, minimal style, solid background"

    def wording(self, staff: dict | None = None, trigger: str = "bsicon") -> terms.Wording:
        return terms.wording_for(
            asset="Icon",
            template=self.TEMPLATE,
            trigger=trigger,
            terminology=staff or {},
            synonyms=training_data.SYNONYMS,
            opposites=training_data.OPPOSITES,
        )

    def test_a_list_is_read_one_rule_a_line_and_written_back_the_same(self) -> None:
        rules = terms.parse_terms("flat icon: flat, Minimal\n\n# a comment\nicon: glyph, pictogram")
        assert rules == {"flat icon": ["flat", "minimal"], "icon": ["glyph", "pictogram"]}
        assert terms.parse_terms(terms.format_terms(rules)) == rules

    @pytest.mark.parametrize(
        ("text", "said"),
        [
            ("flat icon flat", "Line 1: write the preferred term, a colon"),
            ("icon:", "Line 1: write the preferred term, a colon"),
            ("a: b\nc: b", "“b” is replaced by both “a” and “c”"),
            ("flat: minimal\nminimal: simple", "“minimal” is both a preferred term and a word to replace"),
            ("icon: icon", "“icon” replaces itself"),
            ("icon: 42", "“42…” is not a term"),
        ],
    )
    def test_a_list_that_cannot_work_says_which_line_or_word(self, text, said) -> None:
        with pytest.raises(terms.TermsError, match=said):
            terms.parse_terms(text)

    def test_each_replaced_word_becomes_the_preferred_term_plurals_too(self) -> None:
        rules = {"flat icon": ["flat", "minimal"], "icon": ["glyph", "symbol"]}
        assert terms.rewrite("a Minimal glyph and two symbols", rules) == "a flat icon icon and two icons"
        assert terms.rewrite("a flat icon, a flat-shaded cube", rules) == "a flat icon, a flat-shaded cube"

    def test_the_answer_loses_openings_the_trigger_word_and_the_templates_phrases(self) -> None:
        wording = self.wording({"flat icon": ["flat", "minimal"]})
        answer = "The image shows a minimal icon of a blue cloud, bsicon, solid background."
        assert terms.finish(answer, wording) == "a flat icon of a blue cloud"

    def test_the_templates_word_for_an_idea_replaces_its_synonyms(self) -> None:
        wording = self.wording()
        assert wording.derived["flat"] == ["minimalist", "simple"]  # “minimal” is the template's too: kept
        assert terms.finish("A simple glyph on a plain backdrop", wording) == "a flat icon on a plain background"

    def test_the_staffs_list_has_the_say_over_the_template(self) -> None:
        wording = self.wording({"plain": ["simple", "minimal"]})
        assert "minimal" not in wording.derived and "flat" not in wording.derived
        assert terms.finish("a simple star", wording) == "a plain star"

    def test_words_that_contradict_the_template_are_named_to_a_chat_captioner(self) -> None:
        wording = self.wording({"flat icon": ["flat"]})
        asked = terms.instruction(wording)
        assert "gradient" in wording.avoid and "Never use the words" in asked and "“gradient”" in asked
        assert "“flat icon”, never “flat”" in asked and "flat vector icon, minimal style, solid background" in asked
        assert "bsicon" not in asked

    def test_a_looping_answer_is_said_once_and_a_long_one_cut_to_the_limit(self) -> None:
        wording = self.wording()
        assert terms.finish("blue blue star star star clean square clean square", wording) == "blue star clean square"
        long = " ".join(f"word{n}" for n in range(90))
        assert terms.finish(long, terms.Wording()).split() == long.split()[: terms.MAX_WORDS]

    def test_an_answer_with_nothing_usable_is_empty(self) -> None:
        assert terms.finish("\x0b\ufffd  **  bsicon.", self.wording()) == ""
