output "id" {
  description = "Instance ID of the HAProxy host."
  value       = wsdirect_node.haproxy.id
}

output "public_ip" {
  description = "Elastic IP clients connect to."
  value       = wsdirect_node.haproxy.public_ip_address
}

output "url" {
  description = "WebSocket base URL of the HAProxy frontend."
  value       = "ws://${wsdirect_node.haproxy.public_ip_address}:${var.listen_port}"
}

output "private_ip" {
  description = "Primary private IP of the host."
  value       = wsdirect_node.haproxy.private_ip
}

output "source_ips" {
  description = "The secondary private IPs HAProxy uses as source addresses towards the backends."
  value       = wsdirect_node.haproxy.secondary_private_ips
}

output "server_names" {
  description = "HAProxy server names, one per (backend, source IP) pair."
  value       = data.wsdirect_haproxy_config.this.server_names
}

output "haproxy_config" {
  description = "The rendered haproxy.cfg. Source addresses appear as environment references WSDIRECT_SRC1..K, which the boot script fills in from source_ips."
  value       = data.wsdirect_haproxy_config.this.rendered
}
