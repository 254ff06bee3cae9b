output "auth_url" {
  description = "URL clients POST /v1/connect to: https:// on the first of auth_tls_names when given, else on the first auth host's address (with tls_mode = \"offload\", the terminator in front must answer there)."
  value       = local.auth_host != null ? "https://${local.auth_host}" : "https://${wsdirect_node.auth[0].public_ip_address}${local.serves_tls ? "" : ":${local.auth_port}"}"
}

output "auth_urls" {
  description = "https:// URLs of every auth host by address, for clients that spread over them (the certificate must cover the addresses: tls_mode = \"acme\" without auth_tls_names, \"files\" or offload)."
  value       = [for a in wsdirect_node.auth : "https://${a.public_ip_address}${local.serves_tls ? "" : ":${local.auth_port}"}"]
}

output "auth_public_ips" {
  description = "Elastic IPs of the auth hosts."
  value       = wsdirect_node.auth[*].public_ip_address
}

output "nodes" {
  description = "The WebSocket nodes: id, private_ip, public_ip and az of each."
  value = [for n in wsdirect_node.node : {
    id         = n.id
    private_ip = n.private_ip
    public_ip  = n.public_ip_address
    az         = n.availability_zone
  }]
}

output "node_names" {
  description = "With node_domain: the name each node advertises, for its DNS A record (EC2's default host names, ip-<private IP with dashes>), keyed by instance id with its public IP."
  value = var.node_domain == null ? {} : { for n in wsdirect_node.node : n.id => {
    name      = "ip-${replace(n.private_ip, ".", "-")}.${var.node_domain}"
    public_ip = n.public_ip_address
  } }
}

output "node_port" {
  description = "Port the nodes listen on: 443 when they serve TLS, 8080 with tls_mode = \"offload\"."
  value       = local.node_port
}

output "join_tag" {
  description = "The Key=Value tag members join by; tag extra instances with it to add them to the cluster."
  value       = local.join_tag
}

output "parameters" {
  description = "Names of the Parameter Store parameters the instances read (gossip_key, auth_public_keys, signing_key, users, admin_token), for creating them, e.g. with aws_ssm_parameter. admin_token is read only when admin_api is true."
  value       = local.parameters
}

output "node_iam_policy_json" {
  description = "IAM policy document (JSON) the nodes' instance role needs: ssm:GetParameter on the gossip key and the auth public keys, kms:Decrypt for them through Parameter Store, ec2:DescribeInstances. Attach it with aws_iam_role_policy, for example."
  value       = local.iam_policies["node"]
}

output "auth_iam_policy_json" {
  description = "IAM policy document (JSON) the auth hosts' instance role needs: ssm:GetParameter on the gossip key, the signing key, the users file (and the admin token with admin_api), kms:Decrypt for them through Parameter Store, ec2:DescribeInstances."
  value       = local.iam_policies["auth"]
}
