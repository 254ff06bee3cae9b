variable "auth_public_keys" {
  description = "PEM public key(s) of the auth signing key(s)."
  type        = string
}

variable "release_url" {
  description = "The wsdirect-node release archive."
  type        = string
  default     = "https://example.com/releases/v1.0.0/wsdirect-node_1.0.0_linux_amd64.tar.gz"
}

variable "acme_directory" {
  description = "https directory URL of the ACME CA the node gets its certificate from, or null for Let's Encrypt production."
  type        = string
  default     = null
}

variable "acme_ca_root" {
  description = "PEM root to trust for acme_directory's https, or null for the system roots."
  type        = string
  default     = null
}

data "wsdirect_cloudinit" "node" {
  role                 = "node"
  release_url          = var.release_url
  gossip_key_parameter = "/wsdirect/chat/gossip-key"
  join_tag             = "wsdirect:cluster=chat"
  auth_public_keys     = var.auth_public_keys
  acme_directory       = var.acme_directory
  acme_ca_root         = var.acme_ca_root
}

# A wsdirect node with an Elastic IP. Its instance role reads the
# cluster's secrets from Parameter Store; IMDSv2 is required by default
# (metadata_options), which keeps those credentials from request forgery.
resource "wsdirect_node" "node" {
  ami                  = "ami-0123456789abcdef0"
  instance_type        = "c6i.large"
  subnet_id            = "subnet-0123456789abcdef0"
  security_group_ids   = ["sg-0123456789abcdef0"]
  iam_instance_profile = "wsdirect-node" # ssm:GetParameter and kms:Decrypt on the key, ec2:DescribeInstances
  public_ip            = "elastic"
  user_data            = data.wsdirect_cloudinit.node.rendered

  # The defaults, spelled out.
  metadata_options = {
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    http_endpoint               = "enabled"
  }

  tags = {
    Name               = "ws-node-1"
    "wsdirect:cluster" = "chat"
  }
}

# An HAProxy host with 4 secondary private IPs to use as source addresses
# (the article's HAProxy approach:
# https://www.codeceo.com/article/websocket-load-balanced.html).
resource "wsdirect_node" "haproxy" {
  ami                        = "ami-0123456789abcdef0"
  instance_type              = "c6i.large"
  subnet_id                  = "subnet-0123456789abcdef0"
  security_group_ids         = ["sg-0123456789abcdef0"]
  secondary_private_ip_count = 4
  public_ip                  = "elastic"

  timeouts {
    create = "15m"
  }
}
