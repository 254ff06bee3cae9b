output "auth_url" {
  description = "Clients POST /v1/connect here."
  value       = module.cluster.auth_url
}

output "auth_urls" {
  description = "Every auth host."
  value       = module.cluster.auth_urls
}

output "nodes" {
  description = "The nodes and their public IPs."
  value       = module.cluster.nodes
}

output "auth_public_ips" {
  description = "Point the auth_domain A records here (with auth_domain)."
  value       = module.cluster.auth_public_ips
}
