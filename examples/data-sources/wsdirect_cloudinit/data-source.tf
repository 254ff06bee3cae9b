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

# User data for a wsdirect node. It names the Parameter Store parameter of
# the gossip key; the node reads the key at boot with its instance role, so
# neither the user data nor the Terraform state holds it. tls = "acme" (the
# default): the node gets a Let's Encrypt IP certificate for its public
# address and serves wss:// on 443; port 80 must be open for the http-01
# challenge.
data "wsdirect_cloudinit" "node" {
  role                 = "node"
  release_url          = var.release_url
  gossip_key_parameter = "/wsdirect/chat/gossip-key"
  join_tag             = "wsdirect:cluster=chat"
  max_conns            = 50000
  auth_public_keys     = var.auth_public_keys
  tls                  = "acme"
  acme_email           = "ops@example.com"
  acme_directory       = var.acme_directory
  acme_ca_root         = var.acme_ca_root
}

resource "wsdirect_node" "node" {
  ami                  = "ami-0123456789abcdef0"
  instance_type        = "c6i.large"
  subnet_id            = "subnet-0123456789abcdef0"
  iam_instance_profile = "wsdirect-node" # ssm:GetParameter and kms:Decrypt on the key, ec2:DescribeInstances
  public_ip            = "auto"
  user_data            = data.wsdirect_cloudinit.node.rendered
  tags                 = { "wsdirect:cluster" = "chat" }
}
