"""Finishing on the list pages: history by compliance, favorites with scores, zips with SVG and WebP."""

import io
import zipfile

import pytest
from django.urls import reverse

from generation.models import Favorite
from tests.factories import SVG_TEXT, FinishedJobFactory, GeneratedImageFactory, icon_plan

pytestmark = pytest.mark.django_db


def scored_job(owner, prompt: str, *scores: float | None, **fields):
    job = FinishedJobFactory(owner=owner, prompt=prompt, images_total=len(scores), **fields)
    for index, score in enumerate(scores):
        GeneratedImageFactory(job=job, index=index, seed=1000 + index, compliance_after=score)
    return job


class TestHistory:
    @pytest.fixture
    def jobs(self, alice) -> None:
        scored_job(alice, "high", 0.99, 0.4)
        scored_job(alice, "low", 0.7)
        scored_job(alice, "mid", 0.93)
        scored_job(alice, "unscored", None)

    def shown(self, client, **params) -> list[str]:
        response = client.get(reverse("history"), params)
        assert response.status_code == 200
        return [job.prompt for job in response.context["page"]]

    def test_history_keeps_jobs_with_an_image_at_least_as_on_brand_as_asked(self, alice_client, jobs) -> None:
        assert self.shown(alice_client, compliance="90") == ["mid", "high"]
        assert self.shown(alice_client, compliance="98") == ["high"]
        assert self.shown(alice_client, compliance="") == ["unscored", "mid", "low", "high"]

    def test_a_compliance_that_is_not_a_number_is_ignored_and_one_past_100_means_100(self, alice_client, jobs) -> None:
        assert self.shown(alice_client, compliance="lots") == ["unscored", "mid", "low", "high"]
        assert self.shown(alice_client, compliance="nan") == ["unscored", "mid", "low", "high"]
        assert self.shown(alice_client, compliance="250") == []

    def test_history_sorts_by_compliance_both_ways_with_unscored_jobs_last(self, alice_client, jobs) -> None:
        assert self.shown(alice_client, sort="-compliance") == ["high", "mid", "low", "unscored"]
        assert self.shown(alice_client, sort="compliance") == ["low", "mid", "high", "unscored"]
        assert self.shown(alice_client, sort="created") == ["high", "low", "mid", "unscored"]
        assert self.shown(alice_client, sort="bogus") == ["unscored", "mid", "low", "high"]

    def test_the_compliance_filter_works_with_the_other_filters(self, alice_client, alice, jobs) -> None:
        starred = scored_job(alice, "starred high", 0.97)
        Favorite.objects.create(user=alice, image=starred.images.get())
        assert self.shown(alice_client, compliance="90", starred="1") == ["starred high"]
        assert self.shown(alice_client, compliance="90", q="MID") == ["mid"]

    def test_the_form_offers_the_floors_and_orders_and_keeps_the_choice(self, alice_client, jobs) -> None:
        page = alice_client.get(reverse("history"), {"compliance": "90", "sort": "-compliance"}).content.decode()
        assert '<option value="90" selected>on-brand ≥ 90 %</option>' in page
        assert '<option value="-compliance" selected>Most on-brand first</option>' in page
        assert '<option value="compliance">Least on-brand first</option>' in page

    def test_pages_keep_the_compliance_filter_and_order(self, alice_client, alice) -> None:
        for n in range(25):
            scored_job(alice, f"job {n}", 0.5 + n / 100)
        response = alice_client.get(reverse("history"), {"compliance": "50", "sort": "compliance"})
        assert [job.prompt for job in response.context["page"]][:2] == ["job 0", "job 1"]
        assert "compliance=50&amp;sort=compliance&amp;page=2" in response.content.decode()
        second = alice_client.get(reverse("history"), {"compliance": "50", "sort": "compliance", "page": 2})
        assert [job.prompt for job in second.context["page"]] == [f"job {n}" for n in range(20, 25)]

    def test_a_100_job_history_sorted_and_filtered_by_compliance_takes_a_fixed_number_of_queries(
        self, alice_client, alice, django_assert_max_num_queries
    ) -> None:
        for n in range(100):
            scored_job(alice, f"job {n}", n / 100, 0.99)
        with django_assert_max_num_queries(12):  # the budget of the unfiltered page (tests/test_workflow.py)
            response = alice_client.get(reverse("history"), {"compliance": "90", "sort": "-compliance"})
        assert response.status_code == 200 and len(response.context["page"]) == 20


