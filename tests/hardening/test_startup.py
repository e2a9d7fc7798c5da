"""Honest start-up, black-box: every config file shipped under deploy/
starts both binaries, bind errors name the flag and the address, bad values
exit 2 naming the key, --version, and `make run` (deploy/run-dev.sh) says
"up" only when both processes answer."""
import glob
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time

import pytest
import yaml

from wsgate_harness import http_get, wait_for

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WSGATE = os.path.abspath(os.environ.get("WSGATE_BIN", "build-test/bin/wsgate"))
BACKEND = os.path.abspath(os.environ.get("WSGATE_BACKEND_BIN", "build-test/bin/wsgate-backend"))
SECRET = "startup-test-secret-of-at-least-32-bytes"
# What a start-up error must not carry: a library source location.
SOURCE_LOCATION = re.compile(r"\.(hpp|ipp|h|cpp):\d+|/usr/include|\[system:")


@pytest.fixture
def secret_file(tmp_path):
    p = tmp_path / "jwt-secret"
    p.write_text(SECRET + "\n")
    return str(p)


def held_port():
    """A socket listening on 127.0.0.1 (the port someone else holds)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(argv, timeout=30, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


# ---------------------------------------------------------------- deploy/ configs

def deploy_configs():
    """(path, binary) for every YAML file under deploy/ that is a wsgate or
    wsgate-backend config: a single flat mapping whose keys are flags,
    told apart by a key only that binary has."""
    out = []
    for path in sorted(glob.glob(os.path.join(REPO, "deploy", "**", "*.y*ml"), recursive=True)):
        with open(path) as f:
            docs = list(yaml.safe_load_all(f))
        if len(docs) != 1 or not isinstance(docs[0], dict):
            continue
        # Flag files are flat: every value a scalar or a list of scalars.
        scalar = (str, int, float, bool, type(None))
        if not all(isinstance(v, scalar) or (isinstance(v, list) and all(isinstance(e, scalar) for e in v))
                   for v in docs[0].values()):
            continue
        keys = {k.replace("_", "-") for k in docs[0]}
        if keys & {"upstream", "route"}:
            out.append((os.path.relpath(path, REPO), "wsgate"))
        elif keys & {"jwt-secret-file", "jwt-public-key", "context-policy"}:
            out.append((os.path.relpath(path, REPO), "wsgate-backend"))
    return out


CONFIGS = deploy_configs()


def test_every_shipped_config_is_found():
    found = {p for p, _ in CONFIGS}
    for known in ("deploy/examples/proxy.yaml", "deploy/examples/backend.yaml",
                  "deploy/k8s/base/config/proxy.yaml", "deploy/k8s/base/config/backend.yaml",
                  "deploy/k8s/overlays/staging/proxy.yaml"):
        assert known in found, (known, sorted(found))


# Keys whose values name files on the target host; the test points them at
# its own (generated dev certificate, temp secret, temp incident log).
def path_overrides(tmp_path, dev_cert, secret_file):
    return {"tls-cert": dev_cert["cert"], "tls-key": dev_cert["key"], "upstream-ca": dev_cert["ca"],
            "jwt-secret-file": secret_file, "incident-log": str(tmp_path / "incidents.jsonl"),
            "admin-token-file": secret_file, "trace-fetch-token-file": secret_file}


def start_and_stop(argv, what):
    """Starts argv (which carries --port-file), checks /healthz answers 200,
    then SIGTERM and a clean exit 0."""
    port_file = argv[argv.index("--port-file") + 1]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        def ready():
            if proc.poll() is not None:
                raise AssertionError(f"{what} exited with {proc.returncode}: {proc.stderr.read()[-3000:]}")
            try:
                with open(port_file) as f:
                    return json.load(f)
            except (OSError, ValueError):
                return None
        ports = wait_for(ready, 20, what=f"{what} port file")
        status, body, _ = http_get(ports["admin"], "/healthz")
        assert status == 200, (what, status, body)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, (what, proc.stderr.read()[-3000:])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("path,binary", CONFIGS, ids=[p for p, _ in CONFIGS])
def test_shipped_config_starts_and_stops(path, binary, tmp_path, dev_cert, secret_file):
    with open(os.path.join(REPO, path)) as f:
        doc = yaml.safe_load(f)
    overrides = path_overrides(tmp_path, dev_cert, secret_file)
    argv = [WSGATE if binary == "wsgate" else BACKEND, "--config", os.path.join(REPO, path),
            "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--port-file", str(tmp_path / "ports.json")]
    for key, value in doc.items():
        key = key.replace("_", "-")
        if key in overrides:
            argv += [f"--{key}", overrides[key]]
        else:  # a file path nobody overrides would make the test depend on this host
            assert not (isinstance(value, str) and value.startswith("/")), (path, key, value)
    start_and_stop(argv, path)


def systemd_exec_starts():
    out = []
    for unit in sorted(glob.glob(os.path.join(REPO, "deploy", "systemd", "*.service"))):
        with open(unit) as f:
            for line in f:
                if line.startswith("ExecStart="):
                    out.append((os.path.relpath(unit, REPO), line.split("=", 1)[1].strip()))
    return out


@pytest.mark.parametrize("unit,command", systemd_exec_starts(), ids=[u for u, _ in systemd_exec_starts()])
def test_systemd_command_line_starts_with_the_example_config(unit, command, tmp_path, dev_cert, secret_file):
    """The unit's ExecStart flags with the example config it installs: the
    host paths and addresses swapped for the test's, nothing else."""
    creds = tmp_path / "credentials"
    creds.mkdir()
    os.symlink(dev_cert["cert"], creds / "tls.crt")
    os.symlink(dev_cert["key"], creds / "tls.key")
    os.symlink(secret_file, creds / "jwt-secret")
    argv = shlex.split(command.replace("${CREDENTIALS_DIRECTORY}", str(creds)))
    argv[0] = WSGATE if os.path.basename(argv[0]) == "wsgate" else BACKEND
    assert os.path.basename(argv[0]) in ("wsgate", "wsgate-backend"), command
    i = argv.index("--config")
    argv[i + 1] = os.path.join(REPO, "deploy", "examples", os.path.basename(argv[i + 1]))
    assert os.path.exists(argv[i + 1]), argv[i + 1]
    for flag in ("--listen", "--admin"):
        argv[argv.index(flag) + 1] = "127.0.0.1:0"
    if "--incident-log" in argv:
        argv[argv.index("--incident-log") + 1] = str(tmp_path / "incidents.jsonl")
    # The example config names its own TLS and secret paths; the unit's flags override them.
    start_and_stop(argv + ["--port-file", str(tmp_path / "ports.json")], unit)


