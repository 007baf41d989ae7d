"""Settings for Brand Studio, all from the environment.

Zero configuration gives the embedded default (SQLite, local media, a filesystem broker);
DATABASE_URL, CELERY_BROKER_URL and AZURE_* switch to the team-server and scale-out sizes.
Production defaults are the secure ones: DEBUG is off and SECRET_KEY is required unless DEBUG=1.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from . import azure

BASE_DIR = Path(__file__).resolve().parent.parent

# Workers log through Celery; keep Hugging Face libraries to errors and no progress bars.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_secret(name: str) -> str:
    """A secret from the environment; a Key Vault reference there, `@Microsoft.KeyVault(SecretUri=...)`,
    is read from the vault with the process's managed identity (brandstudio/azure/)."""
    return azure.resolve(env_str(name))


def _secret_key() -> str:
    if key := env_secret("SECRET_KEY"):
        return key
    if path := env_str("SECRET_KEY_FILE"):
        return Path(path).read_text().strip()
    if DEBUG:
        return "insecure-debug-only-key"
    raise ImproperlyConfigured("Set SECRET_KEY (or SECRET_KEY_FILE), or DEBUG=1 for local development.")


DEBUG = env_bool("DEBUG")
SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# Everything the studio writes at run time (SQLite, media, broker folders, built models).
VAR_DIR = Path(env_str("STUDIO_VAR_DIR", str(BASE_DIR / "var")))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "social_django",
    "ninja",
    "simple_history",  # the audit trail of catalogue edits (docs/operations.md)
    "generation",
]

MIDDLEWARE = [
    "generation.middleware.api_cors",
    "generation.middleware.api_body_limit",
    "generation.middleware.content_security_policy",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication: a catalogue change made in a request is recorded with its user.
    "simple_history.middleware.HistoryRequestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "social_django.middleware.SocialAuthExceptionMiddleware",
]

ROOT_URLCONF = "brandstudio.urls"
WSGI_APPLICATION = "brandstudio.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            # {% partialdef %} everywhere, as in Django 6 (django-template-partials on 5.2).
            "builtins": ["template_partials.templatetags.partials"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "social_django.context_processors.backends",
                "generation.context_processors.studio",
            ],
        },
    },
]

# Connections are kept for a minute (each gunicorn thread and worker process has its own) and
# checked before reuse, so a restarted Postgres costs one reconnect, not an error page
# (https://docs.djangoproject.com/en/5.2/ref/databases/#persistent-connections).
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"), conn_max_age=60, conn_health_checks=True
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and heartbeat thread write at once: WAL plus IMMEDIATE transactions
    # avoid "database is locked" on lock upgrades (https://docs.djangoproject.com/en/5.2/ref/databases/#sqlite-notes).
    # IMMEDIATE also takes the write lock at BEGIN, which makes services.within_limits atomic here.
    # Kept connections are safe with both: a connection holds no lock between transactions.
    # Our backend queues writing transactions on a file lock (brandstudio/sqlite/base.py).
    DATABASES["default"]["ENGINE"] = "brandstudio.sqlite"
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
elif env_bool("DATABASE_ENTRA_AUTH"):
    # Azure Database for PostgreSQL with Microsoft Entra ID: DATABASE_URL names the managed identity
    # as the user and holds no password; each new connection signs in with a fresh token.
    DATABASES["default"]["ENGINE"] = "brandstudio.azure.postgres"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Sign-in: Django's own login, plus Microsoft Entra ID when ENTRA_* is set.
