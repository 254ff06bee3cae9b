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

output "parameters" {
  description = "The Parameter Store names the instances read."
  value       = module.cluster.parameters
}

output "node_iam_policy_json" {
  description = "Policy for the nodes' instance role."
  value       = module.cluster.node_iam_policy_json
}

output "auth_iam_policy_json" {
  description = "Policy for the auth hosts' instance role."
  value       = module.cluster.auth_iam_policy_json
}
