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
  description = "Security groups allowing TCP 443 from clients, TCP 80 from anywhere (ACME http-01 validation) and 7946 TCP/UDP between members."
  type        = list(string)
}

variable "auth_domain" {
  description = "DNS name of the auth service (an A record per auth Elastic IP, see the auth_public_ips output), or null: clients reach each auth host by its Elastic IP, which gets an IP certificate."
  type        = string
  default     = null
}

variable "acme_email" {
  description = "Contact e-mail for the Let's Encrypt account, or null."
  type        = string
  default     = null
}

variable "acme_directory" {
  description = "https directory URL of the ACME CA, or null for Let's Encrypt production (a private CA, or the local cloud's)."
  type        = string
  default     = null
}

variable "acme_ca_root" {
  description = "PEM root to trust for acme_directory's https, or null for the system roots."
  type        = string
  default     = null
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

variable "parameter_path" {
  description = "Parameter Store path holding the cluster's secrets: gossip-key, auth-public-keys, signing-key, users and admin-token under it (README.md shows how to create them)."
  type        = string
  default     = "/wsdirect/chat"
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
  description = "Instance profile of the nodes; its role needs the node_iam_policy_json output."
  type        = string
}

variable "auth_iam_instance_profile" {
  description = "Instance profile of the auth hosts; its role needs the auth_iam_policy_json output. Null: iam_instance_profile (whose role then needs both)."
  type        = string
  default     = null
}
