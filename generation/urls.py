from django.urls import path

from . import views
from .training import views as training_views

urlpatterns = [
    path("", views.studio, name="studio"),
    path("studio/sizes/", views.size_options, name="size-options"),
    path("jobs/<uuid:pk>/", views.job, name="job"),
    path("jobs/<uuid:pk>/retry/", views.job_retry, name="job-retry"),
    path("jobs/<uuid:pk>/cancel/", views.job_cancel, name="job-cancel"),
    path("images/<uuid:pk>/", views.image, name="image"),
    path("images/<uuid:pk>/file/", views.image_file, name="image-file"),
    path("images/<uuid:pk>/favorite/", views.image_favorite, name="image-favorite"),
    path("jobs/<uuid:pk>/zip/", views.job_zip, name="job-zip"),
    path("jobs/<uuid:pk>/more/", views.job_more, name="job-more"),
    path("jobs/<uuid:pk>/reuse/", views.job_reuse, name="job-reuse"),
    path("images/<uuid:pk>/reuse/", views.image_reuse, name="image-reuse"),
    path("images/restore/", views.image_restore, name="image-restore"),
    path("images/<uuid:pk>/vary/", views.image_vary, name="image-vary"),
    path("images/zip/", views.images_zip, name="images-zip"),
    path("compare/", views.compare, name="compare"),
    path("batch/", views.batch, name="batch"),
    path("groups/<uuid:pk>/", views.group, name="group"),
    path("groups/<uuid:pk>/zip/", views.group_zip, name="group-zip"),
    path("history/", views.history, name="history"),
    path("ops/", views.ops_dashboard, name="ops"),
    path("profile/", views.profile, name="profile"),
    path("training/", training_views.training_home, name="training"),
    path("training/sets/<int:pk>/", training_views.training_set, name="training-set"),
    path("training/images/<int:pk>/", training_views.training_image, name="training-image"),
    path("training/files/<path:path>", training_views.training_file, name="training-file"),
    path("training/runs/<uuid:pk>/", training_views.training_run, name="training-run"),
    path("training/runs/<uuid:pk>/<str:action>/", training_views.training_run_action, name="training-run-action"),
    path("training/loras/<int:pk>/<str:action>/", training_views.lora_action, name="lora-action"),
    path("ops/jobs/<uuid:pk>/cancel/", views.ops_cancel, name="ops-cancel"),
    path("favorites/", views.favorites, name="favorites"),
    path("favorites/zip/", views.favorites_zip, name="favorites-zip"),
]
