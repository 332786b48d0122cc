#!/usr/bin/env bash
# Deployment guard (issue #24): the container, compose and Kubernetes files,
# checked offline in a few seconds.
#   scripts/check-deploy.sh               exits non-zero with one line per problem
#   scripts/check-deploy.sh --root DIR    check the tree at DIR (the self-tests check broken copies)
#
# What it checks (docs/deployment.md, "What CI checks"):
# - every Kubernetes manifest under deploy/kubernetes against the Kubernetes
#   $K8S_VERSION OpenAPI schemas, strict (unknown fields and wrong types fail;
#   an unknown kind fails too), with the kubernetes-validate package;
# - every kustomization.yaml under deploy/kubernetes and every one they
#   include (knowledge-base/kustomization.yaml): each resource, patch and
#   configMapGenerator / secretGenerator file or env file exists and lies
#   inside the folder kustomize allows; no manifest under deploy/kubernetes is
#   left unreferenced;
# - the knowledge-base ConfigMap generator (knowledge-base/kustomization.yaml,
#   included by the base) lists knowledge-base/shop.toml and every
#   knowledge-base/articles/*.md themselves, and nothing else; a missing
#   article fails with the line to add;
# - the rules of issue #24: no replicas under an HPA, pinned image tags,
#   distinct startup/readiness/liveness probes on /readyz and /livez, preStop +
#   drain window + 30 s in-flight <= terminationGracePeriodSeconds, the
#   restricted security context, a PodDisruptionBudget, appProtocol grpc,
#   the database URL and tokens from Secrets, XIAOER_RETENTION_DAYS set once;
# - every XIAOER_* variable the deploy files set is one the source reads;
# - compose.yaml with `docker compose config` (or Debian's docker-compose);
# - the Dockerfile's promises (--locked, no `|| true`, VOLUME, HEALTHCHECK on
#   /readyz, numeric non-root USER) and that .dockerignore lets in every
#   tracked file of the workspace crates and keeps out everything git ignores;
# - when kubectl (or kustomize) is installed: each kustomization rendered and
#   the output validated as well (skipped, and said so, when it is not).
#
# Tools, installed when missing (Debian bookworm + PyPI only): a venv in
# target/tools/check-deploy with the pinned Python packages below (Debian's
# python3-venv first if venv is unavailable), and Debian's docker-compose when
# neither `docker compose` nor `docker-compose` is there.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

K8S_VERSION=1.30.0
PY_PINS="kubernetes-validate==1.34.1 docker==7.1.0 PyYAML==6.0.2"

# Arguments (--root, --help) and apt_install, shared with the other checker.
# shellcheck source-path=SCRIPTDIR source=lib/check-common.sh
. "$here/scripts/lib/check-common.sh"
check_args check-deploy "$@"

# Python tools in a venv (Debian's python refuses `pip install` outside one).
tools=$here/target/tools/check-deploy
py=$tools/venv/bin/python
if [ "$(cat "$tools/pins" 2>/dev/null || true)" != "$PY_PINS" ] || [ ! -x "$py" ]; then
  # Debian ships ensurepip (which venv needs) in python3-venv.
  if ! command -v python3 >/dev/null 2>&1; then
    apt_install python3 python3-venv
  elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    apt_install python3-venv
  fi
  rm -rf "$tools"
  mkdir -p "$tools"
  python3 -m venv "$tools/venv"
  echo "check-deploy: installing $PY_PINS into $tools..." >&2
  # shellcheck disable=SC2086
  "$py" -m pip install --quiet --disable-pip-version-check $PY_PINS >&2
  echo "$PY_PINS" >"$tools/pins"
fi

# A compose implementation for `config`, which is offline (no daemon needed).
if docker compose version >/dev/null 2>&1; then
  compose="docker compose"
elif command -v docker-compose >/dev/null 2>&1; then
  compose="docker-compose"
else
  apt_install docker-compose
  compose="docker-compose"
fi

# Optional: render the kustomizations as `kubectl apply -k` would.
kustomize=""
if command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
  kustomize="kubectl kustomize"
elif command -v kustomize >/dev/null 2>&1; then
  kustomize="kustomize build"
fi

exec "$py" - "$root" "$K8S_VERSION" "$compose" "$kustomize" <<'PY'
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from docker.utils.build import PatternMatcher
from kubernetes_validate import utils as kv

root = Path(sys.argv[1])
k8s_version, compose_cmd, kustomize_cmd = sys.argv[2:5]
errors: list[str] = []
done: list[str] = []  # what was checked, for the summary line


def fail(msg: str) -> None:
    errors.append(msg)


def rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(p)


K8S = root / "deploy/kubernetes"
BASE = K8S / "base"
KB_SRC = root / "knowledge-base"
KB_GENERATOR = "xiaoer-knowledge-base"
# The server's request timeout: calls in flight get at most this after the drain.
IN_FLIGHT_SECONDS = 30
# kubectl's client-side apply keeps the whole object in an annotation limited
# to 256 KiB; stay well under it (or switch to --server-side and raise this).
KB_MAX_JSON_BYTES = 200 * 1024

