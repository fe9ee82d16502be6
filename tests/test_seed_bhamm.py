"""The seed's two feature tasks on bhamm-lab (tasks/lidarr_readarr.yaml, tasks/nvim_nvf.yaml) and their check tools
(checktools/manifest_check.py, checktools/nix_check.py): the reference answer passes, and each lazy answer (a copied
radarr folder, a manifest that does not parse, apps not wired in, a Nix syntax error, a module nobody imports, a
setting outside its mkIf) fails the check that names it. Soundness on the pinned commit: tests/test_seed_tasks.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from beyond_vibes.checks import run_checks
from beyond_vibes.checktools import manifest_check
from beyond_vibes.sandbox import workspace
from beyond_vibes.tasks import load_task
from beyond_vibes.validate import apply_solution
from conftest import REPO

SERVARR = "kubernetes/manifests/apps/media/servarr"
MODULE = "nix/modules/gui/neovim-kubernetes.nix"
NIX_CHECK = REPO / "src" / "beyond_vibes" / "checktools" / "nix_check.py"
BUNDLE = REPO.parent / "shared" / "repos" / "blake-hamm" / "bhamm-lab.bundle"
PINNED = load_task("lidarr_readarr", REPO / "tasks").repository.ref


def checks_after(name: str, change) -> dict:
    """The task's checks (by name) in a workspace at its pinned commit after `change(repo)`."""
    task = load_task(name, REPO / "tasks")
    with workspace(task) as ws:
        change(task, ws)
        return {c.name: c for c in run_checks(task.checks, ws)}


def solved_then(edit):
    """A change: the reference solution, then `edit(ws)` on top of it."""
    def change(task, ws):
        apply_solution(task, ws)
        edit(ws)
    return change


def restore(ws, path: str) -> None:
    """A file back as it is at the pinned commit (read through the harness's own git, not the workspace's)."""
    (ws.repo / path).write_text(ws.git.run("show", f"{ws.commit}:{path}"))


# --- lidarr_readarr -------------------------------------------------------------------------------------------------

def copy_radarr(task, ws):
    """The lazy answer: radarr's folder copied under the new names, wired into the folder's kustomization."""
    root = ws.repo / SERVARR
    for app in ("lidarr", "readarr"):
        shutil.copytree(root / "radarr", root / app)
    kustomization = root / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace(
        "  - ./sonarr/base\n", "  - ./sonarr/base\n  - ./lidarr/base\n  - ./readarr/base\n"))


@pytest.mark.integration
def test_a_copied_radarr_folder_fails_naming_what_still_says_radarr():
    checks = checks_after("lidarr_readarr", copy_radarr)
    out = checks["manifests_follow_siblings"].output_tail
    assert not checks["manifests_follow_siblings"].passed
    for line in ("lidarr/base/deployment.yaml: names radarr in 16 place(s), e.g. metadata.name",
                 "readarr/base/service.yaml: names radarr in 2 place(s), e.g. metadata.name",
                 "lidarr/base/deployment.yaml: Deployment radarr runs no lidarr image "
                 "(images: lscr.io/linuxserver/radarr:6.2.1)",
                 "lidarr: Service does not carry its own name where radarr and sonarr carry theirs: "
                 "metadata.name is 'radarr'; spec.selector.app is 'radarr'",
                 "common-all.yaml: spec.source.helm.valuesObject.ingressRoutes has no entry for lidarr"):
        assert line in out, out
    assert "kustomization.yaml: resources has no entry" not in out  # the copy was wired in there
    ports = checks["default_ports"]
    assert not ports.passed and "lidarr: container port 8686 is not declared (declared: 7878)" in ports.output_tail
    assert checks["only_servarr_changed"].passed


