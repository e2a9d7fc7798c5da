#!/usr/bin/python3
"""Static checks of deploy/ (nothing here can run: no container engine).

Usage:
  check_deploy.py [--bin-dir DIR]      e.g. --bin-dir build/bin

Without --bin-dir the flags are checked against the command-line contract of
docs (DESIGN.md), built in below. With --bin-dir the flags are read from
`DIR/wsgate --help` and `DIR/wsgate-backend --help`, and a missing binary is a
failure ("build first").

Checks:
  * every YAML file in deploy/ and dashboards/ parses;
  * example configs and ConfigMap configs use only keys that are flags;
  * flags in Deployments, compose, systemd ExecStart exist in --help;
  * kustomizations list files that exist (and `kubectl kustomize` renders
    them when kubectl is installed);
  * Deployments: readiness/liveness probes on the admin port at admin
    endpoints, containerPorts match the configured listen/admin ports,
    terminationGracePeriodSeconds > drain (10s) + preStop, non-root,
    TLS and JWT secrets mounted where the config expects them;
  * Services target declared container ports; the ServiceMonitor scrapes a
    port the Services have; PDB/HPA point at Deployments that exist;
  * the PrometheusRule has not drifted from dashboards/prometheus/*.yml;
  * compose: services, flags, ports, mounted files exist; its prometheus.yml
    passes `promtool check config`, alertmanager.yml `amtool check-config`
    (when amtool is installed);
  * Dockerfile: multi-stage from debian:12, non-root USER, HEALTHCHECK;
  * systemd units: flags, sandboxing options, `systemd-analyze verify`.
Prints FAIL lines and exits 1 on any problem.
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml  # python3-yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
DEPLOY = os.path.join(REPO, "deploy")
DRAIN_TIMEOUT_S = 10

CONTRACT_FLAGS = {
    "wsgate": {"config", "listen", "tls-cert", "tls-key", "upstream", "upstream-ca",
               "upstream-trace-url", "admin", "incident-log", "log-format", "log-level", "help"},
    "wsgate-backend": {"config", "listen", "admin", "jwt-secret-file", "jwt-issuer",
                       "jwt-audience", "context-policy", "fault", "log-format", "log-level", "help"},
}
ADMIN_PATHS = {
    "wsgate": {"/healthz", "/readyz", "/metrics"},
    "wsgate-backend": {"/healthz", "/metrics"},
}

problems = []
notes = []


def fail(where, msg):
    problems.append(f"{where}: {msg}")


def rel(p):
    return os.path.relpath(p, REPO)


def load_all(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def help_flags(bin_dir):
    flags = {}
    for name in ("wsgate", "wsgate-backend"):
        path = os.path.join(bin_dir, name)
        if not os.access(path, os.X_OK):
            print(f"FAIL binary {path} is missing or not executable: build first "
                  f"(cmake --build build) or run without --bin-dir for the contract-only check")
            sys.exit(1)
        r = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=20)
        text = r.stdout + r.stderr
        found = set(re.findall(r"--([a-z][a-z0-9-]*)", text))
        if not found:
            print(f"FAIL `{path} --help` printed no --flags (exit {r.returncode}):\n{text}")
            sys.exit(1)
        flags[name] = found | {"help"}
    return flags


def flags_of_args(args):
    out = []
    for a in args:
        m = re.match(r"--([a-z][a-z0-9-]*)", str(a))
        if m:
            out.append(m.group(1))
    return out


def hostport(value):
    m = re.match(r"^\[?([^\]]*)\]?:(\d+)$", str(value))
    return (m.group(1), int(m.group(2))) if m else (None, None)


def check_flags(where, binary, flags, known):
    for f in flags:
        if f not in known[binary]:
            fail(where, f"flag --{f} is not a flag of {binary} (known: {' '.join(sorted(known[binary]))})")


def check_config_keys(where, binary, cfg, known):
    if not isinstance(cfg, dict):
        fail(where, "config is not a YAML mapping")
        return
    for k in cfg:
        if k not in known[binary] or k in ("config", "help"):
            fail(where, f"config key {k!r} is not a flag of {binary}")


# ----------------------------------------------------------------- YAML parse
def check_yaml_parses():
    n = 0
    for top in (DEPLOY, os.path.join(REPO, "dashboards")):
        for root, _, files in os.walk(top):
            for fn in files:
                if fn.endswith((".yml", ".yaml")):
                    p = os.path.join(root, fn)
                    try:
                        load_all(p)
                        n += 1
                    except yaml.YAMLError as e:
                        fail(rel(p), f"YAML does not parse: {e}")
    notes.append(f"{n} YAML files parse")


# ------------------------------------------------------------------- examples
def check_examples(known):
    for binary, fn in (("wsgate", "proxy.yaml"), ("wsgate-backend", "backend.yaml")):
        p = os.path.join(DEPLOY, "examples", fn)
        if not os.path.exists(p):
            fail(rel(p), "missing")
            continue
        cfg = load_all(p)[0]
        check_config_keys(rel(p), binary, cfg, known)
        for key in ("listen", "admin"):
            if hostport(cfg.get(key))[1] is None:
                fail(rel(p), f"{key} is not HOST:PORT: {cfg.get(key)!r}")
    proxy = load_all(os.path.join(DEPLOY, "examples", "proxy.yaml"))[0]
    backend = load_all(os.path.join(DEPLOY, "examples", "backend.yaml"))[0]
    up = str(proxy.get("upstream", ""))
    if hostport(backend["listen"])[1] != int(re.sub(r"^wss?://[^:/]+:(\d+).*$", r"\1", up) or 0):
        fail("deploy/examples", f"proxy upstream {up} does not reach the backend listen {backend['listen']}")
    tu = str(proxy.get("upstream-trace-url", ""))
    if "{correlation_id}" not in tu or f":{hostport(backend['admin'])[1]}/debug/traces/" not in tu:
        fail("deploy/examples", f"upstream-trace-url {tu} is not the backend admin /debug/traces/{{correlation_id}}")


# ---------------------------------------------------------------- kustomize
def kustomization_files(kdir):
    p = os.path.join(kdir, "kustomization.yaml")
    k = load_all(p)[0]
    listed = []
    for r in k.get("resources", []):
        listed.append(("resource", r))
    for c in k.get("components", []):
        listed.append(("component", c))
    for g in k.get("configMapGenerator", []) + k.get("secretGenerator", []):
        for f in g.get("files", []):
            listed.append(("file", f.split("=", 1)[-1]))
        for f in g.get("envs", []):
            listed.append(("file", f))
    for pt in k.get("patches", []) + k.get("patchesStrategicMerge", []):
        if isinstance(pt, dict) and "path" in pt:
            listed.append(("file", pt["path"]))
        elif isinstance(pt, str):
            listed.append(("file", pt))
    return k, listed


def check_kustomize():
    docs = {}
    for kdir in (os.path.join(DEPLOY, "k8s", "base"), os.path.join(DEPLOY, "k8s", "overlays", "staging")):
        kp = os.path.join(kdir, "kustomization.yaml")
        if not os.path.exists(kp):
            fail(rel(kp), "missing")
            continue
        k, listed = kustomization_files(kdir)
        for kind, item in listed:
            p = os.path.normpath(os.path.join(kdir, item))
            if kind in ("resource", "component") and os.path.isdir(p):
                if not os.path.exists(os.path.join(p, "kustomization.yaml")):
                    fail(rel(kp), f"{kind} {item} is a directory without kustomization.yaml")
            elif not os.path.isfile(p):
                fail(rel(kp), f"{kind} {item} does not exist")
            elif kind == "resource":
                for d in load_all(p):
                    docs.setdefault(os.path.basename(kdir), []).append((rel(p), d))
        # No file of the directory is forgotten.
        used = {os.path.normpath(os.path.join(kdir, i)) for _, i in listed}
        for fn in os.listdir(kdir):
            p = os.path.join(kdir, fn)
            if fn.endswith(".yaml") and fn != "kustomization.yaml" and p not in used:
                fail(rel(p), "is not listed in the kustomization")
    kubectl = shutil.which("kubectl")
    if kubectl:
        for overlay in ("base", "overlays/staging"):
            d = os.path.join(DEPLOY, "k8s", overlay)
            r = subprocess.run([kubectl, "kustomize", d], capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                fail(rel(d), f"kubectl kustomize failed: {r.stderr.strip()}")
            else:
                notes.append(f"kubectl kustomize {rel(d)}: {len(list(yaml.safe_load_all(r.stdout)))} objects")
    else:
        notes.append("kubectl not installed: kustomize rendering not checked (file checks done)")
    return docs.get("base", [])


def container_binary(c):
    cmd = (c.get("command") or [None])[0] or c.get("name")
    return os.path.basename(str(cmd))


def check_k8s(base_docs, known):
    by_kind = {}
    for path, d in base_docs:
        by_kind.setdefault(d.get("kind"), []).append((path, d))
    base = os.path.join(DEPLOY, "k8s", "base")
    k = load_all(os.path.join(base, "kustomization.yaml"))[0]
    configmaps = {}
    for g in k.get("configMapGenerator", []):
        for f in g.get("files", []):
            key, _, src = f.partition("=")
            configmaps.setdefault(g["name"], {})[key] = load_all(os.path.join(base, src or key))[0]
    deployments = {d["metadata"]["name"]: (p, d) for p, d in by_kind.get("Deployment", [])}
    if set(deployments) != {"wsgate", "wsgate-backend"}:
        fail("deploy/k8s/base", f"expected Deployments wsgate and wsgate-backend, got {sorted(deployments)}")
    container_ports = {}
    for name, (p, d) in deployments.items():
        spec = d["spec"]["template"]["spec"]
        where = f"{p} Deployment {name}"
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        sc = spec.get("securityContext", {})
        if not sc.get("runAsNonRoot"):
            fail(where, "pod securityContext.runAsNonRoot is not true")
        for c in spec["containers"]:
            binary = container_binary(c)
            cw = f"{where} container {c['name']}"
            if binary not in known:
                fail(cw, f"runs {binary!r}, neither wsgate nor wsgate-backend")
                continue
            check_flags(cw, binary, flags_of_args(c.get("args", [])), known)
            # The config the container reads.
            cfg = {}
            for a in c.get("args", []):
                m = re.match(r"--config[= ](.+)", str(a))
                if m:
                    path = m.group(1)
                    for vm in c.get("volumeMounts", []):
                        if vm["mountPath"] == path:
                            v = volumes.get(vm["name"], {})
                            cm = v.get("configMap", {}).get("name")
                            if cm not in configmaps:
                                fail(cw, f"--config {path} is not mounted from a generated ConfigMap")
                            else:
                                cfg = configmaps[cm].get(vm.get("subPath"), {})
                    if not cfg:
                        fail(cw, f"--config {path}: no ConfigMap file mounted there")
            check_config_keys(cw + " config", binary, cfg, known)
            ports = {pp["name"]: pp["containerPort"] for pp in c.get("ports", [])}
            container_ports[name] = ports
            for key, pname in (("listen", {"wsgate": "wss", "wsgate-backend": "ws"}[binary]), ("admin", "admin")):
                want = hostport(cfg.get(key))[1]
                if want is None:
                    fail(cw, f"config {key} is not HOST:PORT")
                elif ports.get(pname) != want:
                    fail(cw, f"containerPort {pname}={ports.get(pname)} but config {key} is {cfg.get(key)}")
                host = hostport(cfg.get(key))[0]
                if host in ("127.0.0.1", "localhost", "::1"):
                    fail(cw, f"config {key} {cfg.get(key)} binds loopback: kubelet and Prometheus cannot reach it")
            for probe in ("readinessProbe", "livenessProbe"):
                pr = c.get(probe)
                if not pr or "httpGet" not in pr:
                    fail(cw, f"no {probe} httpGet")
                    continue
                port = pr["httpGet"]["port"]
                if port not in ("admin", ports.get("admin")):
                    fail(cw, f"{probe} probes port {port}, not the admin port")
                if pr["httpGet"]["path"] not in ADMIN_PATHS[binary]:
                    fail(cw, f"{probe} path {pr['httpGet']['path']} is not an admin endpoint of {binary}")
            if binary == "wsgate" and c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
                fail(cw, "the proxy's readinessProbe should use /readyz")
            pre = 0
            ps = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
            if ps[:1] == ["sleep"]:
                pre = int(ps[1])
            grace = spec.get("terminationGracePeriodSeconds", 30)
            if grace <= DRAIN_TIMEOUT_S + pre:
                fail(cw, f"terminationGracePeriodSeconds {grace} <= drain {DRAIN_TIMEOUT_S}s + preStop {pre}s")
            csc = c.get("securityContext", {})
            if csc.get("allowPrivilegeEscalation") is not False or not csc.get("readOnlyRootFilesystem"):
                fail(cw, "container securityContext must forbid privilege escalation and use a read-only root")
            # Secrets where the config expects files.
            mounts = {vm["mountPath"]: volumes.get(vm["name"], {}) for vm in c.get("volumeMounts", [])}
            for key in ("tls-cert", "tls-key", "jwt-secret-file", "admin-token-file", "trace-fetch-token-file"):
                if key in cfg:
                    d_ = os.path.dirname(cfg[key])
                    v = mounts.get(d_)
                    if not v or "secret" not in v:
                        fail(cw, f"{key} {cfg[key]}: no Secret volume mounted at {d_}")
                    elif key.startswith("tls-") and os.path.basename(cfg[key]) not in ("tls.crt", "tls.key"):
                        fail(cw, f"{key} {cfg[key]}: a kubernetes.io/tls Secret holds tls.crt and tls.key")
            if binary == "wsgate" and "tls-cert" not in cfg:
                fail(cw, "the proxy does not terminate TLS (no tls-cert)")
            if binary == "wsgate-backend" and "jwt-secret-file" not in cfg:
                fail(cw, "the backend has no jwt-secret-file")
            if "admin-token-file" not in cfg:  # /incidents, /connections, /debug/traces name users
                fail(cw, "the admin endpoints that name users are open (no admin-token-file)")
            if binary == "wsgate" and "admin-token-file" in cfg and "trace-fetch-token-file" not in cfg:
                fail(cw, "the proxy's trace fetch sends no token to the backend's guarded /debug/traces")
    services = {}
    for p, s in by_kind.get("Service", []):
        name = s["metadata"]["name"]
        services[name] = s
        target = s["spec"]["selector"].get("app.kubernetes.io/name")
        if target not in deployments:
            fail(p, f"Service {name} selects app.kubernetes.io/name={target}, no such Deployment")
            continue
        for port in s["spec"]["ports"]:
            tp = port.get("targetPort", port["port"])
            if tp not in container_ports.get(target, {}) and tp not in container_ports.get(target, {}).values():
                fail(p, f"Service {name} port {port['name']} targets {tp}, not a port of {target}")
    for p, sm in by_kind.get("ServiceMonitor", []):
        sel = sm["spec"]["selector"]
        names = set()
        for e in sel.get("matchExpressions", []):
            names |= set(e.get("values", []))
        if sel.get("matchLabels", {}).get("app.kubernetes.io/name"):
            names.add(sel["matchLabels"]["app.kubernetes.io/name"])
        if names != {"wsgate", "wsgate-backend"}:
            fail(p, f"ServiceMonitor should select both Services, selects {sorted(names)}")
        for ep in sm["spec"]["endpoints"]:
            for n in names:
                if n in services and ep["port"] not in [pp["name"] for pp in services[n]["spec"]["ports"]]:
                    fail(p, f"ServiceMonitor port {ep['port']} is not a port of Service {n}")
            if ep.get("path", "/metrics") != "/metrics":
                fail(p, "ServiceMonitor path is not /metrics")
    for kind in ("PodDisruptionBudget", "HorizontalPodAutoscaler"):
        if not by_kind.get(kind):
            fail("deploy/k8s/base", f"no {kind}")
        for p, o in by_kind.get(kind, []):
            if kind == "HorizontalPodAutoscaler":
                t = o["spec"]["scaleTargetRef"]["name"]
            else:
                t = o["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
            if t not in deployments:
                fail(p, f"{kind} targets {t}, no such Deployment")
    check_scale_out(deployments, services, by_kind, configmaps)
    if not by_kind.get("PrometheusRule"):
        fail("deploy/k8s/base", "no PrometheusRule")
    r = subprocess.run([sys.executable, os.path.join(DEPLOY, "k8s", "gen-prometheusrule.py"), "--check"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        fail("deploy/k8s/base/prometheusrule.yaml", r.stdout.strip() + r.stderr.strip())
    else:
        notes.append(r.stdout.strip())


MIN_REPLICAS = {"wsgate": 2, "wsgate-backend": 3}


def check_scale_out(deployments, services, by_kind, configmaps):
    """Replicated backends and proxies (docs/scaling.md): replica counts, a
    headless Service in front of the backend pods that the proxy's upstream
    names, a PDB per Deployment that lets a drain proceed one pod at a time
    while the rest serve, and a trace URL that reaches the pod that served
    the session ({upstream_host})."""
    for name, want in MIN_REPLICAS.items():
        if name not in deployments:
            continue
        p, d = deployments[name]
        got = d["spec"].get("replicas", 1)
        if got < want:
            fail(p, f"Deployment {name} runs {got} replica(s); at least {want} (docs/scaling.md)")
        if name == "wsgate-backend" and d["spec"].get("strategy", {}).get("type") == "Recreate":
            fail(p, "Deployment wsgate-backend uses Recreate: every replica stops at once on a rollout")
    for p, h in by_kind.get("HorizontalPodAutoscaler", []):
        t = h["spec"]["scaleTargetRef"]["name"]
        if t in MIN_REPLICAS and h["spec"].get("minReplicas", 1) < MIN_REPLICAS[t]:
            fail(p, f"HPA of {t} allows {h['spec'].get('minReplicas', 1)} replica(s); at least {MIN_REPLICAS[t]}")
    headless = {n: s for n, s in services.items()
                if s["spec"].get("clusterIP") == "None"
                and s["spec"]["selector"].get("app.kubernetes.io/name") == "wsgate-backend"}
    if not headless:
        fail("deploy/k8s/base", "no headless Service (clusterIP: None) selecting the wsgate-backend pods")
    for n, s_ in headless.items():
        if s_["spec"].get("publishNotReadyAddresses"):
            fail("deploy/k8s/base", f"headless Service {n} publishes pods that are not ready")
    if not any(s_["spec"].get("clusterIP") == "None"
               and s_["spec"]["selector"].get("app.kubernetes.io/name") == "wsgate"
               and any(pp.get("targetPort") == "admin" for pp in s_["spec"]["ports"])
               for s_ in services.values()):
        fail("deploy/k8s/base", "no headless Service over the proxies' admin port: "
                                "`wsgate incidents list --admin NAME:PORT` cannot reach every replica")
    pdbs = {}
    for p, o in by_kind.get("PodDisruptionBudget", []):
        pdbs[o["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]] = (p, o)
    for name in MIN_REPLICAS:
        if name not in deployments:
            continue
        if name not in pdbs:
            fail("deploy/k8s/base", f"no PodDisruptionBudget for {name}")
            continue
        p, o = pdbs[name]
        replicas = deployments[name][1]["spec"].get("replicas", 1)
        spec = o["spec"]
        if "maxUnavailable" in spec:
            if not 1 <= int(spec["maxUnavailable"]) < replicas:
                fail(p, f"PDB {name} maxUnavailable {spec['maxUnavailable']}: a drain must evict one "
                        f"pod at a time and keep the others ({replicas} replicas)")
        elif not 1 <= int(spec.get("minAvailable", 0)) < replicas:
            fail(p, f"PDB {name} minAvailable {spec.get('minAvailable')}: must be 1..{replicas - 1}")
    # The proxy's upstream and trace URL, in every shipped proxy config.
    proxy_configs = [("deploy/k8s/base/config/proxy.yaml", configmaps.get("wsgate-proxy-config", {}).get("proxy.yaml", {}))]
    overlays = os.path.join(DEPLOY, "k8s", "overlays")
    for o in sorted(os.listdir(overlays)) if os.path.isdir(overlays) else []:
        for f in sorted(glob.glob(os.path.join(overlays, o, "*.yaml"))):
            doc = load_all(f)[0]
            if isinstance(doc, dict) and "upstream" in doc:
                proxy_configs.append((rel(f), doc))
    for where, cfg in proxy_configs:
        up = str(cfg.get("upstream", ""))
        m = re.match(r"^wss?://([^:/]+):(\d+)", up)
        host = m.group(1).split(".")[0] if m else None
        if host not in headless:
            fail(where, f"upstream {up} does not name the headless backend Service ({sorted(headless)})")
        elif int(m.group(2)) not in [pp["port"] for pp in headless[host]["spec"]["ports"]]:
            fail(where, f"upstream {up}: port not served by Service {host}")
        tu = str(cfg.get("upstream-trace-url", ""))
        admin = [pp["port"] for n in headless for pp in headless[n]["spec"]["ports"] if pp["name"] == "admin"]
        if not re.match(r"^http://\{upstream_host\}:(\d+)/debug/traces/\{correlation_id\}$", tu) or \
                int(tu.split(":")[2].split("/")[0]) not in admin:
            fail(where, f"upstream-trace-url {tu!r} must be http://{{upstream_host}}:ADMIN/debug/traces/"
                        "{correlation_id}: behind several replicas only the pod that served the session "
                        "holds its trace")


# -------------------------------------------------------------------- compose
def promtool_check_config(path, rules_dir_name="rules"):
    """promtool check config, with rule files resolved against the repo."""
    promtool = shutil.which("promtool")
    if not promtool:
        fail(rel(path), "promtool not installed (Debian package prometheus)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(path, os.path.join(tmp, "prometheus.yml"))
        os.symlink(os.path.join(REPO, "dashboards", "prometheus"), os.path.join(tmp, rules_dir_name))
        r = subprocess.run([promtool, "check", "config", os.path.join(tmp, "prometheus.yml")],
                           capture_output=True, text=True)
        if r.returncode != 0:
            fail(rel(path), f"promtool check config failed:\n{r.stdout}{r.stderr}")
        else:
            notes.append(f"promtool check config {rel(path)}: ok")


def check_compose(known):
    cdir = os.path.join(DEPLOY, "compose")
    path = os.path.join(cdir, "compose.yaml")
    c = load_all(path)[0]
    svcs = c.get("services", {})
    for s in ("proxy", "prometheus", "alertmanager", "grafana"):
        if s not in svcs:
            fail(rel(path), f"no service {s}")
    # Two backend replicas under one network alias (a headless Service's
    # equivalent): the proxy's upstream names the alias.
    backends = sorted(n for n, s in svcs.items() if (s.get("command") or [None])[0] == "wsgate-backend")
    if len(backends) < 2:
        fail(rel(path), f"needs two backend replicas, has {backends}")
    aliases = [set(((svcs[b].get("networks") or {}).get("default") or {}).get("aliases", [])) for b in backends]
    shared = set.intersection(*aliases) if aliases else set()
    if len(shared) != 1:
        fail(rel(path), f"backend replicas {backends} should share one network alias, share {sorted(shared)}")
        return
    alias = shared.pop()
    for name, s in svcs.items():
        where = f"{rel(path)} service {name}"
        cmd = s.get("command", [])
        if cmd and cmd[0] in known:
            check_flags(where, cmd[0], flags_of_args(cmd[1:]), known)
            args = {f: v for f, _, v in (str(a)[2:].partition("=") for a in cmd[1:] if str(a).startswith("--"))}
            hc_port = str(s.get("environment", {}).get("WSGATE_ADMIN_PORT", "9090"))
            if str(hostport(args.get("admin"))[1]) != hc_port:
                fail(where, f"WSGATE_ADMIN_PORT {hc_port} (HEALTHCHECK) is not the --admin port {args.get('admin')}")
            for key in ("listen", "admin"):
                if hostport(args.get(key))[0] != "0.0.0.0":
                    fail(where, f"--{key} must bind 0.0.0.0 inside the container, got {args.get(key)}")
        if "build" in s:
            ctx = os.path.normpath(os.path.join(cdir, s["build"]["context"]))
            if not os.path.isfile(os.path.join(ctx, s["build"]["dockerfile"])):
                fail(where, f"Dockerfile {s['build']['dockerfile']} not found in {rel(ctx)}")
        for v in s.get("volumes", []):
            src = str(v).split(":")[0]
            if src.startswith((".", "/")):
                if not os.path.exists(os.path.normpath(os.path.join(cdir, src))):
                    fail(where, f"volume source {src} does not exist")
    # Proxy -> backend wiring.
    pcmd = {f: v for f, _, v in (str(a)[2:].partition("=") for a in svcs["proxy"]["command"][1:])}
    bcmds = [{f: v for f, _, v in (str(a)[2:].partition("=") for a in svcs[b]["command"][1:])} for b in backends]
    if any(b != bcmds[0] for b in bcmds):
        fail(rel(path), f"backend replicas {backends} run different commands")
    bcmd = bcmds[0]
    if f"ws://{alias}:{hostport(bcmd['listen'])[1]}" != pcmd.get("upstream", ""):
        fail(rel(path), f"proxy --upstream {pcmd.get('upstream')} does not reach the replicas at {alias}:{bcmd['listen']}")
    if f"http://{{upstream_host}}:{hostport(bcmd['admin'])[1]}/debug/traces/{{correlation_id}}" != pcmd.get("upstream-trace-url", ""):
        fail(rel(path), "proxy --upstream-trace-url is not http://{upstream_host}:ADMIN/debug/traces/{correlation_id} "
                        "(the replica that served the session)")
    prom = os.path.join(cdir, "prometheus.yml")
    promtool_check_config(prom)
    pc = load_all(prom)[0]
    targets = {sc["job_name"]: [t for st in sc.get("static_configs", []) for t in st["targets"]]
               for sc in pc.get("scrape_configs", [])}
    want = [("wsgate", f"proxy:{hostport(pcmd['admin'])[1]}")]
    want += [("wsgate-backend", f"{b}:{hostport(bcmd['admin'])[1]}") for b in backends]
    for job, t in want:
        if t not in targets.get(job, []):
            fail(rel(prom), f"job {job} does not scrape {t}")
    am = os.path.join(cdir, "alertmanager.yml")
    amtool = shutil.which("amtool")
    if amtool:
        r = subprocess.run([amtool, "check-config", am], capture_output=True, text=True)
        if r.returncode != 0:
            fail(rel(am), f"amtool check-config failed:\n{r.stdout}{r.stderr}")
        else:
            notes.append(f"amtool check-config {rel(am)}: ok")
    else:
        notes.append("amtool not installed (Debian prometheus-alertmanager): alertmanager.yml only parsed")
    # The Grafana datasource's exemplar link must survive Grafana's env expansion.
    ds = os.path.join(REPO, "dashboards", "grafana", "provisioning", "datasources", "wsgate-prometheus.yml")
    d = load_all(ds)[0]
    links = [x for dsrc in d["datasources"] for x in dsrc.get("jsonData", {}).get("exemplarTraceIdDestinations", [])]
    if not any(x.get("name") == "trace_id" and "/incidents/$${__value.raw}" in x.get("url", "") for x in links):
        fail(rel(ds), "needs exemplarTraceIdDestinations trace_id -> .../incidents/$${__value.raw}")


# ------------------------------------------------------------------ Dockerfile
def check_dockerfile():
    p = os.path.join(DEPLOY, "docker", "Dockerfile")
    text = open(p, encoding="utf-8").read()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    if len(froms) < 2:
        fail(rel(p), "not multi-stage")
    for f in froms:
        if not f.startswith("debian:12"):
            fail(rel(p), f"base image {f} is not Debian 12")
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    if not users or users[-1].split(":")[0] in ("root", "0"):
        fail(rel(p), "final stage does not run as a non-root USER")
    if not re.search(r"^HEALTHCHECK\s", text, re.M):
        fail(rel(p), "no HEALTHCHECK")
    for src in re.findall(r"^COPY\s+(?!--from)(.+)$", text, re.M):
        for s in src.split()[:-1]:
            if not os.path.exists(os.path.join(REPO, s)):
                fail(rel(p), f"COPY source {s} does not exist in the repository")


# --------------------------------------------------------------------- systemd
SANDBOX = ["NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
           "PrivateDevices=yes", "CapabilityBoundingSet=", "RestrictAddressFamilies=",
           "SystemCallFilter=", "DynamicUser=yes", "ProtectKernelTunables=yes"]


def check_systemd(known):
    for binary in ("wsgate", "wsgate-backend"):
        p = os.path.join(DEPLOY, "systemd", f"{binary}.service")
        text = open(p, encoding="utf-8").read()
        m = re.search(r"^ExecStart=(\S+)(.*)$", text, re.M)
        if not m or os.path.basename(m.group(1)) != binary:
            fail(rel(p), f"ExecStart does not run {binary}")
            continue
        check_flags(rel(p), binary, flags_of_args(m.group(2).split()), known)
        for opt in SANDBOX:
            if not re.search(r"^" + re.escape(opt), text, re.M):
                fail(rel(p), f"missing sandboxing option {opt}")
        m2 = re.search(r"^TimeoutStopSec=(\d+)s?$", text, re.M)
        if not m2 or int(m2.group(1)) <= DRAIN_TIMEOUT_S:
            fail(rel(p), f"TimeoutStopSec must exceed the {DRAIN_TIMEOUT_S}s drain")
    sa = shutil.which("systemd-analyze")
    if sa:
        with tempfile.TemporaryDirectory() as tmp:
            units = []
            for binary in ("wsgate", "wsgate-backend"):
                src = open(os.path.join(DEPLOY, "systemd", f"{binary}.service"), encoding="utf-8").read()
                # verify wants an existing executable; the directives are what we check.
                src = re.sub(r"^ExecStart=\S+", "ExecStart=/bin/true", src, flags=re.M)
                u = os.path.join(tmp, f"{binary}.service")
                open(u, "w").write(src)
                units.append(u)
            r = subprocess.run([sa, "verify", *units], capture_output=True, text=True, cwd=tmp)
            bad = [l for l in (r.stdout + r.stderr).splitlines()
                   if re.search(r"Unknown (key|section)|Failed to parse|Invalid|bad-setting", l)]
            if bad:
                fail("deploy/systemd", "systemd-analyze verify: " + "; ".join(bad))
            else:
                notes.append("systemd-analyze verify deploy/systemd/*.service: ok")
    else:
        notes.append("systemd-analyze not installed: unit directives not verified")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", help="directory holding wsgate and wsgate-backend; flags come from their --help")
    args = ap.parse_args()
    if args.bin_dir:
        known = help_flags(os.path.abspath(args.bin_dir))
        notes.append(f"flags from --help of {args.bin_dir}/wsgate and wsgate-backend")
        for b in known:
            missing = CONTRACT_FLAGS[b] - known[b]
            if missing:
                fail(f"{args.bin_dir}/{b} --help", f"lacks contract flags {sorted(missing)}")
    else:
        known = CONTRACT_FLAGS
        notes.append("flags from the DESIGN.md contract (no --bin-dir given)")
    check_yaml_parses()
    check_examples(known)
    base_docs = check_kustomize()
    check_k8s(base_docs, known)
    check_compose(known)
    check_dockerfile()
    check_systemd(known)
    for n in notes:
        print("  ", n)
    for p in problems:
        print("FAIL", p)
    print(f"check_deploy: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
