// RPC worker endpoints: parsing, the reachability check that guards ggml-rpc (which ends the
// process when a worker does not answer), and the load error naming an absent worker.
#include "base/rpc_workers.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/readiness.h"
#include "safetensors/device.h"

namespace allm {
namespace {

TEST(RpcWorkers, EndpointListsParse) {
  std::vector<std::string> endpoints;
  std::string problem;
  ASSERT_TRUE(parse_rpc_endpoints("10.0.0.2:50052,localhost:7000,[::1]:9", &endpoints, &problem));
  EXPECT_EQ(endpoints, (std::vector<std::string>{"10.0.0.2:50052", "localhost:7000", "[::1]:9"}));
  for (const char* bad : {"", "host", "host:", ":50052", "a:1,,b:2", "h:70000", "h:5x"}) {
    EXPECT_FALSE(parse_rpc_endpoints(bad, &endpoints, &problem)) << bad;
    EXPECT_NE(problem.find("HOST:PORT"), std::string::npos) << problem;
  }
}

// A loopback socket bound to a free port; listening or not.
struct LoopbackPort {
  explicit LoopbackPort(bool listening) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
    getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    port = ntohs(address.sin_port);
    if (listening) listen(fd, 1);
  }
  ~LoopbackPort() { close(fd); }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port); }
  int fd, port;
};

TEST(RpcWorkers, ReachableOnlyWhenSomethingListens) {
  LoopbackPort listening(true), silent(false);
  EXPECT_TRUE(rpc_worker_reachable(listening.endpoint()));
  EXPECT_FALSE(rpc_worker_reachable(silent.endpoint()));
  EXPECT_FALSE(rpc_worker_reachable("no-such-host.invalid:50052", 500));
}

TEST(RpcWorkers, AnAbsentWorkerIsALoadErrorNamingIt) {
  LoopbackPort silent(false);
  std::vector<std::string> devices;
  const Error error = register_rpc_workers({silent.endpoint()}, &devices);
  EXPECT_EQ(error.code, ErrorCode::LOAD_FAILED);
  EXPECT_NE(error.message.find(silent.endpoint()), std::string::npos) << error.message;
  EXPECT_TRUE(devices.empty());
  EXPECT_FALSE(check_rpc_workers());  // nothing registered: nothing to check
}

// Layer placement over devices, as llama.cpp's split mode "layer": layer l of the n offloaded
// goes to the first device whose cumulative share of the total exceeds l / n.
TEST(TensorSplit, LayersFollowTheProportionsInDeviceOrder) {
  using stcpp::split_layers;
  EXPECT_EQ(split_layers(4, -1, {1, 1}), (std::vector<int>{0, 0, 1, 1}));
  EXPECT_EQ(split_layers(4, -1, {3, 1}), (std::vector<int>{0, 0, 0, 1}));  // ends 0.75, 1
  EXPECT_EQ(split_layers(4, -1, {1, 3}), (std::vector<int>{0, 1, 1, 1}));  // ends 0.25, 1
  EXPECT_EQ(split_layers(4, 99, {0, 1}), (std::vector<int>{1, 1, 1, 1}));  // beyond: all
  // Local + two workers: the first 2 layers stay on the CPU, the last 4 split evenly.
  EXPECT_EQ(split_layers(6, 4, {1, 1}), (std::vector<int>{-1, -1, 0, 0, 1, 1}));
  // Three devices, 5 layers, 2:2:1 (ends 0.4, 0.8, 1; layer positions 0, .2, .4, .6, .8).
  EXPECT_EQ(split_layers(5, -1, {2, 2, 1}), (std::vector<int>{0, 0, 1, 1, 2}));
  EXPECT_EQ(split_layers(4, -1, {0, 0}), (std::vector<int>{0, 0, 1, 1}));  // no memory: equal
  EXPECT_EQ(split_layers(3, 0, {1, 1}), (std::vector<int>{-1, -1, -1}));
  EXPECT_EQ(split_layers(3, -1, {}), (std::vector<int>{-1, -1, -1}));  // no device
}

TEST(Readiness, StartingThenReadyThenStoppingForGood) {
  Readiness readiness;
  EXPECT_EQ(readiness.phase(), Readiness::Phase::STARTING);
  EXPECT_STREQ(Readiness::name(readiness.phase()), "starting");
  readiness.ready();
  EXPECT_EQ(readiness.phase(), Readiness::Phase::READY);
  readiness.stopping();
  readiness.ready();  // a late end of start-up does not make a stopping server ready again
  EXPECT_EQ(readiness.phase(), Readiness::Phase::STOPPING);
  EXPECT_STREQ(Readiness::name(readiness.phase()), "stopping");
}

TEST(RpcPlacement, ModelsOnLocalDevicesHaveNoWorkerToLose) {
  const RpcPlacement placement(std::vector<std::string>{"CPU"});
  EXPECT_EQ(placement.lost_worker(), "");
  EXPECT_FALSE(placement.check());
}

}  // namespace
}  // namespace allm
