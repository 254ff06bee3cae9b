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

data "wsdirect_cloudinit" "node" {
  role             = "node"
  release_url      = var.release_url
  gossip_key       = var.gossip_key
  join_tag         = "wsdirect:cluster=chat"
  auth_public_keys = var.auth_public_keys
}

# A wsdirect node with an Elastic IP.
resource "wsdirect_node" "node" {
  ami                  = "ami-0123456789abcdef0"
  instance_type        = "c6i.large"
  subnet_id            = "subnet-0123456789abcdef0"
  security_group_ids   = ["sg-0123456789abcdef0"]
  iam_instance_profile = "wsdirect-node" # allows ec2:DescribeInstances, for -join-ec2-tag
  public_ip            = "elastic"
  user_data            = data.wsdirect_cloudinit.node.rendered

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
