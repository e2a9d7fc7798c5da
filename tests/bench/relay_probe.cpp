// relay-probe: a minimal single-threaded TCP byte relay in two variants that
// differ only in the I/O mechanism, to measure a relay's own CPU per round
// trip: an nginx-style edge-triggered epoll loop (--mode epoll) and an
// io_uring loop with multishot recv into a provided buffer ring (--mode uring).
// It parses nothing; the WebSocket upgrade and frames pass through unchanged.
// Built where liburing is installed (tests/bench/CMakeLists.txt); see
// tests/bench/relay_probe.md.
//
//   g++ -std=c++20 -O2 -Wall -Wextra -Werror -o relay-probe relay_probe.cpp -luring
#include <arpa/inet.h>
#include <fcntl.h>
#include <liburing.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <utility>
#include <vector>

namespace {

constexpr std::size_t kBufSize =
    16 * 1024;  // per-direction buffer (epoll) / per provided buffer (uring)

[[noreturn]] void die(const char* what, int err) {
  std::fprintf(stderr, "relay-probe: %s: %s\n", what, std::strerror(err));
  std::exit(1);
}
void warn(const char* what, int err) {
  std::fprintf(stderr, "relay-probe: %s: %s\n", what, std::strerror(err));
}

struct Address {
  sockaddr_storage ss{};
  socklen_t len = 0;
};

// "host:port" (or "[v6]:port") to a socket address; exits on failure.
Address resolve(const std::string& hostport, const char* flag) {
  auto colon = hostport.rfind(':');
  if (colon == std::string::npos) {
    std::fprintf(stderr, "relay-probe: %s: expected host:port, got '%s'\n", flag, hostport.c_str());
    std::exit(2);
  }
  std::string host = hostport.substr(0, colon), port = hostport.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    std::fprintf(stderr, "relay-probe: getaddrinfo %s: %s\n", hostport.c_str(), gai_strerror(rc));
    std::exit(2);
  }
  Address a;
  std::memcpy(&a.ss, res->ai_addr, res->ai_addrlen);
  a.len = res->ai_addrlen;
  freeaddrinfo(res);
  return a;
}

void set_nodelay(int fd) {
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
    warn("setsockopt TCP_NODELAY", errno);
}

int open_listener(const Address& a, int flags) {
  int fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
  if (fd < 0) die("socket", errno);
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
    die("setsockopt SO_REUSEADDR", errno);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&a.ss), a.len) < 0) die("bind", errno);
  if (listen(fd, 4096) < 0) die("listen", errno);
  return fd;
}

void write_port_file(const std::string& path, int lfd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(lfd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) die("getsockname", errno);
  int port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (path.empty()) return;
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) die(("fopen " + tmp).c_str(), errno);
  std::fprintf(f, "{\"listen\": %d}\n", port);
  if (std::fclose(f) != 0) die(("fclose " + tmp).c_str(), errno);
  if (std::rename(tmp.c_str(), path.c_str()) < 0) die(("rename " + tmp).c_str(), errno);
}

// SIGINT/SIGTERM are blocked and read from a signalfd that each loop watches,
// so a signal arriving just before the loop blocks is never lost.
int make_signalfd() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (sigprocmask(SIG_BLOCK, &set, nullptr) < 0) die("sigprocmask", errno);
  int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) die("signalfd", errno);
  signal(SIGPIPE, SIG_IGN);
  return fd;
}

// ---------------------------------------------------------------- epoll mode
namespace ep {

struct Session;
struct Endpoint {
  Session* s;
  int side;  // 0 client, 1 upstream
};
// Direction i reads fd[i] and writes fd[1 - i]: 0 client->upstream, 1 upstream->client.
struct Dir {
  char buf[kBufSize];
  std::size_t len = 0, off = 0;  // buf[off, len) still to send
  bool blocked = false;  // the destination returned EAGAIN / a short send: wait for EPOLLOUT
};
struct Session {
  int fd[2] = {-1, -1};
  Endpoint ep[2];
  Dir dir[2];
  bool connected = false, closed = false;
};

struct Loop {
  int epfd, lfd, sfd;
  Address upstream;
  std::vector<Session*> dead;  // closed during this batch; freed after it

