"""Integration tests run the real tools: they need the Docker engine and the stand-in
images that scripts/harness/images.sh starts and builds (scripts/test.sh does both)."""

import os
import subprocess

import pytest

NGINX_IMAGE = os.environ.get("PLANO_TEST_NGINX_IMAGE", "plano-test/nginx:sid")


@pytest.fixture(scope="session")
def engine() -> str:
    """The stand-in nginx image, after proving the engine answers and holds it.

    No skip: on a machine without the engine these tests fail, saying how to start it.
    """
    info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    assert info.returncode == 0, "no Docker engine answers: run scripts/harness/images.sh (scripts/test.sh does)"
    image = subprocess.run(["docker", "image", "inspect", NGINX_IMAGE], capture_output=True, text=True)
    assert image.returncode == 0, f"{NGINX_IMAGE} is missing: run scripts/harness/images.sh"
    return NGINX_IMAGE


@pytest.fixture(scope="session", autouse=True)
def dev_ca_dir(tmp_path_factory):
    """The dev CA that `plano dev up` makes goes to a folder of this session, not ~/.local/share."""
    folder = tmp_path_factory.mktemp("dev-ca")
    os.environ["PLANO_DEV_CA_DIR"] = str(folder)
    return folder
