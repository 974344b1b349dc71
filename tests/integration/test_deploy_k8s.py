"""deploy/k8s: the base (Deployment, ConfigMap, two Services, PodDisruptionBudget) and the io_uring
overlay, checked by what runs here (no cluster, and CI has no kubectl).

Every manifest parses; kubernetes-validate (pinned, offline schemas) in strict mode accepts every
document of the base and of the overlay as rendered here (a small renderer of our own applies the
kustomizations: resources + JSON 6902 patches; where kubectl exists, its `kubectl kustomize` output
must be the same). Then the pod template is checked against the real binary: the container's
argv (with the image's ENTRYPOINT) and its environment (the image's ENV, the ConfigMap by envFrom,
dummy values for the Secret's keys) pass `ringgate serve --check-config`, every variable set is
really read, and the probes, ports, grace period, memory limit and data volume fit the settings it
resolves. Static checks: skipped in the epoll pass of make test."""
from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import rgtest
from deploytest import check_config, ms, settings, unread_variables
from test_deploy_image import parse_dockerfile

REPO = rgtest.REPO
K8S = REPO / "deploy" / "k8s"
BASE = K8S / "base"
OVERLAY = K8S / "io_uring"
DOCKERFILE = REPO / "deploy" / "Dockerfile"
DEPLOY_README = REPO / "deploy" / "README.md"
SECCOMP_PROFILE = REPO / "deploy" / "seccomp-io_uring.json"
KUBELET_SECCOMP_DIR = "/var/lib/kubelet/seccomp"
K8S_VERSION = "1.37.0"          # a version kubernetes-validate 1.37.0 ships schemas for
LABEL_NAME = "app.kubernetes.io/name"

# The Secret is not shipped (deploy/README: `kubectl create secret generic ringgate ...`);
# these stand in for its keys.
DUMMY_SECRETS = {("ringgate", "publish-token"): "dummy-publish-token",
                 ("ringgate", "redis-password"): "dummy-redis-password"}

pytestmark = pytest.mark.skipif(rgtest.IO_BACKEND == "epoll",
                                reason="static checks of the Kubernetes manifests (no server runs): io_uring pass only")


# ----------------------------------------------------------------------------- rendering

def load_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _pointer(path: str) -> list[str]:
    assert path.startswith("/"), path
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def apply_json6902(doc: dict, ops: list[dict]) -> dict:
    """RFC 6902 add / replace / remove / test, the ops the overlay may use."""
    doc = copy.deepcopy(doc)
    for op in ops:
        *parents, last = _pointer(op["path"])
        node = doc
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        kind = op["op"]
        if isinstance(node, list):
            index = len(node) if last == "-" else int(last)
            if kind == "add":
                node.insert(index, copy.deepcopy(op["value"]))
            elif kind == "replace":
                node[index] = copy.deepcopy(op["value"])
            elif kind == "remove":
                del node[index]
            elif kind == "test":
                assert node[index] == op["value"], op
            else:
                raise AssertionError(f"JSON 6902 op {kind!r} is not supported by this renderer")
        else:
            if kind in ("replace", "remove", "test"):
                assert last in node, f"{kind} {op['path']}: no such member"
            if kind in ("add", "replace"):
                node[last] = copy.deepcopy(op["value"])
            elif kind == "remove":
                del node[last]
            elif kind == "test":
                assert node[last] == op["value"], op
            else:
                raise AssertionError(f"JSON 6902 op {kind!r} is not supported by this renderer")
    return doc


def _matches(doc: dict, target: dict) -> bool:
    group, _, version = doc["apiVersion"].rpartition("/")
    want = {"group": group, "version": version, "kind": doc["kind"], "name": doc["metadata"]["name"]}
    return all(want[k] == v for k, v in target.items())