  void close_session(Session* s) {
    if (s->closed) return;
    s->closed = true;
    for (int fd : s->fd)
      if (fd >= 0) close(fd);
    dead.push_back(s);
  }

  // Moves bytes of direction i: first what is left in its buffer, then
  // recv/send until the source returns EAGAIN or the destination blocks.
  void pump(Session* s, int i) {
    Dir& d = s->dir[i];
    int src = s->fd[i], dst = s->fd[1 - i];
    if (d.blocked) return;
    for (;;) {
      while (d.off < d.len) {
        ssize_t n = send(dst, d.buf + d.off, d.len - d.off, MSG_NOSIGNAL);
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN) {
            d.blocked = true;
            return;
          }
          warn("send", errno);
          return close_session(s);
        }
        d.off += static_cast<std::size_t>(n);
        if (d.off < d.len) {
          d.blocked = true;
          return;
        }  // short: the rest waits for EPOLLOUT
      }
      d.off = d.len = 0;
      ssize_t n = recv(src, d.buf, kBufSize, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return;
        warn("recv", errno);
        return close_session(s);
      }
      if (n == 0) return close_session(s);  // nothing pending in this direction: close both
      d.len = static_cast<std::size_t>(n);
    }
  }

  void on_connected(Session* s) {
    s->connected = true;
    set_nodelay(s->fd[1]);
    pump(s, 0);
    if (!s->closed) pump(s, 1);
  }

  void accept_all() {
    for (;;) {
      int cfd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (cfd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno != EAGAIN) warn("accept4", errno);
        return;
      }
      set_nodelay(cfd);
      int ufd = socket(upstream.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (ufd < 0) {
        warn("socket", errno);
        close(cfd);
        continue;
      }
      auto* s = new Session;
      s->fd[0] = cfd;
      s->fd[1] = ufd;
      int rc = connect(ufd, reinterpret_cast<const sockaddr*>(&upstream.ss), upstream.len);
      if (rc < 0 && errno != EINPROGRESS) {
        warn("connect", errno);
        close(cfd);
        close(ufd);
        delete s;
        continue;
      }
      bool ok = true;
      for (int side = 0; side < 2 && ok; ++side) {
        s->ep[side] = {s, side};
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.ptr = &s->ep[side];
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd[side], &ev) < 0) {
          warn("epoll_ctl ADD", errno);
          ok = false;
        }
      }
      if (!ok)
        close_session(s);
      else if (rc == 0)
        on_connected(s);
    }
  }

  void on_event(Endpoint* e, uint32_t events) {
    Session* s = e->s;
    if (s->closed) return;
    if (!s->connected) {
      if (e->side != 1 || !(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
        return;  // client data waits for upstream
      int err = 0;
      socklen_t len = sizeof err;
      if (getsockopt(s->fd[1], SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
      if (err != 0) {
        warn("connect", err);
        return close_session(s);
      }
      return on_connected(s);
    }
    if (events & EPOLLOUT) {  // this side can take more: drain what waits for it, then resume
                              // reading the other
      Dir& d = s->dir[1 - e->side];
      d.blocked = false;
      pump(s, 1 - e->side);
      if (s->closed) return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) pump(s, e->side);
  }

  int run() {
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) die("epoll_create1", errno);
    epoll_event ev{};
    ev.events = EPOLLIN;  // level-triggered; accept4 until EAGAIN anyway
    ev.data.ptr = &lfd;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) < 0) die("epoll_ctl ADD listener", errno);
    ev.data.ptr = &sfd;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev) < 0) die("epoll_ctl ADD signalfd", errno);
    std::vector<epoll_event> events(512);
    for (;;) {
      int n = epoll_wait(epfd, events.data(), static_cast<int>(events.size()), -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        die("epoll_wait", errno);
      }
      for (int k = 0; k < n; ++k) {
        void* p = events[k].data.ptr;
        if (p == &sfd) return 0;
        if (p == &lfd)
          accept_all();
        else
          on_event(static_cast<Endpoint*>(p), events[k].events);
      }
      for (Session* s : dead) delete s;
      dead.clear();
    }
  }
};

}  // namespace ep

