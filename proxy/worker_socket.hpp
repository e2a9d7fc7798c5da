#pragma once
// A session's sockets and timers name their worker's io_context executor by
// type. The polymorphic any_io_executor is 56 bytes and is copied into every
// socket, timer and pending operation; this one is a pointer. The session
// never leaves the worker that accepted it, so nothing needs the erasure.
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>

namespace wsgate::proxy {

using WorkerExecutor = boost::asio::io_context::executor_type;
using WorkerSocket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, WorkerExecutor>;
using WorkerTimer = boost::asio::basic_waitable_timer<
    std::chrono::steady_clock, boost::asio::wait_traits<std::chrono::steady_clock>, WorkerExecutor>;

}  // namespace wsgate::proxy
