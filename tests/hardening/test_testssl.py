"""testssl.sh (Debian package testssl.sh) against wsgate's TLS listener with
the dev certificate (its CA added): protocols, every cipher per protocol,
forward secrecy, the certificate and the vulnerability checks (about 3
minutes). Passes when no finding of those sections is worse than LOW/WARN, no
protocol below TLS 1.2 is offered, and the grade is A or better.
Certificate findings (revocation, CAA) describe the dev certificate, not the
listener, and are reported only. testssl.sh 3.0.x writes no overall grade
("rating" arrived in 3.1), so ssl_rating.py computes it from the findings by
the SSL Labs guide; when the installed testssl writes its own, that must be
A or better too.
The JSON report is left in $WSGATE_TESTSSL_JSON (default: the test's tmp dir)
for docs/reliability.md."""
import json
import os
import shutil
import subprocess

import pytest

import ssl_rating

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
                          "-p", "-E", "-f", "-S", "-U", "--jsonfile", out, f"127.0.0.1:{port}"],
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
    computed, score, reasons = ssl_rating.grade(findings)
    print(f"computed grade: {computed} (score {score}) {reasons}")
    assert computed.startswith("A"), (computed, score, reasons)
    assert not reasons, reasons
    grade = [e for e in findings if e["id"] in ("overall_grade", "final_grade")]
    if grade:
        print("testssl grade:", grade[0]["finding"])
        assert grade[0]["finding"].startswith("A"), grade


# The grader itself, on findings shaped like testssl 3.0.8's.
def finding(fid, text, severity="INFO"):
    return {"id": fid, "finding": text, "severity": severity}


def report(protocols=("TLS1_2", "TLS1_3"), ciphers=None, key="EC 256 bits", trust="passed.", extra=()):
    out = [finding(p, "offered" if p in protocols else "not offered") for p in ssl_rating.PROTOCOL_SCORE]
    ciphers = ciphers or [
        "TLS 1.2   xc02c   ECDHE-ECDSA-AES256-GCM-SHA384     ECDH 253   AESGCM      256      TLS_X",
        "TLS 1.3   x1301   TLS_AES_128_GCM_SHA256            ECDH 253   AESGCM      128      TLS_Y"]
    out += [finding(f"cipher-tls1_x_{i}", c) for i, c in enumerate(ciphers)]
    out += [finding("cert_keySize", key), finding("cert_chain_of_trust", trust), *extra]
    return out


def test_rating_modern_listener_is_a():
    assert ssl_rating.grade(report()) == ("A", 93.0, [])


def test_rating_caps():
    assert ssl_rating.grade(report(protocols=("TLS1", "TLS1_2")))[0] == "B"
    rsa_kx = "TLS 1.2   x9c     AES128-GCM-SHA256                 RSA        AESGCM      128      TLS_RSA"
    assert ssl_rating.grade(report(ciphers=[rsa_kx]))[0] == "B"
    assert ssl_rating.grade(report(ciphers=[rsa_kx.replace("RSA        ", "RSA 2048   ")]))[0] == "B"
    cbc = "TLS 1.2   xc013   ECDHE-RSA-AES128-SHA              ECDH 253   AES         128      TLS_Z"
    assert ssl_rating.grade(report(ciphers=[cbc]))[0] == "B"
    assert ssl_rating.grade(report(protocols=("SSLv3", "TLS1_2")))[0] == "F"
    assert ssl_rating.grade(report(extra=[finding("heartbleed", "VULNERABLE", "CRITICAL")]))[0] == "F"
    assert ssl_rating.grade(report(trust="failed (self signed CA in chain)."))[0] == "T"


def test_rating_scores_weak_keys_and_ciphers_down():
    weak = "TLS 1.2   x0a     DES-CBC3-SHA                      ECDH 253   3DES        112      TLS_W"
    grade, score, _ = ssl_rating.grade(report(ciphers=[weak], key="RSA 1024 bits"))
    assert score == 0.3 * 100 + 0.3 * 80 + 0.4 * 20
    assert grade == "C"  # 62 is a C; the no-AEAD cap (B) is not worse
    with pytest.raises(ValueError):
        ssl_rating.grade([finding("TLS1_2", "offered")])