// ---------------------------------------------------------------- uring mode
namespace ur {

constexpr unsigned kQueueDepth = 4096;
constexpr unsigned kBufCount = 1024;  // provided buffers (a power of two), kBufSize each: 16 MiB
constexpr std::size_t kHighWater =
    64;  // buffers queued in one direction before its recv is cancelled
constexpr std::size_t kLowWater = 16;  // ... and re-armed once the queue is down to this
constexpr int kGroup = 0;

// user_data: a Session pointer (16-byte aligned) with the operation in the
// low 4 bits, or one of the small constants below.
enum : uint64_t { kAccept = 1, kSignal = 2, kIgnore = 3 };
enum Op : uint64_t { kConnect = 1, kRecv0 = 2, kRecv1 = 3, kSend0 = 4, kSend1 = 5 };

struct Chunk {
  uint16_t bid;
  uint32_t len, off;
};
// Direction i reads fd[i] and writes fd[1 - i]: 0 client->upstream, 1 upstream->client.
struct Dir {
  std::deque<Chunk> q;  // received, not yet fully sent; the front is in flight when sending
  bool recv_armed = false, cancel_sent = false, sending = false, eof = false, starved = false;
};
struct alignas(16) Session {
  int fd[2] = {-1, -1};
  Dir dir[2];
  int inflight = 0;  // armed multishot recvs, sends, the connect, starved-list membership
  bool connected = false, closing = false;
};

struct Loop {
  io_uring ring{};
  int lfd, sfd;
  Address upstream;
  io_uring_buf_ring* br = nullptr;
  char* bufs = nullptr;
  unsigned free_bufs = kBufCount;
  std::vector<std::pair<Session*, int>>
      starved;  // recv ended with ENOBUFS: re-arm once buffers come back
  bool stop = false;
  unsigned long long enobufs = 0, pauses = 0;  // reported at exit

  io_uring_sqe* sqe() {
    io_uring_sqe* e = io_uring_get_sqe(&ring);
    if (!e) {
      int rc = io_uring_submit(&ring);
      if (rc < 0) die("io_uring_submit", -rc);
      e = io_uring_get_sqe(&ring);
      if (!e) die("io_uring_get_sqe", EBUSY);
    }
    return e;
  }
  static uint64_t ud(Session* s, uint64_t op) { return reinterpret_cast<uint64_t>(s) | op; }

  void setup() {
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    const char* name = "IORING_SETUP_SINGLE_ISSUER|IORING_SETUP_DEFER_TASKRUN";
    int rc = io_uring_queue_init_params(kQueueDepth, &ring, &p);
    if (rc < 0) {
      warn("io_uring_queue_init_params SINGLE_ISSUER|DEFER_TASKRUN", -rc);
      p = io_uring_params{};
      name = "flags 0";
      rc = io_uring_queue_init_params(kQueueDepth, &ring, &p);
      if (rc < 0) die("io_uring_queue_init_params", -rc);
    }
    // The buffer ring, set up by hand: the installed liburing (2.3) predates
    // io_uring_setup_buf_ring(); this is what that helper does.
    std::size_t ring_bytes = sizeof(io_uring_buf) * kBufCount;
    void* mem =
        mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) die("mmap buffer ring", errno);
    br = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_ring_init(br);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(mem);
    reg.ring_entries = kBufCount;
    reg.bgid = kGroup;
    rc = io_uring_register_buf_ring(&ring, &reg, 0);
    if (rc < 0) die("io_uring_register_buf_ring", -rc);
    void* data = mmap(nullptr, kBufSize * kBufCount, PROT_READ | PROT_WRITE,
                      MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (data == MAP_FAILED) die("mmap buffers", errno);
    bufs = static_cast<char*>(data);
    for (unsigned i = 0; i < kBufCount; ++i)
      io_uring_buf_ring_add(br, bufs + i * kBufSize, kBufSize, static_cast<unsigned short>(i),
                            io_uring_buf_ring_mask(kBufCount), static_cast<int>(i));
    io_uring_buf_ring_advance(br, kBufCount);
    std::fprintf(stderr,
                 "relay-probe: uring: setup %s (features 0x%x), queue depth %u, multishot recv, "
                 "%u provided buffers x %zu KiB\n",
                 name, p.features, kQueueDepth, kBufCount, kBufSize / 1024);
  }

