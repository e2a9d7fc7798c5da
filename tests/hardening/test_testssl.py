"""testssl.sh (Debian package testssl.sh) against wsgate's TLS listener with
the dev certificate: protocols, standard cipher categories, forward secrecy
and the vulnerability checks (about 2-3 minutes). Passes when no finding of
those sections is worse than LOW/WARN and no protocol below TLS 1.2 is
offered. Certificate findings (chain of trust, revocation, CAA) describe the
self-signed dev certificate, not the listener, and are reported only.
testssl.sh 3.0.x has no overall grade ("rating" arrived in 3.1): when the
installed version writes one, it is printed and must be A or better.
The JSON report is left in $WSGATE_TESTSSL_JSON (default: the test's tmp dir)
for docs/reliability.md."""
import json
import os
import shutil
import subprocess

import pytest

TESTSSL = shutil.which("testssl") or shutil.which("testssl.sh")
pytestmark = pytest.mark.skipif(not TESTSSL, reason="testssl.sh not installed (Debian package testssl.sh)")

BAD = {"HIGH", "CRITICAL", "MEDIUM"}


def test_testssl_reports_no_vulnerability(proxy_factory, capture, dev_cert, tmp_path):
    proxy = proxy_factory(f"ws://127.0.0.1:{capture.port}", "--tls-cert", dev_cert["cert"],
                          "--tls-key", dev_cert["key"])
    out = os.environ.get("WSGATE_TESTSSL_JSON") or str(tmp_path / "testssl.json")
    if os.path.exists(out):
        os.unlink(out)
    port = proxy.ports["listen"]
    run = subprocess.run([TESTSSL, "--quiet", "--color", "0", "--warnings", "off", "--add-ca", dev_cert["ca"],
                          "-p", "-s", "-f", "-U", "--jsonfile", out, f"127.0.0.1:{port}"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=420)
    text = run.stdout.decode(errors="replace")
    assert os.path.exists(out), text[-3000:]
    with open(out) as f:
        findings = json.load(f)
    if isinstance(findings, dict):  # --jsonfile-pretty style
        findings = [e for sec in findings.get("scanResult", [{}]) for v in sec.values()
                    if isinstance(v, list) for e in v]
    assert findings, text[-3000:]
    by_id = {e["id"]: e for e in findings}
    cert_ids = ("cert", "DNS_CAA", "intermediate", "chain_of_trust", "OCSP")
    bad = [e for e in findings if e["severity"] in BAD and not e["id"].startswith(cert_ids)]
    print("testssl findings:", {e["id"]: e["severity"] for e in findings})
    assert not bad, bad
    for old in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        assert by_id[old]["finding"].startswith("not offered"), by_id[old]
    assert by_id["TLS1_2"]["finding"].startswith("offered") or by_id["TLS1_3"]["finding"].startswith("offered")
    for vuln in ("heartbleed", "CCS", "ticketbleed", "ROBOT", "secure_renego", "secure_client_renego",
                 "CRIME_TLS", "POODLE_SSL", "fallback_SCSV", "SWEET32", "FREAK", "DROWN", "LOGJAM",
                 "BEAST", "LUCKY13", "RC4"):
        if vuln in by_id:
            assert by_id[vuln]["severity"] in ("OK", "INFO", "LOW"), by_id[vuln]
    grade = [e for e in findings if e["id"] in ("overall_grade", "final_grade")]
    if grade:
        print("testssl grade:", grade[0]["finding"])
        assert grade[0]["finding"].startswith("A"), grade