cargo = tomllib.loads((root / "Cargo.toml").read_text())
members = cargo["workspace"]["members"]
version = cargo["workspace"]["package"]["version"]


def kb_sources() -> list[Path]:
    return [KB_SRC / "shop.toml"] + sorted((KB_SRC / "articles").glob("*.md"))


# --- Helpers -------------------------------------------------------------------
def load_yaml_docs(path: Path) -> list:
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as e:
        fail(f"{rel(path)}: not valid YAML: {e}")
        return []


def parse_env_file(path: Path) -> dict[str, str]:
    """A kustomize `envs` / compose env file: KEY=VALUE lines, # comments."""
    out: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$", s)
        if not m:
            fail(f"{rel(path)}:{n}: not KEY=VALUE: {s[:60]}")
            continue
        if m.group(1) in out:
            fail(f"{rel(path)}:{n}: {m.group(1)} set twice")
        out[m.group(1)] = m.group(2)
    return out


def duration_seconds(text: str) -> float | None:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text or "")
    if not m:
        return None
    n = float(m.group(1))
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def port_of(addr: str) -> int | None:
    m = re.search(r":(\d+)$", addr or "")
    return int(m.group(1)) if m else None


def inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


# --- Kustomizations: every reference exists ------------------------------------
KNAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# Those under deploy/kubernetes and knowledge-base/ (whose generator lists the
# articles; the base includes it), then every one they include from elsewhere.
kustomizations = sorted(p for p in K8S.rglob("*") if p.name in KNAMES)
kustomizations += [KB_SRC / n for n in KNAMES if (KB_SRC / n).exists()]
queued = {p.resolve() for p in kustomizations}
includes: dict[Path, set[Path]] = {}  # a kustomization's folder -> the folders it includes
components: set[Path] = set()  # kind: Component (rendered only inside another)
resource_files: set[Path] = set()
patch_files: set[Path] = set()
generators: dict[Path, list] = {}
env_files: set[Path] = set()
images: dict[str, dict] = {}
nrefs = 0
if not kustomizations:
    fail(f"{rel(K8S)}: no kustomization.yaml found")
i = 0
while i < len(kustomizations):
    kfile = kustomizations[i]
    i += 1
    kdir = kfile.parent
    docs = load_yaml_docs(kfile)
    k = docs[0] if docs else {}
    if not isinstance(k, dict):
        fail(f"{rel(kfile)}: not a mapping")
        continue
    if k.get("kind") == "Component":
        components.add(kdir.resolve())

    def need_file(entry: str, what: str, restricted: bool = True) -> Path | None:
        global nrefs
        nrefs += 1
        p = kdir / entry
        if not p.exists():
            fail(f"{rel(kfile)}: {what} {entry} does not exist ({rel(p)})")
            return None
        if restricted and not inside(p, kdir):
            fail(f"{rel(kfile)}: {what} {entry} is outside {rel(kdir)}; kustomize refuses files outside the kustomization's folder")
            return None
        return p

    for key in ("resources", "bases", "components"):
        for entry in k.get(key) or []:
            if "://" in entry or entry.startswith(("github.com/", "git@")):
                fail(f"{rel(kfile)}: {key} entry {entry} is remote; deploy files must be self-contained")
                continue
            p = need_file(entry, key[:-1], restricted=False)
            if p is None:
                continue
            if p.is_dir():
                kf = next((p / n for n in KNAMES if (p / n).exists()), None)
                if kf is None:
                    fail(f"{rel(kfile)}: {key[:-1]} {entry} is a folder without a kustomization.yaml")
                    continue
                includes.setdefault(kdir.resolve(), set()).add(p.resolve())
                if kf.resolve() not in queued:
                    queued.add(kf.resolve())
                    kustomizations.append(kf)
            elif not inside(p, kdir):
                fail(f"{rel(kfile)}: resource {entry} is outside {rel(kdir)}; kustomize refuses files outside the kustomization's folder")
            else:
                resource_files.add(p.resolve())
    for entry in k.get("patches") or []:
        if isinstance(entry, dict) and "path" in entry:
            p = need_file(entry["path"], "patch")
            if p:
                patch_files.add(p.resolve())
    for entry in k.get("patchesStrategicMerge") or []:
        if isinstance(entry, str) and "\n" not in entry:
            p = need_file(entry, "patchesStrategicMerge file")
            if p:
                patch_files.add(p.resolve())
    for entry in k.get("patchesJson6902") or []:
        if isinstance(entry, dict) and "path" in entry:
            p = need_file(entry["path"], "patchesJson6902 file")
            if p:
                patch_files.add(p.resolve())
    for key in ("configMapGenerator", "secretGenerator"):
        for gen in k.get(key) or []:
            gname = gen.get("name", "?")
            for entry in gen.get("files") or []:
                path = entry.split("=", 1)[1] if "=" in entry else entry
                need_file(path, f"{key} {gname} file")
            envs = list(gen.get("envs") or []) + ([gen["env"]] if gen.get("env") else [])
            for entry in envs:
                p = need_file(entry, f"{key} {gname} env file")
                if p:
                    env_files.add(p.resolve())
                    parse_env_file(p)
            generators.setdefault(kdir.resolve(), []).append((key, gen))
    for img in k.get("images") or []:
        images[img.get("name")] = {**img, "_file": rel(kfile)}