  void give_back(uint16_t bid) {
    io_uring_buf_ring_add(br, bufs + std::size_t{bid} * kBufSize, kBufSize, bid,
                          io_uring_buf_ring_mask(kBufCount), 0);
    io_uring_buf_ring_advance(br, 1);
    ++free_bufs;
  }

  void arm_accept() {
    io_uring_sqe* e = sqe();
    io_uring_prep_multishot_accept(e, lfd, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(e, kAccept);
  }
  void arm_signal() {
    io_uring_sqe* e = sqe();
    io_uring_prep_poll_add(e, sfd, POLLIN);
    io_uring_sqe_set_data64(e, kSignal);
  }

  // Arms the multishot recv of direction i unless it is armed, the session is
  // going, the direction's queue is over the low-water mark (the next send
  // completion retries), or no buffer is free (the starved list retries).
  void maybe_arm(Session* s, int i) {
    Dir& d = s->dir[i];
    if (s->closing || !s->connected || d.eof || d.recv_armed || d.starved || d.q.size() > kLowWater)
      return;
    if (free_bufs == 0) {
      d.starved = true;
      ++s->inflight;
      starved.emplace_back(s, i);
      return;
    }
    io_uring_sqe* e = sqe();
    io_uring_prep_recv_multishot(e, s->fd[i], nullptr, 0, 0);
    e->flags |= IOSQE_BUFFER_SELECT;
    e->buf_group = kGroup;
    io_uring_sqe_set_data64(e, ud(s, kRecv0 + static_cast<uint64_t>(i)));
    d.recv_armed = true;
    d.cancel_sent = false;
    ++s->inflight;
  }

  void send_front(Session* s, int i) {
    Dir& d = s->dir[i];
    const Chunk& c = d.q.front();
    io_uring_sqe* e = sqe();
    io_uring_prep_send(e, s->fd[1 - i], bufs + std::size_t{c.bid} * kBufSize + c.off, c.len - c.off,
                       MSG_NOSIGNAL);
    io_uring_sqe_set_data64(e, ud(s, kSend0 + static_cast<uint64_t>(i)));
    d.sending = true;
    ++s->inflight;
  }

  // Cancels whatever is in flight on both sockets; the session is freed (its
  // buffers returned, its sockets closed) once the last completion is in.
  // With nothing in flight no cancel is queued, so a cancel never names a
  // descriptor number that was already closed and reused.
  void close_session(Session* s) {
    if (s->closing) return;
    s->closing = true;
    if (s->inflight == 0) return;
    for (int fd : s->fd) {
      io_uring_sqe* e = sqe();
      io_uring_prep_cancel_fd(e, fd, IORING_ASYNC_CANCEL_ALL);
      io_uring_sqe_set_data64(e, kIgnore);
    }
  }
  void maybe_free(Session* s) {
    if (!s->closing || s->inflight > 0) return;
    for (Dir& d : s->dir)
      for (const Chunk& c : d.q) give_back(c.bid);
    for (int fd : s->fd)
      if (fd >= 0) close(fd);
    delete s;
  }

  void on_accept(const io_uring_cqe* cqe) {
    if (!(cqe->flags & IORING_CQE_F_MORE)) arm_accept();
    if (cqe->res < 0) {
      if (cqe->res != -ECONNABORTED) warn("accept (io_uring)", -cqe->res);
      return;
    }
    int cfd = cqe->res;
    set_nodelay(cfd);
    // Blocking sockets: io_uring drives them asynchronously itself (the connect
    // is an io_uring connect), and O_NONBLOCK would change nothing but the
    // semantics of ops that fall back to io-wq.
    int ufd = socket(upstream.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ufd < 0) {
      warn("socket", errno);
      close(cfd);
      return;
    }
    auto* s = new Session;
    s->fd[0] = cfd;
    s->fd[1] = ufd;
    io_uring_sqe* e = sqe();
    io_uring_prep_connect(e, ufd, reinterpret_cast<const sockaddr*>(&upstream.ss), upstream.len);
    io_uring_sqe_set_data64(e, ud(s, kConnect));
    ++s->inflight;
  }

  void on_connect(Session* s, int res) {
    --s->inflight;
    if (s->closing) return;
    if (res < 0) {
      warn("connect (io_uring)", -res);
      return close_session(s);
    }
    s->connected = true;
    set_nodelay(s->fd[1]);
    maybe_arm(s, 0);
    maybe_arm(s, 1);
  }

  void on_recv(Session* s, int i, const io_uring_cqe* cqe) {
    Dir& d = s->dir[i];
    bool more = cqe->flags & IORING_CQE_F_MORE;
    if (!more) {
      d.recv_armed = false;
      --s->inflight;
    }
    int res = cqe->res;
    if (res > 0) {
      if (!(cqe->flags & IORING_CQE_F_BUFFER)) {
        warn("recv (io_uring) without a buffer", EINVAL);
        return close_session(s);
      }
      auto bid = static_cast<uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
      --free_bufs;
      if (s->closing) return give_back(bid);
      d.q.push_back({bid, static_cast<uint32_t>(res), 0});
      if (!d.sending) send_front(s, i);
      if (d.recv_armed && !d.cancel_sent &&
          d.q.size() >= kHighWater) {  // bound the queue: stop reading
        io_uring_sqe* e = sqe();
        io_uring_prep_cancel64(e, ud(s, kRecv0 + static_cast<uint64_t>(i)), 0);
        io_uring_sqe_set_data64(e, kIgnore);
        d.cancel_sent = true;
        ++pauses;
      }
    } else if (res == 0) {
      d.eof = true;  // close both once what this direction holds is sent
      if (!d.sending) return close_session(s);
    } else if (res == -ENOBUFS) {
      ++enobufs;
    } else if (res != -ECANCELED) {
      warn("recv (io_uring)", -res);
      return close_session(s);
    }
    if (!more) maybe_arm(s, i);
  }

  void on_send(Session* s, int i, int res) {
    Dir& d = s->dir[i];
    --s->inflight;
    d.sending = false;
    if (s->closing) return;
    if (res < 0) {
      warn("send (io_uring)", -res);
      return close_session(s);
    }
    Chunk& c = d.q.front();
    c.off += static_cast<uint32_t>(res);
    if (c.off < c.len) return send_front(s, i);  // short send: the rest of this buffer first
    give_back(c.bid);
    d.q.pop_front();
    if (!d.q.empty())
      send_front(s, i);
    else if (d.eof)
      return close_session(s);
    maybe_arm(s, i);
  }

  void dispatch(const io_uring_cqe* cqe) {
    uint64_t u = io_uring_cqe_get_data64(cqe);
    if (u == kAccept) return on_accept(cqe);
    if (u == kSignal) {
      stop = true;
      return;
    }
    if (u == kIgnore) {
      // ENOENT/EALREADY: nothing left to cancel. EBADF: the session's last
      // completion came in the same batch, so it was freed (sockets closed)
      // before this cancel was submitted; nothing was in flight any more.
      if (cqe->res < 0 && cqe->res != -ENOENT && cqe->res != -EALREADY && cqe->res != -EBADF)
        warn("cancel (io_uring)", -cqe->res);
      return;
    }
    auto* s = reinterpret_cast<Session*>(u & ~uint64_t{15});
    switch (u & 15) {
      case kConnect:
        on_connect(s, cqe->res);
        break;
      case kRecv0:
        on_recv(s, 0, cqe);
        break;
      case kRecv1:
        on_recv(s, 1, cqe);
        break;
      case kSend0:
        on_send(s, 0, cqe->res);
        break;
      case kSend1:
        on_send(s, 1, cqe->res);
        break;
      default:
        std::fprintf(stderr, "relay-probe: unknown completion 0x%llx\n",
                     static_cast<unsigned long long>(u));
        std::abort();
    }
    maybe_free(s);
  }

  void retry_starved() {
    if (starved.empty() || free_bufs == 0) return;
    std::vector<std::pair<Session*, int>> list;
    list.swap(starved);
    // Each entry holds a reference (inflight), so a session listed for both
    // directions is not freed before its second entry is handled.
    for (auto [s, i] : list) {
      s->dir[i].starved = false;
      --s->inflight;
      maybe_arm(s, i);
      maybe_free(s);
    }
  }

  int run() {
    setup();
    arm_accept();
    arm_signal();
    while (!stop) {
      int rc = io_uring_submit_and_wait(&ring, 1);
      if (rc < 0 && rc != -EINTR && rc != -ETIME) die("io_uring_submit_and_wait", -rc);
      unsigned head, count = 0;
      io_uring_cqe* cqe;
      io_uring_for_each_cqe(&ring, head, cqe) {
        ++count;
        dispatch(cqe);
      }
      io_uring_cq_advance(&ring, count);
      retry_starved();
    }
    if (enobufs || pauses)
      std::fprintf(stderr,
                   "relay-probe: uring: %llu recv ENOBUFS (buffer ring ran dry), %llu recv paused "
                   "at high water\n",
                   enobufs, pauses);
    return 0;
  }
};

}  // namespace ur

}  // namespace

