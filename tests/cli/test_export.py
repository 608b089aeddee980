"""`plano export kubernetes` as a user runs it, and `plano render` keeping k8s/ after it."""

import os

from plano.cli import main

INIT = ["init", "infra", "--registry", "registry.example.com/acme", "--email", "ops@example.com"]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_export_then_render_keeps_k8s_up_to_date_and_drift_checked(workspace, capsys):
    assert run(capsys, *INIT)[0] == 0
    os.chdir(workspace / "infra")
    assert run(capsys, "app", "add", "app1", "--domain", "app1.example.com")[0] == 0
    assert not (workspace / "infra/k8s").exists()  # render writes no k8s/ before an export
    code, out, _ = run(capsys, "export", "kubernetes")
    assert code == 0 and "wrote base/apps/app1.yaml" in out and "wrote overlays/prod/kustomization.yaml" in out
    assert run(capsys, "render", "--check") == (0, "  everything up to date\n", "")
    code, out, _ = run(capsys, "app", "add", "app2", "--domain", "app2.example.com")
    assert code == 0 and "wrote k8s/base/apps/app2.yaml" in out
    edited = workspace / "infra/k8s/base/apps/app2.yaml"
    edited.write_text(edited.read_text().replace("replicas: 2", "replicas: 5"))
    code, out, err = run(capsys, "render", "--check")
    assert code != 0 and "out of date: k8s/base/apps/app2.yaml (edited by hand)" in out
    code, _, err = run(capsys, "app", "remove", "app2")
    assert code != 0 and "k8s/base/apps/app2.yaml: edited by hand" in err
    assert run(capsys, "render", "--force")[0] == 0
    code, out, _ = run(capsys, "app", "remove", "app2")
    assert code == 0 and "removed k8s/base/apps/app2.yaml" in out


def test_export_elsewhere_is_written_once_and_render_leaves_it(workspace, capsys):
    assert run(capsys, *INIT)[0] == 0
    os.chdir(workspace / "infra")
    assert run(capsys, "export", "kubernetes", "--out", "../cluster")[0] == 0
    assert (workspace / "cluster/overlays/prod/kustomization.yaml").is_file()
    assert not (workspace / "infra/k8s").exists()
    assert run(capsys, "app", "add", "app1", "--domain", "app1.example.com")[0] == 0
    assert not (workspace / "cluster/base/apps/app1.yaml").exists()
