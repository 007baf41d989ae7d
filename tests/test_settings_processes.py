"""Settings of the process tier: database connections kept between requests, web workers per core."""

import json
import subprocess
import sys

import pytest
from django.core.management import CommandError

from generation.management.commands.studio import _web_workers
from tests.processes import ROOT, base_env

PRINT = (
    "import json; from django.conf import settings; d = settings.DATABASES['default']; "
    "print(json.dumps([d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS'], settings.STUDIO_WEB_WORKERS]))"
)


def studio_settings(**env: str) -> list:
    """What brandstudio.settings (not the test settings) makes of an environment."""
    env = base_env(DJANGO_SETTINGS_MODULE="brandstudio.settings", SECRET_KEY="settings-test", **env)
    result = subprocess.run([sys.executable, "-c", PRINT], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("url", ["sqlite:///{tmp}/db.sqlite3", "postgres://studio@127.0.0.1:5432/studio"])
def test_database_connections_are_kept_between_requests_and_checked_before_reuse(url, tmp_path) -> None:
    max_age, health_checks, _ = studio_settings(DATABASE_URL=url.format(tmp=tmp_path))
    assert max_age > 0 and health_checks is True


def test_the_web_workers_can_be_set_and_a_nonsense_count_is_refused(tmp_path, settings) -> None:
    assert studio_settings(STUDIO_WEB_WORKERS="3", STUDIO_VAR_DIR=str(tmp_path))[2] == 3
    settings.STUDIO_WEB_WORKERS = 0
    with pytest.raises(CommandError, match="STUDIO_WEB_WORKERS must be 1 or more"):
        _web_workers()
