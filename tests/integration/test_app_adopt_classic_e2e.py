"""`plano app adopt` of a yarn 1 workspace made by the generators
(tests/integration/corpus.py): see tests/integration/workspace_adoption.py."""

import pytest

from tests.integration import workspace_adoption as wa

pytestmark = pytest.mark.expected_seconds(540)  # on a 2-core machine


@pytest.fixture(scope="module")
def adopted(tmp_path_factory, engine):
    yield from wa.adopted_workspace("classic", tmp_path_factory.mktemp("adopt-classic"))


def test_adopt_builds_the_services_from_the_workspace_root(adopted):
    wa.check_adoption(adopted, "classic")


def test_prod_serves_and_deploys_v2_without_losing_a_request(adopted):
    wa.serve_and_deploy(adopted)


def test_dev_reloads_edits_in_the_mounted_workspace(adopted):
    wa.dev_hot_reload(adopted)
