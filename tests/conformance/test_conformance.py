"""Differential conformance: every case of cases.py runs against each reference
echo server (Beast, python3-websockets, node ws) directly and through wsgate
(--tap-mode enforce) in front of the same server.

- Ordinary cases: the outcomes (handshake, data frames, pongs, close code and
  reason, who closed, how TCP ended) must be identical.
- Intervention cases (case.proxy_code): wsgate's tap closes the session
  itself. The client must see proxy_code from the server side, a clean TCP
  end, only data the server had echoed directly (a prefix), and wsgate must
  count a close by the proxy with that code.
- Handshake refusals (case.proxy_status): wsgate answers with its own status
  before any upstream is involved; the reference server must refuse too
  (any non-101) unless noted.
A mismatch is re-run once; a pass on the re-run is reported as flaky.
Cases listed in cases.KNOWN_BUGS are wsgate bugs this suite found: they are
expected to fail (xfail) and fail the suite once they pass, so the list is
kept honest.
"""
import time

import pytest

import wsconf
from wsgate_harness import wait_for


def _intervention_problems(case, direct, through):
    problems = []
    code = through["close"][0] if through["close"] else None
    if code != case.proxy_code:
        problems.append(f"client saw close {code}, expected {case.proxy_code} from wsgate")
    closer = "client" if through.get("script_closes") else "server"
    if through["closer"] != closer:
        problems.append(f"closer {through['closer']}, expected {closer}")
    if through["tcp"] != "eof":
        problems.append(f"TCP ended with {through['tcp']}, expected a clean EOF")
    # Both runs echo a prefix of the same message stream: what was sent before
    # the violating frame. How much of it comes back before the close differs
    # (the proxy closes at once; python websockets itself races its handler).
    short, long_ = sorted((through["data"], direct["data"]), key=len)
    if long_[:len(short)] != short:
        problems.append("data echoed before the close differs from the direct run (not a prefix)")
    return problems


def _compare(case, target):
    direct = wsconf.run_case(target.direct, case)
    if case.request is not None and case.proxy_status is not None:
        through = wsconf.run_case(target.through, case)
        problems = []
        if through["status"] != case.proxy_status:
            problems.append(f"wsgate answered {through['status']}, expected {case.proxy_status}")
        if through["tcp"] != "eof":
            problems.append(f"after the refusal TCP ended with {through['tcp']}")
        kind = "expected-difference" if direct["status"] != through["status"] else "identical"
        return direct, through, problems, kind
    if case.proxy_code is not None:
        before = target.proxy_closes(case.proxy_code)
        through = wsconf.run_case(target.through, case)
        problems = _intervention_problems(case, direct, through)
        if not problems:
            try:
                wait_for(lambda: target.proxy_closes(case.proxy_code) > before, timeout=8,
                         what="wsgate_closes_total{initiator=proxy}")
            except AssertionError:
                problems.append(f"wsgate did not count a {case.proxy_code} close by the proxy")
        same = wsconf.key(direct) == wsconf.key(through)
        return direct, through, problems, "identical" if same else "expected-difference"
    through = wsconf.run_case(target.through, case)
    problems = []
    if wsconf.key(direct) != wsconf.key(through):
        d, t = wsconf.key(direct), wsconf.key(through)
        for k in d:
            if d[k] != t[k]:
                problems.append(f"{k}: direct={d[k]!r} through={t[k]!r}")
    return direct, through, problems, "identical"


def test_case(case, target, record):
    t0 = time.monotonic()
    direct, through, problems, kind = _compare(case, target)
    flaky = False
    if case.known_bug:
        record({"case": case.id, "server": target.name,
                "result": "known-bug" if problems else "fixed?", "flaky": False,
                "problems": problems, "seconds": round(time.monotonic() - t0, 3),
                "direct": _summary(direct), "through": _summary(through)})
        if problems:
            pytest.xfail(case.known_bug + "\n  " + "\n  ".join(problems))
        pytest.fail(f"case {case.id} passes now: remove it from cases.KNOWN_BUGS")
    if problems:
        first = problems
        direct, through, problems, kind = _compare(case, target)
        flaky = not problems
        if flaky:
            problems = first
    record({"case": case.id, "server": target.name, "result": "fail" if (problems and not flaky) else kind,
            "flaky": flaky, "problems": problems, "seconds": round(time.monotonic() - t0, 3),
            "direct": _summary(direct), "through": _summary(through)})
    if problems and not flaky:
        pytest.fail(f"case {case.id} ({case.desc}) on {target.name}:\n  " + "\n  ".join(problems)
                    + f"\n  direct:  {wsconf.key(direct)}\n  through: {wsconf.key(through)}")


def _summary(o):
    """Short outcome for the results table."""
    if o["status"] != 101:
        return f"HTTP {o['status']}"
    if o.get("protocol") is not None or (o["close"] is None and o["tcp"] is None):
        return "101"
    parts = []
    if o["data"]:
        parts.append(f"{len(o['data'])} echo")
    code = o["close"][0] if o["close"] else "none"
    who = {"server": "srv", "client": "cli", None: "-"}[o["closer"]]
    parts.append(f"{code}/{who}")
    if o["tcp"] != "eof":
        parts.append(o["tcp"])
    return " ".join(parts)
