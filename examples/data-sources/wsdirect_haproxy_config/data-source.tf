# haproxy.cfg for 3 nodes and 4 source IPs: 12 server lines, so each node
# can take about 4 x 64k connections through one HAProxy host.
data "wsdirect_haproxy_config" "ws" {
  backends = [
    { name = "node1", address = "10.0.1.10" },
    { name = "node2", address = "10.0.1.11" },
    { name = "node3", address = "10.0.2.10", port = 8080 },
  ]
  source_ips = ["10.0.0.11", "10.0.0.12", "10.0.0.13", "10.0.0.14"]

  bind           = "*:80"
  balance        = "leastconn"
  timeout_tunnel = "1h"
  server_maxconn = 60000
  stats_bind     = "127.0.0.1:8404"
}

output "haproxy_cfg" {
  value = data.wsdirect_haproxy_config.ws.rendered
}
