variable "gossip_key" {
  type      = string
  sensitive = true
}

variable "auth_public_keys" {
  description = "PEM public key(s) of the auth signing key(s)."
  type        = string
}

variable "release_url" {
  description = "The wsdirect-node release archive."
  type        = string
  default     = "https://example.com/releases/v1.0.0/wsdirect-node_1.0.0_linux_amd64.tar.gz"
}

# User data for a wsdirect node; "rendered" is sensitive (it holds the
# gossip key).
data "wsdirect_cloudinit" "node" {
  role             = "node"
  release_url      = var.release_url
  gossip_key       = var.gossip_key
  join_tag         = "wsdirect:cluster=chat"
  max_conns        = 50000
  auth_public_keys = var.auth_public_keys
}

resource "wsdirect_node" "node" {
  ami                  = "ami-0123456789abcdef0"
  instance_type        = "c6i.large"
  subnet_id            = "subnet-0123456789abcdef0"
  iam_instance_profile = "wsdirect-node" # allows ec2:DescribeInstances, for -join-ec2-tag
  public_ip            = "auto"
  user_data            = data.wsdirect_cloudinit.node.rendered
  tags                 = { "wsdirect:cluster" = "chat" }
}
