variable "region" {
  description = "AWS region."
  type        = string
  default     = "eu-west-1"
}

variable "cluster_name" {
  description = "Name of the cluster; instances are tagged wsdirect:cluster = <name>."
  type        = string
  default     = "chat"
}

variable "subnet_ids" {
  description = "Public subnets, ideally one per availability zone."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups allowing 8080 and 8443 from clients and 7946 TCP/UDP between members."
  type        = list(string)
}

variable "ami" {
  description = "Ubuntu or Amazon Linux 2023 AMI for the region."
  type        = string
}

variable "node_count" {
  description = "Number of WebSocket nodes."
  type        = number
  default     = 4
}

variable "gossip_key" {
  description = "Base64 of 32 random bytes: openssl rand -base64 32."
  type        = string
  sensitive   = true
}

variable "auth_signing_key" {
  description = "Ed25519 PKCS#8 PEM signing key; its public key is keys/auth-public.pem."
  type        = string
  sensitive   = true
}

variable "auth_users" {
  description = "bcrypt users file the auth hosts check credentials against: lines from `wsdirect-auth hash-password -user <name>`."
  type        = string
  sensitive   = true
}

variable "admin_token" {
  description = "Token for the auth admin API."
  type        = string
  sensitive   = true
  default     = null
}

variable "release_url" {
  description = "Base URL of the wsdirect release holding the node and auth archives."
  type        = string
}

variable "release_version" {
  description = "Release version, e.g. 1.0.0."
  type        = string
}

variable "release_sha256" {
  description = "SHA-256 of the release archives by binary name (from the release's SHA256SUMS); downloads are verified when given."
  type        = map(string)
  default     = {}
}

variable "key_name" {
  description = "EC2 key pair for SSH, or null."
  type        = string
  default     = null
}

variable "iam_instance_profile" {
  description = "Instance profile allowing ec2:DescribeInstances (needed to join by tag)."
  type        = string
}