ENTRA_CLIENT_ID = env_str("ENTRA_CLIENT_ID")
ENTRA_ENABLED = bool(ENTRA_CLIENT_ID)
LOCAL_LOGIN_ENABLED = env_bool("LOCAL_LOGIN", default=not ENTRA_ENABLED)
if ENTRA_ENABLED and LOCAL_LOGIN_ENABLED and env_bool("BEHIND_TLS_PROXY") and not env_bool("LOCAL_LOGIN_BREAK_GLASS"):
    # Passwords next to Entra in production are a back door; an emergency must say so twice.
    raise ImproperlyConfigured(
        "LOCAL_LOGIN is on next to Entra ID in production. Turn it off, or set LOCAL_LOGIN_BREAK_GLASS=1 "
        "for an emergency (and turn both off afterwards)."
    )
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"] if LOCAL_LOGIN_ENABLED else []
if ENTRA_ENABLED:
    AUTHENTICATION_BACKENDS.insert(0, "social_core.backends.azuread_tenant.AzureADV2TenantOAuth2")
    SOCIAL_AUTH_AZUREAD_V2_TENANT_OAUTH2_KEY = ENTRA_CLIENT_ID
    SOCIAL_AUTH_AZUREAD_V2_TENANT_OAUTH2_SECRET = env_secret("ENTRA_CLIENT_SECRET")
    SOCIAL_AUTH_AZUREAD_V2_TENANT_OAUTH2_TENANT_ID = env_str("ENTRA_TENANT_ID")  # a GUID: only this tenant
    # The immutable object id names the account, never preferred_username or email.
    SOCIAL_AUTH_AZUREAD_V2_TENANT_OAUTH2_ID_KEY = "oid"
SOCIAL_AUTH_PIPELINE = (
    "social_core.pipeline.social_auth.social_details",
    "social_core.pipeline.social_auth.social_names",
    "social_core.pipeline.social_auth.social_uid",
    "social_core.pipeline.social_auth.auth_allowed",
    "generation.auth.require_entra_access",
    "social_core.pipeline.social_auth.social_user",
    "social_core.pipeline.user.get_username",
    "social_core.pipeline.user.create_user",
    "social_core.pipeline.social_auth.associate_user",
    "social_core.pipeline.social_auth.load_extra_data",
    "social_core.pipeline.user.user_details",
    "generation.auth.apply_entra_groups",
)
# Entra app roles / group object ids: required of everyone, making staff, allowing the models
# whose license does not allow production use (when set, only that group sees them).
ENTRA_REQUIRED_ROLE = env_str("ENTRA_REQUIRED_ROLE")
ENTRA_REQUIRED_GROUP = env_str("ENTRA_REQUIRED_GROUP")
ENTRA_STAFF_ROLE = env_str("ENTRA_STAFF_ROLE")
ENTRA_STAFF_GROUP = env_str("ENTRA_STAFF_GROUP")
ENTRA_REFERENCE_GROUP = env_str("ENTRA_REFERENCE_GROUP")
# The group whose members review submissions for the Brand Library (besides staff).
ENTRA_REVIEWER_GROUP = env_str("ENTRA_REVIEWER_GROUP")
SOCIAL_AUTH_URL_NAMESPACE = "social"
SOCIAL_AUTH_LOGIN_ERROR_URL = "/accounts/login/"
SOCIAL_AUTH_REDIRECT_IS_HTTPS = env_bool("SECURE_COOKIES", default=not DEBUG)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "studio"
LOGOUT_REDIRECT_URL = "login"

