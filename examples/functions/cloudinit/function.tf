# Terraform 1.8 and later. The result holds the gossip key, so with a
# sensitive key it is sensitive too and an output of it must say so.
variable "gossip_key" {
  type      = string
  sensitive = true
}

variable "signing_key" {
  type      = string
  sensitive = true
}

variable "users" {
  description = "bcrypt users file: lines from `wsdirect-auth hash-password -user <name>`."
  type        = string
  sensitive   = true
}

output "auth_user_data" {
  sensitive = true
  value = provider::wsdirect::cloudinit("auth", {
    release_url = "https://example.com/releases/v1.0.0/wsdirect-auth_1.0.0_linux_amd64.tar.gz"
    sha256      = "0000000000000000000000000000000000000000000000000000000000000000"
    gossip_key  = var.gossip_key
    join_tag    = "wsdirect:cluster=chat"
    signing_key = var.signing_key
    users       = var.users
  })
}
