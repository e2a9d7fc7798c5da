"""An SSL Labs-style grade computed from a testssl.sh JSON report.

testssl.sh 3.0.x (Debian 12) prints no overall grade; its "rating" arrived in
3.1 and follows the SSL Labs Server Rating Guide. This is that guide, applied
to the findings testssl 3.0 does write (-p protocols, -E ciphers per
protocol, -S certificate, -U vulnerabilities):

  score = 0.3 * protocol + 0.3 * key exchange + 0.4 * cipher strength
  protocol / cipher: (best + worst) / 2; key exchange: the weakest of the
  certificate key and every ephemeral key, as RSA-equivalent bits.
  A >= 80, B >= 65, C >= 50, D >= 35, E >= 20, else F.
  Caps: B if TLS 1.0/1.1 is offered, if a cipher lacks forward secrecy or if
  none is AEAD; F if SSLv2/SSLv3 is offered or a vulnerability is HIGH or
  CRITICAL; T (trust) if the chain does not verify. A+ needs HSTS, which a
  WebSocket listener does not send, so A is the best this grader gives.
"""
import re

PROTOCOL_SCORE = {"SSLv2": 0, "SSLv3": 80, "TLS1": 90, "TLS1_1": 95, "TLS1_2": 100, "TLS1_3": 100}
# "... ECDH 253   AESGCM      256 ..."; static RSA key exchange has no bits.
CIPHER_RE = re.compile(r"\s(ECDH|DH|RSA)\s+(?:(\d+)\s+)?(\S+)\s+(\d+)\s")
AEAD = ("AESGCM", "ChaCha20", "AESCCM", "AESCCM8")
VULN_IDS = ("heartbleed", "CCS", "ticketbleed", "ROBOT", "secure_renego", "secure_client_renego", "CRIME_TLS",
            "BREACH", "POODLE_SSL", "fallback_SCSV", "SWEET32", "FREAK", "DROWN", "LOGJAM", "BEAST", "LUCKY13",
            "RC4", "winshock")


def rsa_equivalent_bits(kind, bits):
    """NIST SP 800-57 equivalences; x25519 is reported as 253 bits."""
    if kind in ("EC", "ECDH"):
        for floor, rsa in ((512, 15360), (384, 7680), (250, 3072), (224, 2048), (160, 1024)):
            if bits >= floor:
                return rsa
        return 512
    return bits


def key_exchange_score(rsa_bits):
    for floor, score in ((4096, 100), (2048, 90), (1024, 80), (512, 40)):
        if rsa_bits >= floor:
            return score
    return 20 if rsa_bits > 0 else 0


def cipher_score(bits):
    if bits >= 256:
        return 100
    if bits >= 128:
        return 80
    return 20 if bits > 0 else 0


def letter(score):
    for floor, grade in ((80, "A"), (65, "B"), (50, "C"), (35, "D"), (20, "E")):
        if score >= floor:
            return grade
    return "F"


def worse(a, b):
    order = "ABCDEFT"  # T (trust) is reported over any letter, as SSL Labs does
    return a if order.index(a[0]) >= order.index(b[0]) else b


def grade(findings):
    """Returns (grade, score, reasons) for a list of testssl JSON findings."""
    by_id = {e["id"]: e for e in findings}
    reasons = []
    offered = [p for p in PROTOCOL_SCORE if p in by_id and by_id[p]["finding"].startswith("offered")]
    if not offered:
        raise ValueError("no protocol findings: run testssl with -p")
    ciphers = [CIPHER_RE.search(e["finding"]) for e in findings if e["id"].startswith("cipher-tls")]
    ciphers = [m for m in ciphers if m]
    if not ciphers:
        raise ValueError("no per-protocol cipher findings: run testssl with -E")
    key = re.match(r"(EC|RSA|DSA)\s+(\d+)", by_id.get("cert_keySize", {}).get("finding", ""))
    if not key:
        raise ValueError("no certificate key size: run testssl with -S")

    protocol = (max(PROTOCOL_SCORE[p] for p in offered) + min(PROTOCOL_SCORE[p] for p in offered)) / 2
    kx_bits = [rsa_equivalent_bits(key.group(1), int(key.group(2)))]
    kx_bits += [rsa_equivalent_bits(m.group(1), int(m.group(2))) for m in ciphers
                if m.group(1) != "RSA" and m.group(2)]
    kx = key_exchange_score(min(kx_bits))
    strengths = [cipher_score(int(m.group(4))) for m in ciphers]
    cipher = (max(strengths) + min(strengths)) / 2
    score = 0.3 * protocol + 0.3 * kx + 0.4 * cipher
    result = letter(score)

    if any(p in offered for p in ("SSLv2", "SSLv3")):
        result = worse(result, "F")
        reasons.append("SSLv2/SSLv3 offered")
    if any(p in offered for p in ("TLS1", "TLS1_1")):
        result = worse(result, "B")
        reasons.append("TLS 1.0/1.1 offered")
    if any(m.group(1) == "RSA" for m in ciphers):
        result = worse(result, "B")
        reasons.append("a cipher without forward secrecy")
    if not any(m.group(3) in AEAD for m in ciphers):
        result = worse(result, "B")
        reasons.append("no AEAD cipher")
    for vid in VULN_IDS:
        if vid in by_id and by_id[vid]["severity"] in ("HIGH", "CRITICAL"):
            result = worse(result, "F")
            reasons.append(f"{vid}: {by_id[vid]['finding']}")
    trust = by_id.get("cert_chain_of_trust", {}).get("finding", "")
    if not trust.startswith("passed"):
        result = worse(result, "T")
        reasons.append(f"chain of trust: {trust or 'not checked'}")
    return result, round(score, 1), reasons
