output "auth_url" {
  description = "URL of the first auth host; clients POST /v1/connect here."
  value       = "http://${wsdirect_node.auth[0].public_ip_address}:${local.auth_port}"
}

output "auth_urls" {
  description = "URLs of every auth host, for clients that spread over them."
  value       = [for a in wsdirect_node.auth : "http://${a.public_ip_address}:${local.auth_port}"]
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