class TestFavorites:
    def star(self, user, **fields):
        image = GeneratedImageFactory(job=FinishedJobFactory(owner=user), **fields)
        Favorite.objects.create(user=user, image=image)
        return image

    def test_favorites_show_each_images_score(self, alice_client, alice) -> None:
        self.star(alice, traced=True)
        page = alice_client.get(reverse("favorites")).content.decode()
        assert '<span class="compliance" title="Share of pixels within the brand palette">on-brand 99%</span>' in page

    def test_a_favorite_below_its_floor_is_flagged(self, alice_client, alice) -> None:
        self.star(alice, traced=True, compliance_after=0.624)
        page = alice_client.get(reverse("favorites")).content.decode()
        assert 'class="compliance flagged"' in page and "on-brand 62%, below 90%" in page

    def test_transparent_favorites_sit_on_a_checkerboard_and_opaque_ones_do_not(self, alice_client, alice) -> None:
        clear = self.star(alice, traced=True)
        opaque = self.star(alice)
        page = alice_client.get(reverse("favorites")).content.decode()
        assert f'href="/images/{clear.id}/" class="checker"' in page
        assert f'href="/images/{opaque.id}/" title' in page

    def test_favorites_without_a_score_show_none(self, alice_client, alice) -> None:
        self.star(alice)
        assert "on-brand" not in alice_client.get(reverse("favorites")).content.decode()


class TestZips:
    def archive(self, response) -> zipfile.ZipFile:
        archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
        assert archive.testzip() is None
        return archive

    def test_each_traced_images_svg_goes_beside_its_png(self, alice_client, alice) -> None:
        job = FinishedJobFactory(owner=alice, prompt="a key", images_total=2)
        GeneratedImageFactory(job=job, index=0, seed=7, traced=True)
        GeneratedImageFactory(job=job, index=1, seed=8)
        archive = self.archive(alice_client.get(reverse("job-zip", args=[job.id])))
        stem = f"{job.preset.slug}-a-key-seed"
        assert archive.namelist() == [f"{stem}7.png", f"{stem}7.svg", f"{stem}8.png"]
        assert archive.read(f"{stem}7.svg").decode() == SVG_TEXT
        assert archive.getinfo(f"{stem}7.svg").compress_type == zipfile.ZIP_DEFLATED  # text; the rest is stored
        assert archive.getinfo(f"{stem}7.png").compress_type == zipfile.ZIP_STORED

    def test_colliding_names_keep_each_svg_with_its_own_png(self, alice_client, alice, preset) -> None:
        for _ in range(2):  # same asset type, prompt and seed: the second image's files get "-2"
            job = FinishedJobFactory(owner=alice, preset=preset, prompt="a key")
            image = GeneratedImageFactory(job=job, seed=7, traced=True)
            Favorite.objects.create(user=alice, image=image)
        names = self.archive(alice_client.get(reverse("favorites-zip"))).namelist()
        assert [name.rpartition("seed")[2] for name in names] == ["7.png", "7.svg", "7-2.png", "7-2.svg"]

    def test_a_comparison_zip_keeps_svgs_in_their_model_folder(self, alice_client, alice) -> None:
        from generation.models import GroupKind, JobGroup

        group = JobGroup.objects.create(owner=alice, kind=GroupKind.MODELS, title="a key")
        job = FinishedJobFactory(owner=alice, prompt="a key", group=group, plan=icon_plan())
        GeneratedImageFactory(job=job, seed=7, traced=True)
        names = self.archive(alice_client.get(reverse("group-zip", args=[group.id]))).namelist()
        assert [name.split("/")[0] for name in names] == ["tiny-flux"] * 2
        assert [name.rpartition(".")[2] for name in names] == ["png", "svg"]
