// Package haproxycfg renders a complete haproxy.cfg for putting HAProxy in
// front of wsdirect nodes: the article's HAProxy approach, generalised
// (docs/design.md sections 1 and 10; the article is
// https://www.codeceo.com/article/websocket-load-balanced.html).
//
// A Linux host can open at most about 64k outgoing connections from one
// source IP to one (destination IP, port) pair, because each needs its own
// ephemeral port. HAProxy lifts that ceiling when the same backend node is
// listed several times, once per source IP the HAProxy host owns, with a
// `source <ip>` on each server line. Render emits exactly one server line per
// (backend, source IP) pair, so each node can take about
// 64k × len(SourceIPs) connections (in practice the size of
// net.ipv4.ip_local_port_range × len(SourceIPs)).
//
// The same renderer backs the Terraform provider function
// provider::wsdirect::haproxy_config, the wsdirect_haproxy_config data source
// and the benchmark harness, so what is benchmarked is what gets deployed.
package haproxycfg
