"""The bhamm-lab planning tasks (protein_folding_plan, ceph_csi_vs_rook_plan) against lazy answers, on the real
repository pinned by each task (the bundle in ../shared/repos): a plan with the right headings but invented paths,
one that cites too little of the repository, one that leaves a section empty or skips a required subject, and a
good plan that also touches the infrastructure each fail the check they should; the reference plan passes."""

from __future__ import annotations

import pytest

from beyond_vibes.checks import run_checks
from beyond_vibes.sandbox import workspace
from beyond_vibes.tasks import load_task
from beyond_vibes.validate import apply_solution
from conftest import REPO

pytestmark = pytest.mark.integration

PLANS = {"protein_folding_plan": "plans/backlog/protein-folding.md",
         "ceph_csi_vs_rook_plan": "plans/backlog/ceph-csi-vs-rook.md"}
HEADINGS = {"protein_folding_plan": ["Context", "Options", "Steps", "Risks"],
            "ceph_csi_vs_rook_plan": ["Current setup", "Options", "Recommendation", "Steps", "Risks"]}
FILLER = "It keeps the homelab simple, uses what is already deployed and is easy to roll back if it goes wrong later."


def generic(name: str, body: dict[str, str] | None = None) -> str:
    """A plan with the task's headings, each with a generic paragraph (or `body[heading]`)."""
    return "# Plan\n" + "".join(f"## {h}\n{(body or {}).get(h, FILLER)}\n\n" for h in HEADINGS[name])


def checks_for(name: str, plan: str | None = None, solution: bool = False, extra: dict[str, str] | None = None):
    """The task's checks after writing `plan` (or running the reference solution) and the `extra` files."""
    task = load_task(name, REPO / "tasks")
    with workspace(task) as ws:
        if solution:
            apply_solution(task, ws)
        if plan is not None:
            (ws.repo / PLANS[name]).write_text(plan)
        for path, text in (extra or {}).items():
            (ws.repo / path).parent.mkdir(parents=True, exist_ok=True)
            (ws.repo / path).write_text(text)
        return {c.name: c for c in run_checks(task.checks, ws)}


INVENTED = {
    "protein_folding_plan": {"Steps": "1. Add kubernetes/apps/alphafold/job.yaml with the AlphaFold image.\n"
                                      "2. Add helm/alphafold/values.yaml and kubernetes/manifests/base/gpu/.\n"
                                      "Deploy with ArgoCD; store databases on Ceph; schedule with Argo Workflows."},
    "ceph_csi_vs_rook_plan": {"Steps": "1. Install Rook with kubernetes/manifests/base/rook/operator.yaml.\n"
                                       "2. Remove ceph-csi from kubernetes/storage/ceph-csi.yaml.\n"
                                       "Keep ansible/roles/ceph/tasks/main.yml for the cluster."},
}


@pytest.mark.parametrize("name, named", [
    ("protein_folding_plan", ("helm/alphafold/values.yaml, kubernetes/apps/alphafold/job.yaml, "
                              "kubernetes/manifests/base/gpu/")),
    ("ceph_csi_vs_rook_plan", ("ansible/roles/ceph/tasks/main.yml, kubernetes/manifests/base/rook/operator.yaml, "
                               "kubernetes/storage/ceph-csi.yaml")),
])
def test_a_generic_plan_with_invented_paths_fails_naming_them(name, named):
    checks = checks_for(name, generic(name, INVENTED[name]))
    plan = checks["plan_sections_and_paths"]
    assert not plan.passed and f"do not exist at the base commit: {named}" in plan.output_tail, plan.output_tail
    assert checks["no_source_changes"].passed


# Plans that looked at the top of the tree only: real paths, but too few and none inside the folders that matter.
SHALLOW = {
    "protein_folding_plan": {"Context": "The repository has kubernetes/, ansible/, nix/ and tofu/; Argo Workflows "
                                        "in kubernetes/manifests/base/argo/ and AMD GPUs for ESMFold. " + FILLER},
    "ceph_csi_vs_rook_plan": {"Current setup": "ceph-csi in kubernetes/manifests/base/ceph/, the cluster from "
                                               "ansible/, clients in nix/; Rook is an alternative. " + FILLER},
}


@pytest.mark.parametrize("name, why", [
    ("protein_folding_plan", ["cites 5 existing repository path(s), needs 8",
                              "cites no existing path under kubernetes/manifests/base/argo/",
                              "cites no existing path under kubernetes/manifests/apps/amd-gpu/"]),
    ("ceph_csi_vs_rook_plan", ["cites 3 existing repository path(s), needs 8",
                               "cites no existing path under kubernetes/manifests/base/ceph/",
                               "cites no existing path under plans/completed/seaweedfs-to-rook-ceph-migration.md"]),
])
def test_a_plan_citing_too_little_of_the_repository_fails(name, why):
    out = checks_for(name, generic(name, SHALLOW[name]))["plan_sections_and_paths"].output_tail
    assert all(w in out for w in why), out


def test_a_ceph_decision_with_an_empty_section_or_without_rook_fails():
    solution_plan = load_task("ceph_csi_vs_rook_plan", REPO / "tasks").solution.commands[0]
    text = solution_plan.split("<<'PLAN'\n", 1)[1].rsplit("PLAN\n", 1)[0]
    head = text.split("## Risks\n", 1)[0]
    out = checks_for("ceph_csi_vs_rook_plan", head + "## Risks\nNone.\n")["plan_sections_and_paths"].output_tail
    assert "section 'risks' has 1 word(s), needs 20" in out, out
    no_rook = text.replace("Rook", "the operator").replace("rook", "operator")
    out = checks_for("ceph_csi_vs_rook_plan", no_rook)["plan_sections_and_paths"].output_tail
    assert "does not mention rook" in out, out


@pytest.mark.parametrize("name, path", [
    ("protein_folding_plan", "kubernetes/manifests/apps/amd-gpu/pytorch-demo-green.yaml"),  # an edited manifest
    ("protein_folding_plan", "kubernetes/manifests/apps/ai/protein-folding/namespace-green.yaml"),  # an added one
    ("ceph_csi_vs_rook_plan", "kubernetes/manifests/base/ceph/csi-rbd-all.yaml"),
    ("ceph_csi_vs_rook_plan", "kubernetes/manifests/base/ceph/rook-operator-all.yaml"),
])
def test_the_reference_plan_passes_but_touching_the_infrastructure_fails(name, path):
    checks = checks_for(name, solution=True)
    assert checks["plan_sections_and_paths"].passed and checks["no_source_changes"].passed
    checks = checks_for(name, solution=True, extra={path: "apiVersion: v1\nkind: Namespace\n"})
    assert checks["plan_sections_and_paths"].passed and not checks["no_source_changes"].passed
