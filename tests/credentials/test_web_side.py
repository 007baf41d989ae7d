"""The web process signs downloads and verifies uploads: neither may load torch (docs/architecture.md)."""

import os
import subprocess
import sys

CODE = """
import io, sys, uuid, django
django.setup()
import brandstudio.urls
from PIL import Image
from generation.credentials import download, verify, watermark, xmp
marked = watermark.embed(Image.new("RGB", (256, 256), "teal"), uuid.uuid4())
watermark.detect(marked)
print(sorted(m for m in ("torch", "imwatermark", "onnxruntime", "cv2", "diffusers") if m in sys.modules))
"""


def test_signing_and_verifying_in_the_web_process_load_no_torch() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "brandstudio.settings_test"}
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr[-2000:]