int main(int argc, char** argv) {
  std::string mode = "epoll", listen_at = "127.0.0.1:0", upstream, port_file;
  for (int i = 1; i < argc; i += 2) {
    std::string flag = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "relay-probe: %s needs a value\n", flag.c_str());
      return 2;
    }
    std::string value = argv[i + 1];
    if (flag == "--mode")
      mode = value;
    else if (flag == "--listen")
      listen_at = value;
    else if (flag == "--upstream")
      upstream = value;
    else if (flag == "--port-file")
      port_file = value;
    // --admin, --log-level, --threads and anything else: ignored
  }
  if (mode != "epoll" && mode != "uring") {
    std::fprintf(stderr, "relay-probe: --mode must be epoll or uring\n");
    return 2;
  }
  if (upstream.rfind("ws://", 0) == 0) upstream = upstream.substr(5);
  if (auto slash = upstream.find('/'); slash != std::string::npos) upstream.resize(slash);
  if (upstream.empty()) {
    std::fprintf(stderr, "relay-probe: --upstream ws://HOST:PORT is required\n");
    return 2;
  }
  Address up = resolve(upstream, "--upstream");
  Address la = resolve(listen_at, "--listen");
  int sfd = make_signalfd();
  if (mode == "epoll") {
    ep::Loop loop{};
    loop.lfd = open_listener(la, SOCK_NONBLOCK);
    loop.sfd = sfd;
    loop.upstream = up;
    write_port_file(port_file, loop.lfd);
    return loop.run();
  }
  ur::Loop loop{};
  loop.lfd = open_listener(la, 0);
  loop.sfd = sfd;
  loop.upstream = up;
  write_port_file(port_file, loop.lfd);
  return loop.run();
}