# --- Security. Secure cookies by default; the embedded launcher turns them off
# explicitly because it serves plain HTTP on 127.0.0.1.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
if env_bool("BEHIND_TLS_PROXY"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    # Set these to 0 if other subdomains of the studio's domain still serve plain HTTP.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=True)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Files. Images are written by workers through STORAGES and streamed back in chunks.
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
STORAGES = {
    "default": {
        # Django's FileSystemStorage, but a file appears whole or not at all (a full disk leaves nothing).
        "BACKEND": "generation.storage.AtomicFileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT},
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
if env_str("AZURE_ACCOUNT_NAME") or env_str("AZURE_CONNECTION_STRING"):
    # https://django-storages.readthedocs.io/en/latest/backends/azure.html
    _azure_blob: dict[str, object] = {
        "account_name": env_str("AZURE_ACCOUNT_NAME") or None,
        "account_key": env_secret("AZURE_ACCOUNT_KEY") or None,
        "connection_string": env_secret("AZURE_CONNECTION_STRING") or None,
        "azure_container": env_str("AZURE_CONTAINER", "brandstudio"),
        "expiration_secs": env_int("AZURE_URL_EXPIRATION_SECS", 300),
        "overwrite_files": False,
    }
    if not (_azure_blob["account_key"] or _azure_blob["connection_string"]):
        # No key (production on Azure): the managed identity, with Storage Blob Data Contributor on the
        # account; signed download URLs are then user delegation SAS (deploy/azure/README.md).
        _azure_blob["token_credential"] = azure.credential()
    STORAGES["default"] = {"BACKEND": "storages.backends.azure_storage.AzureStorage", "OPTIONS": _azure_blob}
# /health/ fails (503) when local media has less free space than this: time to clean up before
# uploads answer 507 and jobs fail. Not checked on Azure Blob.
STUDIO_MIN_FREE_DISK_MB = env_int("STUDIO_MIN_FREE_DISK_MB", 500)
# Downloads redirect to a short-lived signed URL of the private container; images shown on
# pages are still streamed through the studio (the page's CSP allows images from itself only).
STUDIO_SIGNED_DOWNLOADS = env_bool(
    "STUDIO_SIGNED_DOWNLOADS", default=bool(env_str("AZURE_ACCOUNT_NAME") or env_str("AZURE_CONNECTION_STRING"))
)
# Content credentials (docs/content-credentials.md): the PEM certificate chain (signing
# certificate first, then its CAs) and its private key that sign every download's C2PA manifest;
# empty: no manifest (downloads still carry the XMP source type and the watermark). Downloads
# then pass through the studio even where STUDIO_SIGNED_DOWNLOADS would redirect them to blobs.
# `manage.py make_signing_chain` writes a development chain. TRUST: the CA certificates a
# manifest must chain to for Verify to call it ours (default: the chain's last certificate).
STUDIO_C2PA_CERT_FILE = env_str("STUDIO_C2PA_CERT_FILE")
STUDIO_C2PA_KEY_FILE = env_str("STUDIO_C2PA_KEY_FILE")
STUDIO_C2PA_TRUST_FILE = env_str("STUDIO_C2PA_TRUST_FILE")

# --- Celery. The queue is Celery's; status lives in the database, so results are ignored.
STUDIO_JOB_TIME_LIMIT = env_int("STUDIO_JOB_TIME_LIMIT", 3600)
# A LoRA run takes hours on a GPU. Over Redis, a run outliving the visibility timeout is
# delivered again; the run's lease (status + heartbeat) makes that copy a no-op.
STUDIO_TRAINING_TIME_LIMIT = env_int("STUDIO_TRAINING_TIME_LIMIT", 12 * 3600)
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
if CELERY_BROKER_URL.startswith("filesystem"):
    # Embedded default: kombu's filesystem transport needs no server.
    # https://docs.celeryq.dev/projects/kombu/en/stable/reference/kombu.transport.filesystem.html
    _broker_dir = VAR_DIR / "broker"
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # else ./control in the working directory
        "store_processed": False,
        # The transport polls its folder; the default 1 s would delay every job start.
        "polling_interval": 0.1,
    }
else:
    # An unacked task is redelivered after the visibility timeout; keep it above the hard
    # time limit or a long job would run twice.
    # https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html#visibility-timeout
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("STUDIO_BROKER_VISIBILITY_TIMEOUT", STUDIO_JOB_TIME_LIMIT + 600),
        # A worker reads its own queue (the jobs of the models it holds) before the shared ones.
        "queue_order_strategy": "generation.routing.cycle:OwnQueueFirst",
    }
    if restore := env_int("STUDIO_BROKER_RESTORE_SECONDS", 0):  # how often workers sweep for expired messages
        CELERY_BROKER_TRANSPORT_OPTIONS |= {"unacked_restore_interval": restore, "unacked_restore_throttle": 1}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a job whose worker dies is redelivered, not lost
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # one GPU job per process, no hoarding
CELERY_WORKER_CONCURRENCY = 1
CELERY_TASK_TIME_LIMIT = STUDIO_JOB_TIME_LIMIT
CELERY_TASK_SOFT_TIME_LIMIT = STUDIO_JOB_TIME_LIMIT - 30
CELERY_TASK_ROUTES = {
    "generation.tasks.run_generation_job": {"queue": "gpu"},
    # "Retry finishing" goes with the jobs: an Ultra refinish loads the model, any may load an upscaler.
    "generation.tasks.finish_generation_job": {"queue": "gpu"},
    "generation.tasks.estimate_depth_preview": {"queue": "gpu"},  # where torch and the depth model are
    "generation.tasks.reap_stale_jobs": {"queue": "maintenance"},
    "generation.tasks.notify_review_decision": {"queue": "maintenance"},  # email and webhook, off the request
    "generation.tasks.notify_review_submitted": {"queue": "maintenance"},
    "generation.tasks.run_training_task": {"queue": "training"},
    "generation.tasks.write_training_captions": {"queue": "training"},  # beside the runs: a captioner fills a GPU
}
# Jobs and "Retry finishing" go to the own queue of a GPU worker that holds the job's model
# (generation/routing/choice.py); a spare worker loads a model too once this many of its jobs wait per holder.
# Off on the embedded filesystem broker: one worker there, and kombu's filesystem transport fails
# to publish to a queue declared after the sender's first send (seen in scripts/benchmark.py).
STUDIO_ROUTING = env_bool("STUDIO_ROUTING", default=not CELERY_BROKER_URL.startswith("filesystem"))
STUDIO_ROUTING_BACKLOG = env_int("STUDIO_ROUTING_BACKLOG", 4)
# Where GPU workers scale to zero (deploy/azure/): how long one takes to start, which a job waiting
# while none runs shows ("Starting a GPU worker"); 0: workers never scale to zero.
STUDIO_COLD_START_SECONDS = env_int("STUDIO_COLD_START_SECONDS", 0)
# A broker list that holds a marker while a worker trains or captions, for a scaler that stops
# idle workers to watch (generation/training/keepalive.py); empty: off.
STUDIO_KEEPALIVE_LIST = os.environ.get("STUDIO_KEEPALIVE_LIST", "")
CELERY_TASK_DEFAULT_QUEUE = "maintenance"
CELERY_BEAT_SCHEDULE = {
    "reap-stale-jobs": {"task": "generation.tasks.reap_stale_jobs", "schedule": env_int("STUDIO_REAPER_SECONDS", 15)},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Studio.
STUDIO_MODELS_DIR = Path(env_str("STUDIO_MODELS_DIR", str(VAR_DIR / "models")))
# Brand LoRA files (BrandLora rows name them relative to this folder): trained ones are written here.
STUDIO_LORA_ROOT = Path(env_str("STUDIO_LORA_ROOT", str(VAR_DIR / "loras")))
# Upscaler files (generation.Upscaler rows name them relative to this folder).
STUDIO_UPSCALERS_DIR = Path(env_str("STUDIO_UPSCALERS_DIR", str(BASE_DIR / "upscalers")))
# Palette lookup tables (64 MB each, one per palette, built by the worker): see generation/finishing/table.py.
# Empty: none (each worker judges colours as it meets them, the same answers, more slowly).
_palette_tables = env_str("STUDIO_PALETTE_TABLES_DIR", str(VAR_DIR / "palette-tables"))
STUDIO_PALETTE_TABLES_DIR = Path(_palette_tables) if _palette_tables else None
# The largest side a finished image may have (after upscaling): submissions past it are refused.
STUDIO_MAX_OUTPUT_SIDE = env_int("STUDIO_MAX_OUTPUT_SIDE", 4096)
# Models are registry rows (generation.ImageModel, edited in the admin); relative local
# folders are under STUDIO_MODELS_DIR, where `build_default_model` writes the offline demo.
STUDIO_DEFAULT_MODEL = env_str("STUDIO_DEFAULT_MODEL", "demo-brand")
# The demo brand model ships in the repository; `build_default_model` installs it from here.
STUDIO_DEMO_MODEL_DIR = Path(env_str("STUDIO_DEMO_MODEL_DIR", str(BASE_DIR / "demo" / "brand-model")))
STUDIO_DEMO_CONTROLNET_DIR = Path(
    env_str("STUDIO_DEMO_CONTROLNET_DIR", str(BASE_DIR / "demo" / "brand-controlnet-canny"))
)
# Memory the loaded models of one worker process may take (GPU memory on a GPU worker).
STUDIO_MEMORY_BUDGET_GB = float(env_str("STUDIO_MEMORY_BUDGET_GB", "20"))
STUDIO_DEVICE = env_str("STUDIO_DEVICE", "auto")  # auto, cpu, cuda, cuda:1 ...
# The cards the GPU workers have (t4, a10g, l4, a100-40, h100, or a size in GB): the admin shows a
# model's memory plan for each, and refuses a memory override that fits none of them.
STUDIO_WORKER_CARDS = env_str("STUDIO_WORKER_CARDS", "t4,a10g")
# Where torch.compile keeps what it compiled for a model's speed profile: share it between
# workers (a volume) and a second worker's first job skips most of the compile.
STUDIO_COMPILE_CACHE_DIR = Path(env_str("STUDIO_COMPILE_CACHE_DIR", str(VAR_DIR / "compile-cache")))
STUDIO_MAX_BATCH = env_int("STUDIO_MAX_BATCH", 8)  # images per pipeline call; halves itself on OOM
STUDIO_HEARTBEAT_SECONDS = env_int("STUDIO_HEARTBEAT_SECONDS", 5)
# Live previews of a running job's images, at most this often (pages look once a second); 0: none.
STUDIO_PREVIEW_SECONDS = float(env_str("STUDIO_PREVIEW_SECONDS", "1"))
STUDIO_STALE_AFTER_SECONDS = env_int("STUDIO_STALE_AFTER_SECONDS", 30)
# A job sent to the queue this long ago and still not claimed is sent again (its message may have
# been lost with a Redis restart); a copy of one that was not lost does nothing (job_claim).
STUDIO_RESEND_AFTER_SECONDS = env_int("STUDIO_RESEND_AFTER_SECONDS", 120)
STUDIO_MAX_ATTEMPTS = env_int("STUDIO_MAX_ATTEMPTS", 3)
STUDIO_MAX_VARIATIONS = 8
STUDIO_MAX_BATCH_ITEMS = env_int("STUDIO_MAX_BATCH_ITEMS", 50)  # descriptions in one batch submission
STUDIO_MAX_COMPARE = 6  # columns in one comparison
# Fair use, per user: submissions a minute (a batch or comparison counts once), jobs waiting
# or running, and jobs on the GPU queue at once (the rest wait in the database, in order, and
# go to the queue as the user's earlier jobs end: users take turns on the workers).
STUDIO_SUBMISSIONS_PER_MINUTE = env_int("STUDIO_SUBMISSIONS_PER_MINUTE", 30)
STUDIO_MAX_JOBS_IN_FLIGHT = env_int("STUDIO_MAX_JOBS_IN_FLIGHT", 120)
STUDIO_USER_DISPATCH = env_int("STUDIO_USER_DISPATCH", 2)
# The sketch box's depth previews a user may have on the way to the workers at once.
STUDIO_USER_DEPTH_PREVIEWS = env_int("STUDIO_USER_DEPTH_PREVIEWS", 2)
# What monitoring sends (Authorization: Bearer ...) to ask /health/?workers=1; staff may ask signed in.
STUDIO_HEALTH_TOKEN = env_str("STUDIO_HEALTH_TOKEN", "")
# Review decisions (generation/review/notify.py): a Teams or Slack incoming-webhook URL told of each
# one, and the studio's address for the links in those messages and in the designer's email.
STUDIO_REVIEW_WEBHOOK_URL = env_str("STUDIO_REVIEW_WEBHOOK_URL")
STUDIO_PUBLIC_URL = env_str("STUDIO_PUBLIC_URL").rstrip("/")
# Email (review decisions to the designer): SMTP where EMAIL_HOST is set, else written to the log.
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=True)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Brand Studio <studio@localhost>")
# gunicorn workers `./studio up` runs: one per core, each with 8 threads.
STUDIO_WEB_WORKERS = env_int("STUDIO_WEB_WORKERS", os.cpu_count() or 1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "generation.logs.JsonFormatter"},
    },
    "filters": {"job": {"()": "generation.logs.JobFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if env_str("LOG_FORMAT") == "json" else "plain",
            "filters": ["job"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # bitsandbytes warns at import, on every CPU machine, that its optional CPU kernels are missing.
    "loggers": {"bitsandbytes": {"level": "ERROR"}},
}