# ---------------------------------------------------------------- bind errors

BIND_CASES = [("wsgate", "--listen"), ("wsgate", "--admin"),
              ("wsgate-backend", "--listen"), ("wsgate-backend", "--admin")]


@pytest.mark.parametrize("binary,flag", BIND_CASES, ids=[f"{b}{f}" for b, f in BIND_CASES])
def test_port_taken_exits_1_naming_flag_and_address(binary, flag, secret_file):
    taken = held_port()
    try:
        addr = f"127.0.0.1:{taken.getsockname()[1]}"
        addrs = {"--listen": "127.0.0.1:0", "--admin": "127.0.0.1:0", flag: addr}
        if binary == "wsgate":
            argv = [WSGATE, "--upstream", "ws://127.0.0.1:9"]
        else:
            argv = [BACKEND, "--jwt-secret-file", secret_file]
        for k, v in addrs.items():
            argv += [k, v]
        r = run(argv)
    finally:
        taken.close()
    assert r.returncode == 1, (r.returncode, r.stderr)
    line = next((ln for ln in r.stderr.splitlines() if "cannot listen" in ln), "")
    assert flag in line and addr in line and "Address already in use" in line, r.stderr
    assert not SOURCE_LOCATION.search(r.stderr), r.stderr


# ---------------------------------------------------------------- bad values

PROXY_BAD = [
    ("upstream-trace-url", "https://127.0.0.1:9091/debug/traces/{correlation_id}"),
    ("incident-capacity", "-5"),
    ("incident-capacity", "0"),
    ("handshake-timeout-ms", "-1"),
    ("tls-handshake-timeout-ms", "0"),
    ("upstream-connect-timeout-ms", "0"),
    ("close-timeout-ms", "-1"),
    ("trace-fetch-timeout-ms", "0"),
    ("idle-timeout", "-1"),
    ("drain-timeout", "-1"),
    ("threads", "0"),
    ("listen", "127.0.0.1:70000"),
    ("admin", "127.0.0.1:65536"),
    ("max-connections", "0"),
    ("log-format", "xml"),
    ("log-level", "loud"),
    ("tap-mode", "strict"),
]
BACKEND_BAD = [
    ("threads", "0"),
    ("listen", "127.0.0.1:70000"),
    ("admin", "127.0.0.1:99999"),
    ("handshake-timeout", "0"),
    ("idle-timeout", "-1"),
    ("drain-timeout", "-1"),
    ("trace-capacity", "0"),
    ("log-format", "xml"),
    ("log-level", "loud"),
    ("context-policy", "lenient"),
]


