# Every running member of the "chat" cluster.
data "wsdirect_nodes" "chat" {
  tags = {
    "wsdirect:cluster" = "chat"
    "wsdirect:role"    = "node"
  }
}

output "node_private_ips" {
  value = data.wsdirect_nodes.chat.nodes[*].private_ip
}
