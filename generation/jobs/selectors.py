"""The read queries that pages and the API share: history's filters and orders, live previews."""

from collections.abc import Iterable

from django.conf import settings
from django.db.models import Exists, F, Max, OuterRef, QuerySet, Subquery

from ..models import GeneratedImage, GenerationJob, ImagePreview, JobStatus
from ..routing.workers import live_workers

# History's compliance filter (percent: "on-brand ≥ 90 %") and orders. Compliance is a column of
# each image, so both stay inside the page's one query for jobs: no query per job.
COMPLIANCE_FLOORS = [50, 75, 90, 95, 98]


HISTORY_SORTS = {
    "-created": "Newest first",
    "created": "Oldest first",
    "-compliance": "Most on-brand first",
    "compliance": "Least on-brand first",
}


def jobs_with_compliance(
    jobs: QuerySet[GenerationJob], *, minimum: float | None = None, maximum: float | None = None
) -> QuerySet[GenerationJob]:
    """The jobs with at least one image whose finished score is within [minimum, maximum] (0–1)."""
    images = GeneratedImage.objects.filter(job=OuterRef("pk"), compliance_after__isnull=False)
    if minimum is not None:
        images = images.filter(compliance_after__gte=minimum)
    if maximum is not None:
        images = images.filter(compliance_after__lte=maximum)
    return jobs.filter(Exists(images))


def jobs_sorted(jobs: QuerySet[GenerationJob], sort: str) -> QuerySet[GenerationJob]:
    """Jobs in one of HISTORY_SORTS' orders (anything else: newest first). A job's compliance is
    its best image's; jobs without a score come last either way."""
    if sort == "created":
        return jobs.order_by("created_at")
    if sort not in ("compliance", "-compliance"):
        return jobs.order_by("-created_at")
    best = GeneratedImage.objects.filter(job=OuterRef("pk")).order_by().values("job")
    jobs = jobs.annotate(best_compliance=Subquery(best.annotate(best=Max("compliance_after")).values("best")))
    score = F("best_compliance")
    order = score.desc(nulls_last=True) if sort == "-compliance" else score.asc(nulls_last=True)
    return jobs.order_by(order, "-created_at")


def attach_live_previews(jobs: Iterable[GenerationJob]) -> None:
    """Give each running job its `live_previews`, in one query for all of them."""
    running = {job.pk: job for job in jobs if job.status == JobStatus.PROCESSING}
    for job in running.values():
        job.live_previews = []  # type: ignore[attr-defined]
    if not running:
        return
    for preview in ImagePreview.objects.filter(job_id__in=running).order_by("index"):
        job = running[preview.job_id]
        if preview.index >= job.images_done:
            job.live_previews.append(preview)  # type: ignore[attr-defined]


def gpu_cold_start_seconds() -> int:
    """How long a GPU worker takes to start, while none runs where workers scale to zero
    (STUDIO_COLD_START_SECONDS, deploy/azure/): a waiting job says a worker is starting, not just
    that it waits. 0 while one runs, or where workers never scale to zero."""
    if not settings.STUDIO_COLD_START_SECONDS or live_workers().exists():
        return 0
    return settings.STUDIO_COLD_START_SECONDS
