#pragma once

// The simulated guest's network services: while a `tart run` of the fake has its VM up (from
// the DHCP lease to the end of the run), real TCP listeners on the VM's leased address, so
// that a client on the simulated Mac (sshd's `ssh -W IP:PORT`, as the Tart provider opens its
// tunnels) reaches "the guest". The leased addresses are loopback ones by default (sim_config.h,
// SharedNetAddress), which Linux serves without configuration.
//
// What answers (FakeConfig::guest_ports):
//   no mapping     ports 22 and 5900 (a guest's Remote Login and Screen Sharing) echo what they
//                  receive; every other port refuses
//   PORT=HOST:PORT exactly the mapped ports answer, each relaying to its address (a real sshd
//                  standing in for the guest, say); a relay whose address refuses closes the
//                  connection it accepted
// TART_HOME/.fake/vmstate/NAME/listeners says what listens ("22 echo", "22 relay 127.0.0.1:2222"
// per line, or "! PORT: error" for a port that could not be bound: a lease outside this
// machine's addresses, a duplicate IP), written once every listener is open.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace flotilla::tartsim {

class GuestNet {
 public:
  // Opens the listeners on `ip` and starts serving them; `report` is the listeners file.
  GuestNet(const std::string& ip, const std::map<uint16_t, std::string>& guest_ports,
           const std::string& report);
  // Closes the listeners and every connection (the guest is gone), and waits for the threads.
  ~GuestNet();
  GuestNet(const GuestNet&) = delete;
  GuestNet& operator=(const GuestNet&) = delete;

 private:
  struct Listener {
    int fd = -1;
    std::string target;  // "" for the echo service
  };
  void Accept(const Listener& listener);
  void Serve(int client, const std::string& target);
  // Registers a connection's socket (false once stopping: the caller closes it).
  bool Track(int fd);
  void Untrack(int fd);

  std::vector<Listener> listeners_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;              // guards the members below
  std::set<int> connections_;  // open sockets of live connections, shut down on stop
  int live_ = 0;               // connection threads still running
  std::condition_variable idle_;
  std::vector<std::thread> threads_;  // one accepting thread per listener
};

}  // namespace flotilla::tartsim