def base_argv(binary, secret_file):
    if binary == "wsgate":
        return [WSGATE, "--upstream", "ws://127.0.0.1:9", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"]
    return [BACKEND, "--jwt-secret-file", secret_file, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"]


BAD = [("wsgate", k, v) for k, v in PROXY_BAD] + [("wsgate-backend", k, v) for k, v in BACKEND_BAD]


@pytest.mark.parametrize("binary,key,value", BAD, ids=[f"{b}-{k}={v}" for b, k, v in BAD])
def test_bad_value_exits_2_naming_the_key(binary, key, value, tmp_path, secret_file):
    # On the command line (the value after the flag wins over base_argv's)...
    r = run(base_argv(binary, secret_file) + [f"--{key}", value])
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert key in r.stderr, r.stderr
    # ...and as a key of the config file.
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"{key}: '{value}'\n")
    argv = base_argv(binary, secret_file)
    for flag in ("--listen", "--admin"):  # flags override the file: drop ours for the key under test
        if key == flag[2:]:
            i = argv.index(flag)
            del argv[i:i + 2]
    r = run(argv + ["--config", str(cfg)])
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert key in r.stderr, r.stderr


@pytest.mark.parametrize("binary", ["wsgate", "wsgate-backend"])
def test_unknown_config_key_exits_2_naming_it(binary, tmp_path, secret_file):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("log-level: info\nlog-levle: debug\n")
    r = run(base_argv(binary, secret_file) + ["--config", str(cfg)])
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "log-levle" in r.stderr, r.stderr


@pytest.mark.parametrize("binary", ["wsgate", "wsgate-backend"])
def test_version_and_exit_codes_in_help(binary):
    path = WSGATE if binary == "wsgate" else BACKEND
    r = run([path, "--version"])
    assert r.returncode == 0, r.stderr
    assert re.match(rf"^{binary} \d+\.\d+\.\d+", r.stdout), r.stdout
    r = run([path, "--help"])
    assert r.returncode == 0
    help_text = r.stdout
    assert "Exit codes" in help_text, help_text[-1500:]
    for code in ("0", "1", "2"):
        assert re.search(rf"^\s*{code}\s+\S", help_text, re.M), help_text[-1500:]


# ---------------------------------------------------------------- make run

@pytest.fixture
def dev_build(tmp_path):
    """A build directory for deploy/run-dev.sh: bin/ points at the binaries
    under test, dev-cert/ holds a fresh development certificate."""
    d = tmp_path / "build"
    (d / "bin").mkdir(parents=True)
    os.symlink(WSGATE, d / "bin" / "wsgate")
    os.symlink(BACKEND, d / "bin" / "wsgate-backend")
    subprocess.run([os.path.join(REPO, "deploy", "dev-cert.sh"), str(d / "dev-cert")], check=True,
                   stdout=subprocess.DEVNULL)
    return d


def run_dev_env(**ports):
    env = dict(os.environ, RUN_UP_TIMEOUT="30")
    for name in ("BACKEND_LISTEN", "BACKEND_ADMIN", "PROXY_LISTEN", "PROXY_ADMIN"):
        env[name] = ports.get(name) or f"127.0.0.1:{free_port()}"
    return env


def stop_group(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_run_dev_with_admin_port_taken_fails_and_names_the_process(dev_build):
    taken = held_port()
    proc = subprocess.Popen([os.path.join(REPO, "deploy", "run-dev.sh"), str(dev_build)],
                            env=run_dev_env(PROXY_ADMIN=f"127.0.0.1:{taken.getsockname()[1]}"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        stop_group(proc)
        taken.close()
    assert proc.returncode != 0, (out, err)
    assert "is up" not in out, out
    assert "wsgate exited with status 1" in err, err
    assert "--admin" in err and not SOURCE_LOCATION.search(err), err


def test_run_dev_says_up_when_both_answer(dev_build):
    env = run_dev_env()
    proc = subprocess.Popen([os.path.join(REPO, "deploy", "run-dev.sh"), str(dev_build)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        seen = ""
        while "is up" not in seen and time.monotonic() < deadline and proc.poll() is None:
            seen += proc.stdout.readline()
        assert "wsgate is up" in seen, seen
        for addr, path in ((env["PROXY_ADMIN"], "/readyz"), (env["BACKEND_ADMIN"], "/healthz")):
            assert http_get(int(addr.rsplit(":", 1)[1]), path)[0] == 200
    finally:
        stop_group(proc)


def test_run_dev_names_a_process_that_never_answers(dev_build):
    """A proxy that starts but never binds (a stand-in that only sleeps):
    the script gives up after RUN_UP_TIMEOUT, names it, exits non-zero."""
    fake = dev_build / "bin" / "wsgate"
    fake.unlink()
    fake.write_text("#!/bin/sh\nexec sleep 120\n")
    fake.chmod(0o755)
    env = run_dev_env()
    env["RUN_UP_TIMEOUT"] = "3"
    proc = subprocess.Popen([os.path.join(REPO, "deploy", "run-dev.sh"), str(dev_build)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        stop_group(proc)
    assert proc.returncode != 0, (out, err)
    assert "is up" not in out, out
    assert f"wsgate did not answer http://{env['PROXY_ADMIN']}/readyz within 3s" in err, err
    assert "wsgate-backend did not answer" not in err, err


def test_unloadable_tls_certificate_exits_1_naming_the_file(tmp_path):
    bad = tmp_path / "not-a-cert.pem"
    bad.write_text("not a certificate\n")
    r = run([WSGATE, "--upstream", "ws://127.0.0.1:9", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
             "--tls-cert", str(bad), "--tls-key", str(bad)])
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert str(bad) in r.stderr, r.stderr