@pytest.mark.integration
def test_the_copy_is_reported_where_radarr_writes_its_name(tmp_path):
    """The same lazy answer on a clone of the repository, every line (the harness keeps a check's last 2000
    characters)."""
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(BUNDLE), str(tmp_path)], check=True)
    subprocess.run(["git", "checkout", "-q", PINNED], cwd=tmp_path, check=True)
    root = tmp_path / SERVARR
    shutil.copytree(root / "radarr", root / "lidarr")
    out = manifest_check.check(root, ["lidarr"], ["radarr", "sonarr"], {"lidarr": [8686]})
    assert ("lidarr: Deployment does not carry its own name where radarr and sonarr carry theirs: "
            "metadata.labels.app is 'radarr'; metadata.name is 'radarr'; spec.selector.matchLabels.app is 'radarr'; "
            "spec.template.metadata.labels.app is 'radarr'; and 11 more") in out
    assert "lidarr: container port 8686 is not declared (declared: 7878)" in out
    assert out[-2:] == [
        "lidarr/base/deployment.yaml: names radarr in 16 place(s), e.g. metadata.name (a copy of radarr not renamed?)",
        "lidarr/base/service.yaml: names radarr in 2 place(s), e.g. metadata.name (a copy of radarr not renamed?)"]


@pytest.mark.integration
def test_a_manifest_that_does_not_parse_fails():
    def broken(ws):
        (ws.repo / SERVARR / "readarr/base/service.yaml").write_text("kind: Service\n  ports: [\n")
    checks = checks_after("lidarr_readarr", solved_then(broken))
    out = checks["manifests_follow_siblings"].output_tail
    assert not checks["manifests_follow_siblings"].passed
    assert "readarr/base/service.yaml: does not parse as YAML at line 2" in out and "readarr: no Service" in out, out
    assert "lidarr" not in out and checks["default_ports"].passed  # only what is broken is reported


@pytest.mark.integration
def test_apps_that_are_not_wired_in_fail_for_each_list():
    def unwired(ws):
        for name in ("kustomization.yaml", "common-all.yaml"):
            restore(ws, f"{SERVARR}/{name}")
    checks = checks_after("lidarr_readarr", solved_then(unwired))
    out = checks["manifests_follow_siblings"].output_tail
    assert not checks["manifests_follow_siblings"].passed
    for app in ("lidarr", "readarr"):
        assert f"kustomization.yaml: resources has no entry for {app} (it has ./radarr/base, ./sonarr/base)" in out
        assert f"common-all.yaml: spec.source.helm.valuesObject.pvc has no entry for {app}" in out
        assert f"common-all.yaml: spec.source.helm.valuesObject.ingressRoutes has no entry for {app}" in out
    assert checks["default_ports"].passed and checks["only_servarr_changed"].passed


@pytest.mark.integration
def test_a_route_copied_from_radarr_and_a_change_outside_the_folder_fail():
    def sloppy(ws):
        repo = ws.repo
        common = repo / SERVARR / "common-all.yaml"
        common.write_text(common.read_text().replace("Host(`lidarr.bhamm-lab.com`)", "Host(`radarr.bhamm-lab.com`)"))
        (repo / "kubernetes/manifests/core/dashy/lidarr-link.yaml").write_text("title: Lidarr\n")
    checks = checks_after("lidarr_readarr", solved_then(sloppy))
    out = checks["manifests_follow_siblings"].output_tail
    assert "ingressRoutes: the entry for lidarr lacks what the references' entries share: routes[].match" in out, out
    assert "ingressRoutes: the entry for lidarr still names radarr" in out
    assert not checks["only_servarr_changed"].passed


# --- manifest_check on a small folder -------------------------------------------------------------------------------

def app_files(name: str, port: int, image: str | None = None, target: int | None = None) -> dict[str, str]:
    image = image or f"example.org/{name}:{port}"  # tags differ: the image is checked by name, not by template
    return {
        f"{name}/base/kustomization.yaml": "kind: Kustomization\nresources: [deployment.yaml, service.yaml]\n",
        f"{name}/base/deployment.yaml": f"""kind: Deployment
apiVersion: apps/v1
metadata: {{name: {name}, namespace: media, labels: {{app: {name}}}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
        - {{name: {name}, image: "{image}", ports: [{{containerPort: {port}}}]}}
""",
        f"{name}/base/service.yaml": f"""kind: Service
apiVersion: v1
metadata: {{name: {name}, namespace: media}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: ui, port: {port}, targetPort: {target or port}}}]
""",
    }


def routes(*apps: str, auth: bool = True) -> str:
    entries = "".join(f"  - {{name: {a}, host: {a}.example.org, middlewares: [headers{', auth' if auth else ''}]}}\n"
                      for a in apps)
    return "kind: Kustomization\nresources: [" + ", ".join(f"./{a}/base" for a in apps) + "]\nroutes:\n" + entries