done.append(f"{len(kustomizations)} kustomizations' {nrefs} file references")

# No manifest is silently left out of every kustomization.
yaml_files = sorted(p for p in K8S.rglob("*") if p.suffix in (".yaml", ".yml") and p.name not in KNAMES)
for p in yaml_files:
    if p.resolve() not in resource_files and p.resolve() not in patch_files:
        fail(f"{rel(p)}: referenced by no kustomization.yaml (resources or patches), so never deployed")

# --- Manifests against the Kubernetes schemas ----------------------------------
objects: list[tuple[Path, dict]] = []


def schema_check(doc: dict, where: str) -> bool:
    if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind"):
        fail(f"{where}: a document without apiVersion and kind")
        return False
    name = (doc.get("metadata") or {}).get("name", "?")
    try:
        kv.validate(doc, k8s_version, strict=True)
        return True
    except kv.ValidationError as e:
        path = ".".join(str(x) for x in e.path) or "(top level)"
        fail(f"{where}: {doc['kind']}/{name} is not valid Kubernetes {k8s_version}: {path}: {e.message}")
    except kv.SchemaNotFoundError as e:
        fail(f"{where}: {e.message}")
    return False


nmanifest = 0
for p in yaml_files:
    if p.resolve() in patch_files:
        continue  # partial objects; validated after rendering, when possible
    for doc in load_yaml_docs(p):
        nmanifest += 1
        if schema_check(doc, rel(p)):
            objects.append((p, doc))
nfiles = sum(1 for p in yaml_files if p.resolve() not in patch_files)
done.append(f"{nfiles} manifest files ({nmanifest} objects) valid against Kubernetes {k8s_version[:4]} (strict)")


def find(kind: str) -> list[tuple[Path, dict]]:
    return [(p, d) for p, d in objects if d["kind"] == kind]


# --- Knowledge base in its ConfigMap generator ----------------------------------
# knowledge-base/kustomization.yaml generates the ConfigMap from the articles
# themselves (no copy), and the base includes that folder. Kustomize cannot
# glob, so the generator lists each file: a new article missing from the list
# would silently be missing in Kubernetes.
def reached_from(start: Path) -> set[Path]:
    seen: set[Path] = set()
    todo = [start.resolve()]
    while todo:
        d = todo.pop()
        if d not in seen:
            seen.add(d)
            todo += includes.get(d, ())
    return seen


KB_KFILE = KB_SRC / "kustomization.yaml"
# (An overlay's `behavior: replace` generator serves a shop's own articles
# instead; it is not held to the repository's knowledge-base/.)
kb_gens = [(kdir, gen) for kdir, gens in generators.items() for key, gen in gens
           if key == "configMapGenerator" and gen.get("name") == KB_GENERATOR and gen.get("behavior") != "replace"]
sources = kb_sources()
if not kb_gens:
    fail(f"{rel(KB_KFILE)}: no configMapGenerator named {KB_GENERATOR} reached from {rel(BASE / 'kustomization.yaml')} "
         f"(the base lists ../../../knowledge-base under resources, and that folder's kustomization.yaml generates it)")
for kdir, gen in kb_gens:
    kfile = next(Path(kdir) / n for n in KNAMES if (Path(kdir) / n).exists())
    kf = rel(kfile)
    if Path(kdir) not in reached_from(BASE):
        fail(f"{kf}: generates {KB_GENERATOR}, but {rel(BASE / 'kustomization.yaml')} does not include it, so Kubernetes "
             f"would have no knowledge base: add `- {os.path.relpath(kdir, BASE.resolve())}` under its resources:")
    entries = [str(e) for e in gen.get("files") or []]
    listed: dict[str, tuple[str, Path]] = {}
    for entry in entries:
        key, path = entry.split("=", 1) if "=" in entry else (Path(entry).name, entry)
        if key in listed:
            fail(f"{kf}: {KB_GENERATOR} lists the key {key} twice")
        listed[key] = (entry, Path(kdir) / path)
    # Where a missing entry goes: the generator's own lines, with their indent.
    lines = kfile.read_text().splitlines()
    entry_line = {}
    for n, line in enumerate(lines, 1):
        m = re.match(r"^(\s*)-\s+(\S+)\s*$", line)
        if m and m.group(2) in entries:
            entry_line[m.group(2)] = (n, m.group(1))
    indent = next(iter(entry_line.values()), (0, "      "))[1]
    for src in sources:
        want = os.path.relpath(src.resolve(), Path(kdir))
        if src.name not in listed:
            # After the article that sorts just before it (the list is sorted,
            # shop.toml first), else after shop.toml, else before the first entry.
            shown = [e for e in entries if e in entry_line]
            shop = [e for e in shown if Path(e).name == "shop.toml"]
            before = [e for e in shown if e not in shop and e < want]
            if src.name != "shop.toml" and (before or shop):
                n = entry_line[max(before) if before else shop[0]][0]
                where = f"after line {n} (`{lines[n - 1].strip()}`)"
            elif shown:
                n = entry_line[shown[0]][0]
                where = f"before line {n} (`{lines[n - 1].strip()}`)"
            else:
                where = f"under {KB_GENERATOR}'s files:"
            fail(f"{rel(src)} is missing from the ConfigMap generator {KB_GENERATOR}, so Kubernetes would not serve it: "
                 f"add the line `{indent}- {want}` to {kf} {where}")
        else:
            entry, path = listed[src.name]
            if path.exists() and path.resolve() != src.resolve():
                fail(f"{kf}: {KB_GENERATOR} takes {src.name} from {rel(path)}, a copy: list {rel(src)} itself "
                     f"(`- {want}`), so the deployed article cannot go stale")
    names = {s.name for s in sources}
    for key, (entry, path) in listed.items():
        if key not in names:
            fail(f"{kf}: {KB_GENERATOR} holds {key}, which is not in knowledge-base/ (shop.toml or articles/*.md): "
                 f"remove the line `- {entry}`")
    if not (gen.get("options") or {}).get("disableNameSuffixHash"):
        fail(f"{kf}: {KB_GENERATOR} needs options.disableNameSuffixHash: true, or edits roll the pods instead of hot-reloading")