def render(directory: Path) -> list[dict]:
    """What `kubectl kustomize DIRECTORY` gives for the features these kustomizations use
    (anything else in a kustomization.yaml fails here, so the renderer cannot silently lag)."""
    k = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert k["apiVersion"] == "kustomize.config.k8s.io/v1beta1" and k["kind"] == "Kustomization", k
    unknown = set(k) - {"apiVersion", "kind", "resources", "patches"}
    assert not unknown, f"{directory}/kustomization.yaml uses {sorted(unknown)}: teach render() about them"
    docs: list[dict] = []
    for res in k.get("resources", []):
        path = (directory / res).resolve()
        docs += render(path) if path.is_dir() else load_docs(path)
    for patch in k.get("patches", []):
        assert set(patch) <= {"path", "target"}, patch
        ops = yaml.safe_load((directory / patch["path"]).read_text())
        assert isinstance(ops, list), f"{patch['path']}: only JSON 6902 patches (a list of ops) are rendered here"
        hits = [i for i, d in enumerate(docs) if _matches(d, patch["target"])]
        assert len(hits) == 1, f"patch {patch['path']} targets {patch['target']}: matches {len(hits)} objects"
        docs[hits[0]] = apply_json6902(docs[hits[0]], ops)
    return docs


def by_kind(docs: list[dict]) -> dict[tuple[str, str], dict]:
    out = {}
    for d in docs:
        key = (d["kind"], d["metadata"]["name"])
        assert key not in out, f"two objects {key}"
        out[key] = d
    return out


def one(docs: list[dict], kind: str) -> dict:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def base() -> list[dict]:
    return render(BASE)


@pytest.fixture(scope="module")
def overlay() -> list[dict]:
    return render(OVERLAY)


@pytest.fixture(scope="module")
def runtime():
    return parse_dockerfile(DOCKERFILE.read_text())[-1]


def pod_spec(docs) -> dict:
    return one(docs, "Deployment")["spec"]["template"]["spec"]


def container(docs) -> dict:
    cs = pod_spec(docs)["containers"]
    assert len(cs) == 1, [c["name"] for c in cs]
    return cs[0]


# ----------------------------------------------------------------------------- quantities, settings

def quantity(text) -> float:
    """A Kubernetes quantity (`1Gi`, `512Mi`, `1G`, `500m`, `2`) as a number."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T|m)?", str(text))
    assert m, f"not a quantity: {text!r}"
    mult = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
            "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "m": 1e-3}[m.group(2)]
    return float(m.group(1)) * mult


def container_argv(c: dict, runtime) -> list[str]:
    """Kubernetes' rule: `command` replaces ENTRYPOINT (and drops CMD), `args` replaces CMD."""
    entry = runtime.one("ENTRYPOINT").exec_form()
    cmd = runtime.one("CMD").exec_form()
    if "command" in c:
        return list(c["command"]) + list(c.get("args", []))
    return entry + list(c["args"] if "args" in c else cmd)


def container_env(docs, runtime) -> dict[str, str]:
    """The image's ENV, then envFrom (ConfigMaps), then env (wins), with dummy Secret values."""
    c = container(docs)
    objects = by_kind(docs)
    env = dict(runtime.env())
    for src in c.get("envFrom", []):
        assert set(src) == {"configMapRef"}, f"envFrom {src}: only ConfigMaps of this kustomization"
        cm = objects[("ConfigMap", src["configMapRef"]["name"])]
        env.update({k: str(v) for k, v in cm["data"].items()})
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = str(e["value"])
            continue
        ref = e["valueFrom"]["secretKeyRef"]
        key = (ref["name"], ref["key"])
        assert key in DUMMY_SECRETS, f"{e['name']} reads Secret key {key}, not one deploy/README documents"
        env[e["name"]] = DUMMY_SECRETS[key]
    return env








@pytest.fixture(scope="module")
def resolved(base, runtime, tmp_path_factory) -> dict[str, str]:
    r = check_config(container_argv(container(base), runtime), container_env(base, runtime),
                     tmp_path_factory.mktemp("cc"))
    return settings(r)


def deploy_readme_section(heading: str) -> str:
    """The text of deploy/README.md's `## <heading>` section, up to the next `## `."""
    text = DEPLOY_README.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 4)
    return text[start:end if end >= 0 else len(text)]


# ----------------------------------------------------------------------------- parsing and schemas

