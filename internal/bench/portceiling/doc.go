// Package portceiling reproduces, small and for real, the limit that the
// article's HAProxy approach ran into
// (https://www.codeceo.com/article/websocket-load-balanced.html): a proxy
// opens one TCP connection per client to each backend, and with one source
// IP those connections can only use the ports in
// net.ipv4.ip_local_port_range, so a single backend caps out at about that
// many clients, however large the machine.
//
// Everything runs inside a network namespace of its own (Namespace), where
// the port range is narrowed to about 1,000 ports. The setting is per
// namespace, so the machine's own range is never touched. In the namespace
// the experiment starts the real wsdirect-node binary, the real haproxy
// with a configuration rendered by package haproxycfg, and a client process
// that opens WebSocket connections (each with its own single-use token)
// and holds them, counting how many get through:
//
//   - HAProxy with one source IP stops at about the size of the range;
//   - with three source IPs (one server line per source IP, as haproxycfg
//     renders it) it reaches about three times as many;
//   - clients that connect straight to the node, as wsdirect assigns them,
//     are not limited at all: a server's accepted connections take no
//     ephemeral ports.
//
// The client process is any program that runs ClientMain when ClientEnv
// is set; the tests re-execute their own binary, whose TestMain does.
package portceiling
