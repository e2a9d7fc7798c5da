"""Resource bounds at the client listener, black-box against the real wsgate:
a handshake that ends frees its session at once (timer included), limits are
checked at accept (an idle TCP connection counts), accept errors back off
instead of spinning, and shutdown does not wait on idle probes."""
import os
import signal
import socket
import time

from conftest import rss_kib
from proxy_fixtures import WSGATE
from wsgate_harness import Proc, fd_count, http_get, metric, raw_connect, read_http_response, upgrade_request, wait_for

# ASan keeps freed memory in a quarantine (256 MiB by default), which would
# hide whether sessions are freed; without one, RSS follows live memory.
ASAN_ENV = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=0:thread_local_quarantine_size_kb=0")
# Connect+close probes sent before waiting for the proxy to end them all.
WAVE = 100


def tls_args(dev_cert):
    return ["--tls-cert", dev_cert["cert"], "--tls-key", dev_cert["key"]]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def closed_by_peer(sock, timeout):
    """True when the proxy ends the connection (EOF, reset, or a 503) within timeout."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(4096)
    except socket.timeout:
        return False
    except OSError:
        return True
    return data == b"" or data.startswith(b"HTTP/1.1 503")


def exit_seconds_after_sigterm(proxy):
    start = time.monotonic()
    proxy.signal(signal.SIGTERM)
    proxy.wait(30)
    return time.monotonic() - start


def test_connect_close_flood_frees_every_handshake_at_once(upstream, proxy_factory, dev_cert):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}", *tls_args(dev_cert), env=ASAN_ENV)
    port, admin = proxy.ports["listen"], proxy.ports["admin"]
    pid = proxy.proc.pid
    seen = 0

    def ended():
        return metric(admin, "wsgate_handshakes_total", outcome="tls_failed") + \
            metric(admin, "wsgate_handshakes_total", outcome="client_gone")

    def flood(waves):
        nonlocal seen
        for _ in range(waves):
            for _ in range(WAVE):
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
            seen += WAVE
            wait_for(lambda: ended() >= seen, timeout=20, what="every probe seen to end")
            # Each probe is gone as soon as the proxy reads its FIN, long
            # before the 10 s TLS handshake timeout; the gauge drops when the
            # session is destroyed.
            assert metric(admin, "wsgate_handshakes_in_flight") == 0

    # Waves bound the handshakes in flight, so the warm-up brings the heap to
    # its working size and what the measured waves add is what they keep.
    flood(3)
    before = rss_kib(pid)
    flood(30)
    kept_kib = rss_kib(pid) - before
    # A session kept for each probe would hold over 10 KiB (its TLS state
    # alone): 30 MiB over these 3,000. With nothing kept, RSS wanders by up
    # to 2 MiB (allocator caches).
    assert kept_kib < 8 * 1024, f"RSS grew {kept_kib} KiB over {30 * WAVE} connect+close probes"
    # Nothing is left for shutdown to wait for.
    assert exit_seconds_after_sigterm(proxy) < 5


def test_idle_probe_does_not_delay_shutdown(upstream, proxy_factory, dev_cert):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}", *tls_args(dev_cert))
    probe = socket.create_connection(("127.0.0.1", proxy.ports["listen"]), timeout=5)
    wait_for(lambda: metric(proxy.ports["admin"], "wsgate_handshakes_in_flight") == 1, what="probe accepted")
    # The handshake timeout is 10 s; drain ends a handshake that has not
    # reached the upstream instead of waiting for it.
    assert exit_seconds_after_sigterm(proxy) < 5
    assert closed_by_peer(probe, 2)
    probe.close()


def test_per_ip_cap_counts_idle_connections_at_accept(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}", "--max-connections-per-ip", "3")
    port, admin = proxy.ports["listen"], proxy.ports["admin"]
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    wait_for(lambda: metric(admin, "wsgate_handshakes_in_flight") == 3, what="three idle connections accepted")
    baseline_fds = fd_count(proxy.proc.pid)
    # A fourth connection from the same IP, even a well-formed upgrade, is refused.
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(upgrade_request("/echo"))
    status, _, _ = read_http_response(s, 5)
    s.close()
    assert status == 503
    extra = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(20)]
    assert all(closed_by_peer(x, 5) for x in extra)
    # Refused ones are read for at most a second after their 503, then closed.
    wait_for(lambda: fd_count(proxy.proc.pid) <= baseline_fds + 2, timeout=5, what="refused connections closed")
    assert metric(admin, "wsgate_limit_refusals_total", limit="connections_per_ip") >= 21
    for x in extra + held:
        x.close()
    wait_for(lambda: metric(admin, "wsgate_handshakes_in_flight") == 0, what="idle connections released")
    sock, status, _, _ = raw_connect(port, "/echo")
    assert status == 101
    sock.close()


def test_handshakes_in_flight_are_capped(upstream, proxy_factory, dev_cert):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}", *tls_args(dev_cert), "--max-handshakes-in-flight", "4")
    port, admin = proxy.ports["listen"], proxy.ports["admin"]
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(4)]
    wait_for(lambda: metric(admin, "wsgate_handshakes_in_flight") == 4, what="four handshakes in flight")
    extra = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(10)]
    assert all(closed_by_peer(x, 5) for x in extra)
    assert metric(admin, "wsgate_limit_refusals_total", limit="handshakes_in_flight") == 10
    # A refused connection leaves the count once its worker has run the
    # session's last handler, just after the peer saw the close.
    wait_for(lambda: metric(admin, "wsgate_handshakes_in_flight") == 4, timeout=5,
             what="refused handshakes released, the four held still counted")
    for x in extra + held:
        x.close()


def test_fd_exhaustion_backs_off_and_recovers(upstream):
    # 64 fds: the proxy fits its connection cap to them, and the refused
    # connections it still reads briefly push it to EMFILE on accept.
    proxy = Proc(["prlimit", "--nofile=64:64", WSGATE, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
                  "--upstream", f"ws://127.0.0.1:{upstream.ws}", "--log-level", "info"])
    try:
        port, admin = proxy.ports["listen"], proxy.ports["admin"]
        pid = proxy.proc.pid
        assert "serving at most" in proxy.logs()  # the cap was fitted to the fd limit, and said so
        clients = []
        for _ in range(150):
            try:
                clients.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            except OSError:
                break
        cpu_before, t_before = cpu_seconds(pid), time.monotonic()
        time.sleep(3)
        cpu_share = (cpu_seconds(pid) - cpu_before) / (time.monotonic() - t_before)
        assert cpu_share < 0.5, f"proxy used {cpu_share:.0%} of a core while out of fds"
        assert len(proxy.logs().splitlines()) < 500
        wait_for(lambda: http_get(admin, "/healthz", timeout=2)[0] == 200, timeout=10, what="/healthz answering")
        assert metric(admin, "wsgate_accept_errors_total", reason="fd_limit") >= 1
        for c in clients:
            c.close()
        wait_for(lambda: metric(admin, "wsgate_handshakes_in_flight") == 0, timeout=10, what="connections released")

        def session_works():
            try:
                sock, status, _, _ = raw_connect(port, "/echo", timeout=5)
            except OSError:
                return False
            sock.close()
            return status == 101
        wait_for(session_works, timeout=10, what="a session after the fds came back")
    finally:
        proxy.stop()