def test_every_manifest_parses_and_the_kustomizations_list_them():
    files = sorted(K8S.rglob("*.yaml")) + sorted(K8S.rglob("*.yml"))
    assert files, "no manifests under deploy/k8s"
    for f in files:
        docs = load_docs(f)
        assert docs, f"{f} holds no document"
    base_k = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    listed = {(BASE / r).resolve() for r in base_k["resources"]}
    present = {f.resolve() for f in BASE.glob("*.y*ml") if f.name != "kustomization.yaml"}
    assert listed == present, f"base kustomization.yaml resources {sorted(map(str, listed))} != files {sorted(map(str, present))}"
    over_k = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
    assert over_k["resources"] == ["../base"], over_k
    used = {(OVERLAY / p["path"]).resolve() for p in over_k["patches"]}
    assert used == {f.resolve() for f in OVERLAY.glob("*.y*ml") if f.name != "kustomization.yaml"}
    assert not (K8S / "README.md").exists(), "document Kubernetes in deploy/README.md, not deploy/k8s/README.md"


def test_the_base_holds_the_objects_and_no_secret(base):
    kinds = sorted(d["kind"] for d in base)
    assert kinds == ["ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "Service"], kinds
    for d in base:
        labels = d["metadata"].get("labels", {})
        assert labels.get(LABEL_NAME) == "ringgate", f"{d['kind']}/{d['metadata']['name']}: labels {labels}"


def _validate(doc: dict):
    from kubernetes_validate import utils
    assert K8S_VERSION.rsplit(".", 1)[0] in [utils.major_minor(v) for v in utils.all_versions()]
    return utils.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("layer", ["base", "io_uring"])
def test_kubernetes_validate_strict_accepts_every_document(layer, base, overlay):
    from kubernetes_validate.utils import ValidationError
    docs = base if layer == "base" else overlay
    errors = []
    for d in docs:
        try:
            _validate(d)
        except ValidationError as e:
            errors.append(f"{d['kind']}/{d['metadata']['name']}: {'.'.join(map(str, e.path))}: {e.message}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("mistake", ["misspelt-field", "wrong-type", "bad-enum-in-patch"])
def test_the_schema_check_catches_a_broken_manifest(mistake, base, overlay):
    """The check above can fail: one mistake in a copy of the Deployment is refused."""
    from kubernetes_validate.utils import ValidationError
    d = copy.deepcopy(one(overlay if mistake == "bad-enum-in-patch" else base, "Deployment"))
    if mistake == "misspelt-field":
        d["spec"]["template"]["spec"]["terminationGracePeriodSecond"] = 20
    elif mistake == "wrong-type":
        d["spec"]["replicas"] = "two"
    else:
        d["spec"]["template"]["spec"]["securityContext"]["seccompProfile"]["localhostprofile"] = "x.json"
    with pytest.raises(ValidationError):
        _validate(d)


@pytest.mark.parametrize("directory", [BASE, OVERLAY], ids=["base", "io_uring"])
def test_the_renderer_agrees_with_kubectl_kustomize(directory):
    """Optional: CI has no kubectl. Where it exists, its rendering is the one checked above."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (optional cross-check of the renderer)")
    r = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    theirs = by_kind([d for d in yaml.safe_load_all(r.stdout) if d])
    ours = by_kind(render(directory))
    assert theirs == ours


# ----------------------------------------------------------------------------- the io_uring overlay

def _differences(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                yield f"{path}/{k}"
            else:
                yield from _differences(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            yield from _differences(x, y, f"{path}/{i}")
    elif a != b:
        yield path


def test_the_overlay_changes_only_the_seccomp_profile(base, overlay):
    b, o = by_kind(base), by_kind(overlay)
    assert b.keys() == o.keys()
    diffs = {key: list(_differences(b[key], o[key])) for key in b}
    changed = {key: d for key, d in diffs.items() if d}
    assert list(changed) == [("Deployment", "ringgate")], changed
    profile_path = "/spec/template/spec/securityContext/seccompProfile"
    assert all(p.startswith(profile_path) for p in changed[("Deployment", "ringgate")]), changed
    assert pod_spec(base)["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    profile = pod_spec(overlay)["securityContext"]["seccompProfile"]
    assert profile["type"] == "Localhost", profile
    # no container-level profile that would override the pod's
    assert "seccompProfile" not in container(overlay).get("securityContext", {})


def test_the_localhost_profile_is_the_file_deploy_readme_says_to_copy(overlay):
    name = pod_spec(overlay)["securityContext"]["seccompProfile"]["localhostProfile"]
    assert name == "profiles/ringgate-io_uring.json", name
    section = deploy_readme_section("Kubernetes")
    target = f"{KUBELET_SECCOMP_DIR}/{name}"
    copy_lines = [l for l in section.splitlines()
                  if "deploy/seccomp-io_uring.json" in l and target in l and re.search(r"\b(install|cp)\b", l)]
    assert copy_lines, f"deploy/README's kubernetes section has no line copying deploy/seccomp-io_uring.json to {target}"
    assert "io_uring_setup" in SECCOMP_PROFILE.read_text()


# ----------------------------------------------------------------------------- the pod against the binary

def test_the_container_settings_pass_check_config(base, runtime, resolved):
    c = container(base)
    assert container_argv(c, runtime)[:2] == ["ringgate", "serve"]
    cm = one(base, "ConfigMap")["data"]
    assert resolved["--listen"] == cm["RINGGATE_LISTEN"] == "0.0.0.0:8080"
    assert resolved["--publish-listen"] == cm["RINGGATE_PUBLISH_LISTEN"] == "0.0.0.0:8081"
    assert resolved["--data-dir"] == "/var/lib/ringgate"
    assert resolved.get("publish-token") == "set", "the publish listener binds the pod's interface: it needs the token"
    up = resolved["--upstream"]
    assert up.startswith("redis://") and re.search(r"[?&]key=\w", up), up
    # secrets only by reference, none in the manifests
    assert all("value" not in e for e in c.get("env", [])
               if e["name"] in ("RINGGATE_PUBLISH_TOKEN", "RINGGATE_UPSTREAM_PASSWORD"))
    for v in cm:
        assert v.startswith("RINGGATE_") and v not in ("RINGGATE_PUBLISH_TOKEN", "RINGGATE_UPSTREAM_PASSWORD"), v


def test_every_variable_the_pod_sets_is_read(base, runtime, tmp_path):
    """serve ignores an unknown RINGGATE_* name, so each one must make a difference: without it the
    printed settings change (or the exit code does). A value that equals the binary's default on
    this machine (RINGGATE_LISTEN; RINGGATE_WORKERS on 2 cores) is shown to be read by a bogus value
    instead, which serve must refuse or print differently."""
    argv = container_argv(container(base), runtime)
    env = container_env(base, runtime)
    cm = one(base, "ConfigMap")["data"]
    names = list(cm) + [e["name"] for e in container(base).get("env", [])]
    unread = unread_variables(argv, env, names, tmp_path)
    assert not unread, f"ringgate serve does not read {unread} (misspelt?)"


def test_the_probes_ask_the_subscriber_listener(base, resolved):
    c = container(base)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    listen_port = int(resolved["--listen"].rsplit(":", 1)[1])
    publish_port = int(resolved["--publish-listen"].rsplit(":", 1)[1])
    assert sorted(ports.values()) == sorted([listen_port, publish_port]), ports

    def port_of(probe):
        p = probe["httpGet"]["port"]
        return ports[p] if isinstance(p, str) else p

    ready, live = c["readinessProbe"], c["livenessProbe"]
    assert ready["httpGet"]["path"] == "/readyz" and port_of(ready) == listen_port, ready
    assert live["httpGet"]["path"] == "/healthz" and port_of(live) == listen_port, live
    assert ready["periodSeconds"] <= 2 and ready["failureThreshold"] == 1, ready
    assert live["periodSeconds"] >= 10 and live["failureThreshold"] >= 3, live
    if "startupProbe" in c:
        s = c["startupProbe"]
        assert s["httpGet"]["path"] == "/healthz" and port_of(s) == listen_port, s


def test_the_grace_period_covers_the_drain(base, resolved):
    grace = pod_spec(base)["terminationGracePeriodSeconds"]
    need = ms(resolved["--drain-delay"]) + ms(resolved["--drain-spread"]) + 10
    assert grace >= need, f"terminationGracePeriodSeconds {grace} < drain-delay + drain-spread + 10 s = {need}"


def test_the_security_context(base, runtime):
    pod = pod_spec(base)["securityContext"]
    ctr = container(base)["securityContext"]
    uid, _, gid = runtime.one("USER").args.partition(":")
    merged = {**pod, **ctr}      # a container's value wins over the pod's
    assert merged["runAsNonRoot"] is True
    assert merged["runAsUser"] == int(uid) == 10001 and merged["runAsGroup"] == int(gid) == 10001, merged
    assert ctr["readOnlyRootFilesystem"] is True
    assert ctr["allowPrivilegeEscalation"] is False
    assert ctr["capabilities"] == {"drop": ["ALL"]}
    assert merged["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not ctr.get("privileged", False)


def test_the_data_dir_is_an_emptydir_large_enough(base, resolved):
    spec = pod_spec(base)
    mounts = {m["mountPath"]: m["name"] for m in container(base)["volumeMounts"]}
    name = mounts.get(resolved["--data-dir"])
    assert name, f"nothing mounted at the data dir {resolved['--data-dir']}: {mounts}"
    vol = [v for v in spec["volumes"] if v["name"] == name][0]
    assert "emptyDir" in vol, vol
    capacity = int(resolved["--log-capacity"])
    if "sizeLimit" in vol["emptyDir"]:
        assert quantity(vol["emptyDir"]["sizeLimit"]) > capacity, vol


def test_the_memory_limit_holds_the_log(base, resolved):
    res = container(base)["resources"]
    capacity = int(resolved["--log-capacity"])
    limit = quantity(res["limits"]["memory"])
    assert capacity == quantity(one(base, "ConfigMap")["data"]["RINGGATE_LOG_CAPACITY"].replace("iB", "i"))
    # deployment.yaml's comment: the resident log + 512 MiB for processes, buffers, rings
    assert limit >= capacity + 512 * 2**20, f"memory limit {limit} < log capacity {capacity} + 512 MiB"
    assert quantity(res["requests"]["memory"]) <= limit
    assert quantity(res["requests"]["cpu"]) <= quantity(res["limits"]["cpu"])
    assert int(resolved["--workers"]) <= quantity(res["limits"]["cpu"]), "more workers than CPUs of the limit"


def test_rollout_and_disruption_budget(base):
    dep = one(base, "Deployment")
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["strategy"] == {"type": "RollingUpdate",
                                       "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    assert one(base, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


def test_selectors_match_the_pods_and_target_ports_are_container_ports(base, resolved):
    dep = one(base, "Deployment")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"] == {"matchLabels": dep["spec"]["selector"]["matchLabels"]}
    selectors = {"Deployment": dep["spec"]["selector"]["matchLabels"],
                 "PodDisruptionBudget": one(base, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"]}
    for c in pod_spec(base).get("topologySpreadConstraints", []):
        selectors["topologySpreadConstraints"] = c["labelSelector"]["matchLabels"]
    services = [d for d in base if d["kind"] == "Service"]
    for s in services:
        selectors[f"Service/{s['metadata']['name']}"] = s["spec"]["selector"]
    for who, sel in selectors.items():
        assert sel and all(labels.get(k) == v for k, v in sel.items()), f"{who} selector {sel} misses the pods {labels}"
    ports = {p["name"]: p["containerPort"] for p in container(base)["ports"]}
    listen_port = int(resolved["--listen"].rsplit(":", 1)[1])
    publish_port = int(resolved["--publish-listen"].rsplit(":", 1)[1])
    targets = {}
    for s in services:
        assert s["spec"].get("type", "ClusterIP") in ("ClusterIP", "LoadBalancer", "NodePort"), s["spec"]
        for p in s["spec"]["ports"]:
            t = p.get("targetPort", p["port"])
            t = ports.get(t) if isinstance(t, str) else t
            assert t in ports.values(), f"Service/{s['metadata']['name']} targetPort {p} is no container port {ports}"
            targets[s["metadata"]["name"]] = (t, s["spec"].get("type", "ClusterIP"))
    assert sorted(t for t, _ in targets.values()) == sorted([listen_port, publish_port]), targets
    publish = [name for name, (t, _) in targets.items() if t == publish_port]
    assert len(publish) == 1 and targets[publish[0]][1] == "ClusterIP", "publishing: a ClusterIP Service only"
