# Terraform 1.8 and later. Backends are { name, address, port } objects
# (null name or port take the defaults); the third argument is optional.
output "haproxy_cfg" {
  value = provider::wsdirect::haproxy_config(
    [
      { name = "node1", address = "10.0.1.10", port = 8080 },
      { name = "node2", address = "10.0.1.11", port = 8080 },
    ],
    ["10.0.0.11", "10.0.0.12", "10.0.0.13"],
    {
      mode    = "tcp"
      balance = "roundrobin"
      maxconn = 200000
    },
  )
}
