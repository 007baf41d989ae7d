"""`brandstudio submit`, `submissions`, `library search` and `library download` against the live server."""

from pathlib import Path

import pytest

from generation.models import Submission
from generation.review import services
from tests.test_cli import icon_job, run  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_a_designer_submits_from_the_terminal_and_finds_the_approved_icon_in_the_library(
    run,  # noqa: F811  (the fixture from tests.test_cli)
    alice,
    bob,
    tmp_path,  # noqa: F811
) -> None:
    bob.is_staff = True  # staff review
    bob.save()
    job = icon_job(alice, traced=[True])
    image = job.images.get()
    result = run("submit", str(image.pk), "--note", "For onboarding", "--tag", "onboarding")
    assert result.exit_code == 0, result.output
    submission = Submission.objects.get()
    assert str(submission.pk) in result.stdout and "review" in result.stdout.lower()
    pending = run("submissions")
    assert str(submission.pk) in pending.stdout and "page 1 of 1 (1 submissions)" in pending.stdout

    services.submission_decide(reviewer=bob, submission=submission, approve=True, comment="Lovely")
    found = run("library", "search", "--tag", "onboarding", "--asset-type", job.preset.slug)
    assert found.exit_code == 0 and str(submission.pk) in found.stdout and "(1 approved)" in found.stdout
    assert "(0 approved)" in run("library", "search", "--tag", "no-such-tag").stdout

    saved = run("library", "download", str(submission.pk), "--format", "svg", "-o", str(tmp_path))
    assert saved.exit_code == 0, saved.output
    path = Path(saved.stdout.strip())
    assert path.suffix == ".svg" and path.read_text().lstrip().startswith(("<svg", "<?xml"))


def test_submitting_someone_elses_image_exits_not_found_and_submits_nothing(run, bob) -> None:  # noqa: F811
    job = icon_job(bob, traced=[False])
    result = run("submit", str(job.images.get().pk))
    assert result.exit_code == 5 and not Submission.objects.exists()


def test_downloading_an_svg_the_item_does_not_have_says_so(run, alice, bob, tmp_path) -> None:  # noqa: F811
    bob.is_staff = True
    bob.save()
    job = icon_job(alice, traced=[False])
    [submission] = services.submission_create(user=alice, images=[job.images.get()], note="", tags=[])
    services.submission_decide(reviewer=bob, submission=submission, approve=True, comment="")
    result = run("library", "download", str(submission.pk), "--format", "svg", "-o", str(tmp_path))
    assert result.exit_code == 4 and "has no SVG" in result.output