data = {p.name: p.read_text() for p in sources}
size = len(json.dumps(data, ensure_ascii=False).encode())
if size > KB_MAX_JSON_BYTES:
    fail(f"knowledge base is {size // 1024} KiB as JSON, over {KB_MAX_JSON_BYTES // 1024} KiB: client-side `kubectl apply` "
         f"would exceed the 256 KiB annotation limit; switch the docs to `kubectl apply --server-side -k` and raise KB_MAX_JSON_BYTES")
done.append(f"KB generator = shop.toml + {len(sources) - 1} articles of knowledge-base/, each listed ({size // 1024} KiB)")

# --- Rules of issue #24 on the manifests ----------------------------------------
npolicy = 0


def rule(ok: bool, msg: str) -> None:
    global npolicy
    npolicy += 1
    if not ok:
        fail(msg)


settings: dict[str, str] = {}
for p in sorted(env_files):
    if p.parent == BASE.resolve() or "settings" in p.name:
        settings.update({k: v for k, v in parse_env_file(p).items() if k.startswith("XIAOER_")})

# XIAOER_RETENTION_DAYS exactly once across Kubernetes settings and manifests.
retention_sites = [rel(p) for p in env_files if "XIAOER_RETENTION_DAYS" in parse_env_file(p)]
for p, d in objects:
    for c in ((d.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers", []) if d["kind"] in ("Deployment", "StatefulSet") else []:
        retention_sites += [rel(p) for e in c.get("env") or [] if e.get("name") == "XIAOER_RETENTION_DAYS"]
    if d["kind"] == "ConfigMap" and "XIAOER_RETENTION_DAYS" in (d.get("data") or {}):
        retention_sites.append(rel(p))
rule(len(retention_sites) == 1,
     f"XIAOER_RETENTION_DAYS must be set exactly once in deploy/kubernetes (found in: {', '.join(retention_sites) or 'nowhere'})")

hpa_targets = {d["spec"]["scaleTargetRef"]["name"] for _, d in find("HorizontalPodAutoscaler")
               if d["spec"]["scaleTargetRef"].get("kind") == "Deployment"}


def pod_spec(d: dict) -> dict:
    return ((d.get("spec") or {}).get("template") or {}).get("spec") or {}


def image_pinned(image: str, where: str) -> None:
    name, tag = image, None
    if "@" in image:
        return
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = image.rsplit(":", 1)
    override = images.get(name)
    if override and (override.get("digest") or override.get("newTag")):
        tag = override.get("newTag") or tag
        if override.get("digest"):
            return
    rule(bool(tag) and tag != "latest", f"{where}: image {image} is not pinned to a tag other than latest")


workloads = [(p, d) for p, d in objects if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")]
for p, d in workloads:
    where = f"{rel(p)}: {d['kind']}/{d['metadata']['name']}"
    spec = pod_spec(d)
    psc = spec.get("securityContext") or {}
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        cw = f"{where} container {c['name']}"
        sc = c.get("securityContext") or {}
        rule(sc.get("allowPrivilegeEscalation") is False, f"{cw}: securityContext.allowPrivilegeEscalation must be false")
        rule("ALL" in ((sc.get("capabilities") or {}).get("drop") or []), f"{cw}: securityContext.capabilities.drop must include ALL")
        rule(sc.get("readOnlyRootFilesystem") is True, f"{cw}: securityContext.readOnlyRootFilesystem must be true")
        rule(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, f"{cw}: runAsNonRoot must be true")
        rule(sc.get("runAsUser", psc.get("runAsUser")) not in (0, None), f"{cw}: runAsUser must be set and not 0")
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        rule(seccomp in ("RuntimeDefault", "Localhost"), f"{cw}: seccompProfile must be RuntimeDefault")
        image_pinned(c.get("image", ""), cw)
    if d["kind"] == "Deployment" and d["metadata"]["name"] in hpa_targets:
        rule("replicas" not in d["spec"], f"{where}: sets spec.replicas although a HorizontalPodAutoscaler scales it (every apply would reset the scale)")
    mounts = {m["mountPath"]: m for c in spec.get("containers") or [] for m in c.get("volumeMounts") or []}
    vols = {v["name"]: v for v in spec.get("volumes") or []}
    if "/tmp" in mounts:
        rule("emptyDir" in vols.get(mounts["/tmp"]["name"], {}), f"{where}: /tmp must be an emptyDir")
    else:
        rule(False, f"{where}: no writable /tmp (emptyDir) for a read-only root filesystem")

# The xiaoer Deployment itself.
xiaoer = [(p, d) for p, d in find("Deployment") if any(
    c.get("image", "").split(":")[0].rsplit("/", 1)[-1] == "xiaoer" or c["name"] == "xiaoer"
    for c in pod_spec(d).get("containers") or [])]
rule(len(xiaoer) == 1, f"{rel(K8S)}: expected one xiaoer Deployment, found {len(xiaoer)}")
if xiaoer:
    p, d = xiaoer[0]
    where = f"{rel(p)}: Deployment/{d['metadata']['name']}"
    spec = pod_spec(d)
    c = next(c for c in spec["containers"] if c["name"] == "xiaoer" or "xiaoer" in c.get("image", ""))
    env = {e["name"]: e for e in c.get("env") or []}
    ports = {pt.get("name"): pt["containerPort"] for pt in c.get("ports") or []}
    labels = (d["spec"]["template"]["metadata"] or {}).get("labels") or {}
    rule(d["metadata"]["name"] in hpa_targets, f"{where}: no HorizontalPodAutoscaler targets it")
    img = images.get(c["image"].split(":")[0])
    rule(bool(img) and img.get("newTag") == version,
         f"{where}: kustomize images: must pin {c['image'].split(':')[0]} to newTag {version} (the Cargo.toml version), found {img and img.get('newTag')}")
    # Probes: startup and readiness on /readyz, liveness on /livez, over the metrics port.
    probes = {k: c.get(k) or {} for k in ("startupProbe", "readinessProbe", "livenessProbe")}
    want = {"startupProbe": "/readyz", "readinessProbe": "/readyz", "livenessProbe": "/livez"}
    metrics_port = port_of(settings.get("XIAOER_METRICS_ADDR", ""))
    for k, path in want.items():
        hg = probes[k].get("httpGet") or {}
        rule(hg.get("path") == path, f"{where}: {k} must be an httpGet on {path} (found {hg.get('path') or 'none'})")
        port = hg.get("port")
        port = ports.get(port, port) if isinstance(port, str) else port
        rule(port == metrics_port and metrics_port is not None,
             f"{where}: {k} must use the metrics port {metrics_port} (XIAOER_METRICS_ADDR), found {hg.get('port')}")
    rule(probes["readinessProbe"] != probes["livenessProbe"], f"{where}: readiness and liveness probes must differ")
    for name, var in (("grpc", "XIAOER_ADDR"), ("metrics", "XIAOER_METRICS_ADDR"), ("console", "XIAOER_CONSOLE_ADDR")):
        if var in settings or name in ports:
            rule(port_of(settings.get(var, "")) == ports.get(name),
                 f"{where}: containerPort {name} ({ports.get(name)}) and {var} ({settings.get(var)}) disagree")
    # Shutdown arithmetic.
    pre = ((c.get("lifecycle") or {}).get("preStop") or {})
    pre_s = 0.0
    if "sleep" in pre:
        pre_s = float(pre["sleep"].get("seconds", 0))
    elif "exec" in pre:
        cmd = pre["exec"].get("command") or []
        m = re.search(r"\bsleep\s+(\d+(?:\.\d+)?)", " ".join(map(str, cmd)))
        pre_s = float(m.group(1)) if m else 0.0
    rule(pre_s > 0, f"{where}: needs a preStop hook that sleeps while the endpoint is removed")
    drain = duration_seconds(settings.get("XIAOER_DRAIN_WINDOW", "10s"))
    rule(drain is not None, f"settings: XIAOER_DRAIN_WINDOW {settings.get('XIAOER_DRAIN_WINDOW')!r} is not a duration like 10s")
    grace = spec.get("terminationGracePeriodSeconds", 30)
    total = pre_s + (drain or 0) + IN_FLIGHT_SECONDS
    rule(total <= grace,
         f"{where}: preStop {pre_s:g} s + drain window {drain:g} s + in-flight {IN_FLIGHT_SECONDS} s = {total:g} s exceeds terminationGracePeriodSeconds {grace}")
    # Secrets, knowledge base, PodDisruptionBudget, Service.
    for var in ("XIAOER_DATABASE_URL", "XIAOER_TOKENS"):
        rule("secretKeyRef" in ((env.get(var) or {}).get("valueFrom") or {}), f"{where}: {var} must come from a Secret (valueFrom.secretKeyRef)")
        rule(var not in settings, f"settings: {var} must not be in a ConfigMap; it comes from a Secret")
    kb_dir = (env.get("XIAOER_KB_DIR") or {}).get("value") or settings.get("XIAOER_KB_DIR")
    kb_mount = next((m for m in c.get("volumeMounts") or [] if m["mountPath"] == kb_dir), None)
    kb_vol = next((v for v in spec.get("volumes") or [] if kb_mount and v["name"] == kb_mount["name"]), {})
    rule(bool(kb_mount) and (kb_vol.get("configMap") or {}).get("name") == KB_GENERATOR and not kb_mount.get("subPath"),
         f"{where}: XIAOER_KB_DIR ({kb_dir}) must be the ConfigMap {KB_GENERATOR} mounted without subPath")
    rule(settings.get("XIAOER_KB_WATCH", "true") == "true", "settings: XIAOER_KB_WATCH must stay true for hot reload")

    def selects(sel: dict) -> bool:
        ml = (sel or {}).get("matchLabels") or {}
        return bool(ml) and all(labels.get(k) == v for k, v in ml.items())

    rule(any(selects(pdb["spec"].get("selector")) for _, pdb in find("PodDisruptionBudget")),
         f"{where}: no PodDisruptionBudget selects its pods")
    svcs = [s for _, s in find("Service") if s["spec"].get("selector") and
            all(labels.get(k) == v for k, v in s["spec"]["selector"].items())]
    rule(bool(svcs), f"{where}: no Service selects its pods")
    for s in svcs:
        for sp in s["spec"].get("ports") or []:
            if sp.get("name") == "grpc" or sp.get("targetPort") == "grpc":
                rule(sp.get("appProtocol") == "grpc", f"Service/{s['metadata']['name']}: port {sp.get('name')} needs appProtocol: grpc")
done.append(f"{npolicy} deployment rules")

# --- Every XIAOER_* variable set is one the source reads -----------------------
known = set()
for sub in ("service/src", "cli/src"):
    for rs in (root / sub).rglob("*.rs"):
        known.update(re.findall(r'"(XIAOER_[A-Z0-9_]+)"', rs.read_text()))
used: dict[str, str] = {}
for p in env_files:
    for k in parse_env_file(p):
        used.setdefault(k, rel(p))
for p, d in workloads:
    for c in pod_spec(d).get("containers") or []:
        for e in c.get("env") or []:
            used.setdefault(e["name"], rel(p))
compose_file = root / "compose.yaml"
compose_raw = (load_yaml_docs(compose_file) or [{}])[0] if compose_file.exists() else {}
for sname, svc in (compose_raw.get("services") or {}).items():
    envs = svc.get("environment") or {}
    keys = envs.keys() if isinstance(envs, dict) else [e.split("=", 1)[0] for e in envs]
    for k in keys:
        used.setdefault(k, f"compose.yaml ({sname})")
    ef = svc.get("env_file") or []
    for f in [ef] if isinstance(ef, str) else ef:
        f = f if isinstance(f, str) else f.get("path")
        if (root / f).exists():
            for k in parse_env_file(root / f):
                used.setdefault(k, f)
dockerfile = root / "Dockerfile"
dtext = dockerfile.read_text() if dockerfile.exists() else ""
joined = re.sub(r"\\\n", " ", dtext)
for line in joined.splitlines():
    if re.match(r"^\s*ENV\s", line):
        for k in re.findall(r"\b([A-Z][A-Z0-9_]*)=", line):
            used.setdefault(k, "Dockerfile")
nvars = 0
for k, where in sorted(used.items()):
    if k.startswith("XIAOER_"):
        nvars += 1
        if k not in known:
            fail(f"{where}: sets {k}, which no code reads (no \"{k}\" in service/src or cli/src): a typo, or a flag not implemented yet")
done.append(f"{nvars} XIAOER_* variables known to the source")

# --- Demo credentials agree across files ----------------------------------------
TOKEN_ITEM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*:(storefront|helpdesk|admin):sha256\$[0-9a-f]{32}\$[0-9a-f]{64}$")


def check_tokens(value: str, where: str) -> None:
    items = value.split(",") if value else []
    bad = [i for i in items if not TOKEN_ITEM.match(i)]
    if not items or bad:
        fail(f"{where}: XIAOER_TOKENS must be name:role:sha256$salt$digest items from `xiaoer token new`, found {(bad or [value])[0][:50]!r}")


def url_password(url: str) -> str | None:
    m = re.match(r"^postgres(?:ql)?://[^:/@]+:([^@]*)@", url or "")
    return m.group(1) if m else None


overlay_pg = K8S / "overlays/postgres"
if (overlay_pg / "postgres.env").exists() and (overlay_pg / "xiaoer-db.env").exists():
    pg = parse_env_file(overlay_pg / "postgres.env")
    db = parse_env_file(overlay_pg / "xiaoer-db.env")
    if url_password(db.get("url", "")) != pg.get("POSTGRES_PASSWORD"):
        fail(f"{rel(overlay_pg)}: the password in xiaoer-db.env's url differs from POSTGRES_PASSWORD in postgres.env")
if (overlay_pg / "demo-tokens.env").exists():
    check_tokens(parse_env_file(overlay_pg / "demo-tokens.env").get("tokens", ""), rel(overlay_pg / "demo-tokens.env"))

# --- compose.yaml ----------------------------------------------------------------
if not compose_file.exists():
    fail("compose.yaml is missing")
else:
    cmd = compose_cmd.split() + ["-f", str(compose_file), "--project-directory", str(root)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    r = subprocess.run(cmd + ["config"], capture_output=True, text=True, cwd=root, env=env)
    if r.returncode != 0:
        msg = " ".join((r.stderr or r.stdout).split())
        fail(f"compose.yaml: `{compose_cmd} config` failed: {msg[:400]}")
    else:
        cfg = yaml.safe_load(r.stdout) or {}
        services = cfg.get("services") or {}
        pg = [n for n, s in services.items() if str(s.get("image", "")).startswith("postgres")]
        xs = [n for n, s in services.items() if "xiaoer" in str(s.get("image", "")) or s.get("build")]
        if len(pg) != 1 or not pg or "healthcheck" not in services[pg[0]]:
            fail("compose.yaml: needs one postgres service with a healthcheck")
        if len(xs) < 2:
            fail(f"compose.yaml: needs at least two xiaoer replicas, found {len(xs)}")
        drain = duration_seconds(settings.get("XIAOER_DRAIN_WINDOW", "10s")) or 10
        for n in xs:
            s = services[n]
            envs = s.get("environment") or {}
            if isinstance(envs, list):
                envs = dict(e.split("=", 1) for e in envs)
            check_tokens(str(envs.get("XIAOER_TOKENS", "")).replace("$$", "$"), f"compose.yaml ({n})")
            deps = s.get("depends_on") or {}
            if not (isinstance(deps, dict) and pg and (deps.get(pg[0]) or {}).get("condition") == "service_healthy"):
                fail(f"compose.yaml ({n}): must depend on {pg[0] if pg else 'postgres'} with condition: service_healthy")
            if not str(envs.get("XIAOER_DATABASE_URL", "")).startswith("postgres"):
                fail(f"compose.yaml ({n}): XIAOER_DATABASE_URL must point at the postgres service")
            elif pg and url_password(str(envs["XIAOER_DATABASE_URL"])) != (services[pg[0]].get("environment") or {}).get("POSTGRES_PASSWORD"):
                fail(f"compose.yaml ({n}): the password in XIAOER_DATABASE_URL differs from POSTGRES_PASSWORD")
            tag = str(s.get("image", "")).rsplit(":", 1)
            if len(tag) != 2 or tag[1] != version:
                fail(f"compose.yaml ({n}): image must be xiaoer:{version} (the Cargo.toml version), found {s.get('image')}")
            grace = duration_seconds(str(s.get("stop_grace_period", "10s"))) or 10
            if grace < drain + IN_FLIGHT_SECONDS:
                fail(f"compose.yaml ({n}): stop_grace_period {s.get('stop_grace_period', '10s')} is shorter than drain {drain:g} s + in-flight {IN_FLIGHT_SECONDS} s")
        # Demo tokens are public: never publish their ports beyond loopback.
        for n, s in (compose_raw.get("services") or {}).items():
            for port in s.get("ports") or []:
                spec = port if isinstance(port, str) else f"{port.get('host_ip', '')}:{port.get('published')}"
                if not str(spec).startswith("127.0.0.1:"):
                    fail(f"compose.yaml ({n}): port {spec} must be published on 127.0.0.1 only (the demo tokens are public)")
        done.append(f"compose.yaml valid ({compose_cmd} config, {len(xs)} replicas on {pg[0] if pg else '?'})")

# --- Dockerfile and .dockerignore ------------------------------------------------
if not dtext:
    fail("Dockerfile is missing")
else:
    code = "\n".join(l for l in joined.splitlines() if not l.lstrip().startswith("#"))
    if not re.search(r"cargo build[^\n]*--locked", code):
        fail("Dockerfile: cargo build must use --locked")
    if re.search(r"\|\|\s*(true|:)(\s|$)", code):
        fail("Dockerfile: `|| true` hides failures; remove it")
    if not re.search(r"^\s*VOLUME\s", code, re.M):
        fail("Dockerfile: needs a VOLUME for the SQLite data dir")
    if not re.search(r"^\s*HEALTHCHECK\s.*--ready-url[\"',\s]+[^\s\"']*/readyz", code, re.M):
        fail("Dockerfile: HEALTHCHECK must run `xiaoer health --ready-url http://127.0.0.1:9464/readyz` (works with TLS)")
    users = re.findall(r"^\s*USER\s+(\S+)", code, re.M)
    if not users or not re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1]):
        fail("Dockerfile: the last USER must be a numeric non-root uid")
    m = re.search(r'org\.opencontainers\.image\.version="?([^"\s]+)', code)
    if not m or m.group(1) != version:
        fail(f"Dockerfile: label org.opencontainers.image.version must be {version} (the Cargo.toml version)")
    # The weights are fetched in a stage, or before the stage's COPY . .
    stage = ""
    copied_all = {}
    for line in code.splitlines():
        if re.match(r"^\s*FROM\s", line, re.I):
            stage = line
            copied_all[stage] = False
        elif re.match(r"^\s*COPY\s+(--\S+\s+)*\.\s+\.", line):
            copied_all[stage] = True
        elif "fetch-weights.sh" in line and re.match(r"^\s*RUN\s", line) and copied_all.get(stage):
            fail("Dockerfile: the weights are fetched after `COPY . .`, so every code change downloads them again")
    done.append("Dockerfile rules")

    ignore = root / ".dockerignore"
    in_git = subprocess.run(["git", "-C", str(root), "rev-parse", "--is-inside-work-tree"],
                            capture_output=True, text=True).stdout.strip() == "true"
    if not ignore.exists():
        fail(".dockerignore is missing")
    elif not in_git:
        done.append(".dockerignore check skipped (not a git checkout: git tells which files are tracked and ignored)")
    else:
        patterns = [l.strip() for l in ignore.read_text().splitlines() if l.strip() and not l.strip().startswith("#")]
        pm = PatternMatcher(patterns)
        git = ["git", "-C", str(root)]
        tracked = subprocess.run(git + ["ls-files", "-z"], capture_output=True, text=True, check=True).stdout.split("\0")
        needed = [f for f in tracked if f and (f.split("/", 1)[0] in members or f in ("Cargo.toml", "Cargo.lock"))]
        # Files the Dockerfile COPYs from the context.
        for line in code.splitlines():
            mm = re.match(r"^\s*COPY\s+((?:--\S+\s+)*)(.+)$", line)
            if not mm or "--from" in mm.group(1):
                continue
            parts = mm.group(2).split()
            for src in parts[:-1]:
                if src == ".":
                    continue
                needed += [f for f in tracked if f == src or f.startswith(src.rstrip("/") + "/")]
        missing = sorted({f for f in needed if pm.matches(f)})
        for f in missing[:10]:
            fail(f".dockerignore leaves out {f}, which the image build needs")
        if len(missing) > 10:
            fail(f".dockerignore leaves out {len(missing) - 10} more files the build needs")
        ignored = subprocess.run(git + ["ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory"],
                                 capture_output=True, text=True, check=True).stdout.split("\0")
        local = [f.rstrip("/") for f in ignored if f] + [
            ".git/HEAD", "target/release/xiaoer", "fuzz/target/x", "fuzz/corpus/x", "data/xiaoer.db",
            "xiaoer.db", "service/xiaoer.db-wal", "models/weights/e5-small-q4.bin", "reports/ci-cases/report.json",
            "datasets/banking77/train.jsonl", "feedback.jsonl"]
        leaks = sorted({f for f in local if not pm.matches(f)})
        for f in leaks[:10]:
            fail(f".dockerignore lets {f} into the build context (git ignores it: local state)")
        done.append(f".dockerignore: {len(set(needed))} build files in, {len(set(local))} local paths out")

# --- Render with kustomize when available ---------------------------------------
if kustomize_cmd:
    nrendered = 0
    for kfile in kustomizations:
        kdir = kfile.parent
        if kdir.resolve() in components:
            continue
        r = subprocess.run(kustomize_cmd.split() + [str(kdir)], capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"{rel(kdir)}: `{kustomize_cmd}` failed: {' '.join(r.stderr.split())[:400]}")
            continue
        docs = [d for d in yaml.safe_load_all(r.stdout) if d]
        secrets = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
        for d in docs:
            nrendered += 1
            schema_check(d, f"{rel(kdir)} (rendered)")
            # In an overlay that generates Secrets, every secretKeyRef must resolve.
            if secrets and d["kind"] in ("Deployment", "StatefulSet"):
                for c in pod_spec(d).get("containers") or []:
                    for e in c.get("env") or []:
                        ref = ((e.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name")
                        if ref and ref not in secrets:
                            fail(f"{rel(kdir)} (rendered): {d['kind']}/{d['metadata']['name']} reads Secret {ref}, which it does not create")
    kv_ = subprocess.run(["kubectl", "version", "--client", "-o", "json"], capture_output=True, text=True) if kustomize_cmd.startswith("kubectl") else None
    kver = ""
    if kv_ and kv_.returncode == 0:
        kver = " " + (json.loads(kv_.stdout).get("kustomizeVersion") or "")
    done.append(f"{len(kustomizations)} kustomizations rendered ({kustomize_cmd}{kver}), {nrendered} objects valid")
else:
    done.append("kustomize rendering skipped (no kubectl or kustomize on this machine)")

if errors:
    for e in errors:
        print(f"check-deploy: {e}", file=sys.stderr)
    print(f"check-deploy: FAILED with {len(errors)} problem(s)", file=sys.stderr)
    sys.exit(1)
print("check-deploy: OK: " + "; ".join(done))
PY