def folder(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def problems(root: Path, ports: dict | None = None) -> list[str]:
    return manifest_check.check(root, ["gamma"], ["alpha", "beta"], ports or {})


def test_an_app_that_follows_its_siblings_passes(tmp_path):
    root = folder(tmp_path, {**app_files("alpha", 1000), **app_files("beta", 2000), **app_files("gamma", 3000),
                             "kustomization.yaml": routes("alpha", "beta", "gamma")})
    assert problems(root, {"gamma": [3000]}) == []
    assert problems(root, {"gamma": [3001]}) == ["gamma: container port 3001 is not declared (declared: 3000)"]


def test_a_service_on_an_undeclared_port_an_unlisted_file_and_a_wrong_namespace_fail(tmp_path):
    gamma = app_files("gamma", 3000, target=3100)
    deployment = "gamma/base/deployment.yaml"
    gamma[deployment] = gamma[deployment].replace("namespace: media", "namespace: default")
    gamma["gamma/base/pvc.yaml"] = "kind: PersistentVolumeClaim\nmetadata: {name: gamma-config, namespace: media}\n"
    gamma["gamma/base/kustomization.yaml"] = "kind: Kustomization\nresources: [deployment.yaml, service.yml]\n"
    root = folder(tmp_path, {**app_files("alpha", 1000), **app_files("beta", 2000), **gamma,
                             "kustomization.yaml": routes("alpha", "beta", "gamma")})
    assert problems(root) == [
        "gamma/base/deployment.yaml: Deployment gamma has namespace 'default', the references use 'media'",
        "gamma/base/service.yaml: Service gamma targets port 3100, which no gamma container declares (declared: 3000)",
        "gamma/base/kustomization.yaml: resources lists service.yml, which does not exist",
        "gamma/base/pvc.yaml: not in the resources of any kustomization of gamma",
        "gamma/base/service.yaml: not in the resources of any kustomization of gamma",
    ]


def test_a_wiring_entry_without_what_the_siblings_share_fails(tmp_path):
    wiring = routes("alpha", "beta") + "  - {name: gamma, host: gamma.example.org, middlewares: [headers]}\n"
    wiring = wiring.replace("./beta/base]", "./beta/base, ./gamma/base]")
    root = folder(tmp_path, {**app_files("alpha", 1000), **app_files("beta", 2000), **app_files("gamma", 3000),
                             "kustomization.yaml": wiring})
    assert problems(root) == ["kustomization.yaml: routes: the entry for gamma lacks what the references' entries "
                              "share: middlewares[] = 'auth'"]


def test_an_app_on_another_apps_image_fails(tmp_path):
    root = folder(tmp_path, {**app_files("alpha", 1000), **app_files("beta", 2000),
                             **app_files("gamma", 3000, image="example.org/delta:2"),
                             "kustomization.yaml": routes("alpha", "beta", "gamma")})
    assert problems(root) == ["gamma/base/deployment.yaml: Deployment gamma runs no gamma image "
                              "(images: example.org/delta:2)"]


# --- nvim_nvf -------------------------------------------------------------------------------------------------------

@pytest.mark.integration
def test_a_nix_syntax_error_fails():
    def broken(ws):
        (ws.repo / MODULE).write_text('{ config, lib, shared, ... }:\n{\n  options.cfg.neovim.kubernetes.enable = '
                                   'lib.mkEnableOption "k8s"\n  config = { };\n}\n')
    checks = checks_after("nvim_nvf", solved_then(broken))
    parse = checks["nix_files_parse"]
    assert not parse.passed and f"{MODULE}: does not parse: error: syntax error" in parse.output_tail, parse.output_tail
    assert not checks["option_and_helm_setting"].passed and checks["module_imported"].passed


@pytest.mark.integration
def test_a_module_nobody_imports_fails_even_if_a_profile_imports_it():
    def elsewhere(ws):
        restore(ws, "nix/modules/gui/default.nix")
        profile = ws.repo / "nix/profiles/desktop.nix"
        profile.write_text(profile.read_text().replace("    ../modules\n",
                                                       "    ../modules\n    ../modules/gui/neovim-kubernetes.nix\n"))
    checks = checks_after("nvim_nvf", solved_then(elsewhere))
    imported = checks["module_imported"]
    assert not imported.passed
    assert f"{MODULE}: not in the imports of nix/modules/gui/default.nix" in imported.output_tail, imported.output_tail
    assert checks["nix_files_parse"].passed and checks["option_and_helm_setting"].passed


@pytest.mark.integration
def test_a_setting_outside_the_mkif_and_an_edit_of_neovim_nix_fail():
    def unguarded(ws):
        repo = ws.repo
        (repo / MODULE).write_text("""{ config, lib, shared, ... }:
{
  options.cfg.neovim.kubernetes.enable = lib.mkEnableOption "Kubernetes support in Neovim";
  config.home-manager.users.${shared.username}.programs.nvf.settings.vim.languages.helm.enable = true;
}
""")
        neovim = repo / "nix/modules/gui/neovim.nix"
        neovim.write_text(neovim.read_text().replace("yaml.enable = true;",
                                                     "yaml.enable = true;\n            helm.enable = true;"))
    checks = checks_after("nvim_nvf", solved_then(unguarded))
    setting = checks["option_and_helm_setting"]
    assert not setting.passed and ("vim.languages.helm.enable = true but not inside a mkIf on "
                                   "config.cfg.neovim.kubernetes.enable (conditions: none)") in setting.output_tail, \
        setting.output_tail
    assert not checks["nothing_else_changed"].passed and checks["module_imported"].passed


# --- nix_check on small files ---------------------------------------------------------------------------------------

def nix_check(cwd: Path, *args: str) -> tuple[int, str]:
    out = subprocess.run([sys.executable, str(NIX_CHECK), *args], cwd=cwd, capture_output=True, text=True)
    return out.returncode, out.stdout


ALIASED = """{ config, lib, shared, ... }:
let
  cfg = config.cfg.neovim.kubernetes;
  inherit (lib) mkIf;
in
{
  options.cfg.neovim.kubernetes = {
    enable = lib.mkOption { type = lib.types.bool; default = false; };
  };
  # nested spellings, mkMerge and mkDefault read the same after nix-instantiate --parse
  config = mkIf (config.cfg.neovim.enable && cfg.enable) (lib.mkMerge [{
    home-manager.users.${shared.username}.programs.nvf = {
      settings.vim = { languages.helm = { enable = lib.mkDefault true; }; };
    };
  }]);
}
"""
SETTING = "config.home-manager.users.*.programs.nvf.settings.vim.languages.helm.enable=true"


@pytest.mark.parametrize("text, expected", [
    (ALIASED, "ok: attrs"),
    (ALIASED.replace("default = false", "default = true"),
     "option cfg.neovim.kubernetes.enable does not default to false"),
    (ALIASED.replace("cfg.enable)", "true)"), "not inside a mkIf on config.cfg.neovim.kubernetes.enable"),
    (ALIASED.replace("mkDefault true", "mkDefault false"), "sets config.home-manager.users.*.programs.nvf.settings."
                                                           "vim.languages.helm.enable to false, not true"),
    (ALIASED.replace("languages.helm", "languages.yaml"), "does not set config.home-manager.users.*."),
])
def test_nix_check_attrs_reads_the_parsed_structure(tmp_path, text, expected):
    (tmp_path / "m.nix").write_text(text)
    code, out = nix_check(tmp_path, "attrs", "m.nix", "--option", "cfg.neovim.kubernetes.enable", "--set", SETTING,
                          "--guard", "cfg.neovim.kubernetes.enable", "--guard", "cfg.neovim.enable")
    assert (code == 0) == (expected == "ok: attrs") and expected in out, out


def test_nix_check_imported_follows_default_nix_up_to_the_root(tmp_path):
    gui = tmp_path / "modules" / "gui"
    gui.mkdir(parents=True)
    (gui / "extra.nix").write_text("{ }\n")
    (gui / "default.nix").write_text("{ imports = [ ./extra.nix ]; }\n")
    (tmp_path / "modules" / "default.nix").write_text("{ imports = [ ]; }\n")
    code, out = nix_check(tmp_path, "imported", "modules/gui/extra.nix", "--root", "modules")
    assert code == 1 and out.strip() == "modules/gui: not in the imports of modules/default.nix", out
    (tmp_path / "modules" / "default.nix").write_text("{ imports = [ ./gui ]; }\n")
    assert nix_check(tmp_path, "imported", "modules/gui/extra.nix", "--root", "modules") == (0, "ok: imported\n")
