variable "cluster_name" {
  description = "Name of the cluster. Every instance is tagged wsdirect:cluster = <cluster_name>, and members find each other by that tag (-join-ec2-tag)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$", var.cluster_name))
    error_message = "cluster_name must be 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit."
  }
}

variable "subnet_ids" {
  description = "Subnets to spread the nodes and auth hosts across, round robin (use subnets in different availability zones)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "subnet_ids must name at least one subnet."
  }
}

variable "security_group_ids" {
  description = "Security groups of every instance. They must allow the WebSocket port (8080) and the auth port (8443) from clients, and gossip (7946 TCP and UDP) between members."
  type        = list(string)
}

variable "ami" {
  description = "AMI of the instances: a Linux with systemd, cloud-init and curl (e.g. Ubuntu or Amazon Linux 2023)."
  type        = string
}

variable "node_instance_type" {
  description = "Instance type of the nodes."
  type        = string
  default     = "c6i.large"
}

variable "auth_instance_type" {
  description = "Instance type of the auth hosts."
  type        = string
  default     = "t3.small"
}

variable "node_count" {
  description = "Number of WebSocket nodes."
  type        = number
  default     = 3

  validation {
    condition     = var.node_count >= 1 && floor(var.node_count) == var.node_count
    error_message = "node_count must be a whole number of at least 1."
  }
}

variable "auth_count" {
  description = "Number of auth hosts. Each gets an Elastic IP."
  type        = number
  default     = 1

  validation {
    condition     = var.auth_count >= 1 && floor(var.auth_count) == var.auth_count
    error_message = "auth_count must be a whole number of at least 1."
  }
}

variable "node_public_ip" {
  description = "How nodes get their public IP: \"auto\" (assigned at launch, changes if the instance is replaced) or \"elastic\" (an Elastic IP per node)."
  type        = string
  default     = "auto"

  validation {
    condition     = contains(["auto", "elastic"], var.node_public_ip)
    error_message = "node_public_ip must be \"auto\" or \"elastic\"."
  }
}

variable "max_conns_per_node" {
  description = "Connection cap of each node (-max-conns). The auth service stops assigning a node at its cap."
  type        = number
  default     = 50000

  validation {
    condition     = var.max_conns_per_node >= 1 && floor(var.max_conns_per_node) == var.max_conns_per_node
    error_message = "max_conns_per_node must be a whole number of at least 1."
  }
}

variable "gossip_key" {
  description = "Base64 of the 32-byte gossip encryption key, e.g. from `openssl rand -base64 32`."
  type        = string
  sensitive   = true
}

variable "auth_public_keys" {
  description = "PEM \"PUBLIC KEY\" block(s) of the auth signing key(s) that nodes accept tokens from. List the old and the new key while rotating."
  type        = string
}

variable "auth_signing_key" {
  description = "Ed25519 PKCS#8 \"PRIVATE KEY\" PEM the auth hosts sign connection tokens with. Its public key must be in auth_public_keys."
  type        = string
  sensitive   = true
}

variable "auth_users" {
  description = "Content of the auth service's bcrypt users file: one user:hash line per user, from `wsdirect-auth hash-password -user <name>` (htpasswd -B lines work too). Required: the auth service needs exactly one credential backend, and this is the one the module configures."
  type        = string
  sensitive   = true

  validation {
    condition     = can(regex("(?m)^[^:#\\s][^:\\s]*:\\$2[abxy]\\$", var.auth_users))
    error_message = "auth_users must hold at least one user:bcrypt-hash line (from `wsdirect-auth hash-password`)."
  }
}

variable "admin_token" {
  description = "Token protecting the auth admin API (GET /v1/nodes). Null disables the admin API."
  type        = string
  default     = null
  sensitive   = true
}

variable "release_url" {
  description = "Base URL of a wsdirect release, holding the archives wsdirect-node_<version>_linux_<arch>.tar.gz and wsdirect-auth_<version>_linux_<arch>.tar.gz."
  type        = string

  validation {
    condition     = can(regex("^https?://[^/]+", var.release_url))
    error_message = "release_url must be an http:// or https:// URL."
  }
}

variable "release_version" {
  description = "Version in the release archive names, without a leading v (e.g. \"1.0.0\")."
  type        = string
}

variable "release_arch" {
  description = "CPU architecture of the instances: \"amd64\" or \"arm64\"."
  type        = string
  default     = "amd64"

  validation {
    condition     = contains(["amd64", "arm64"], var.release_arch)
    error_message = "release_arch must be \"amd64\" or \"arm64\"."
  }
}

variable "release_sha256" {
  description = "Optional SHA-256 of the release archives, keyed by binary name (\"wsdirect-node\", \"wsdirect-auth\"); downloads are verified when given."
  type        = map(string)
  default     = {}
}

variable "key_name" {
  description = "EC2 key pair for SSH access, or null."
  type        = string
  default     = null
}

variable "iam_instance_profile" {
  description = "Instance profile of every instance. It must allow ec2:DescribeInstances: members find each other with -join-ec2-tag, which calls it with the instance role's credentials. Required: without it no member finds another, and auth has no node to assign."
  type        = string
}

variable "tags" {
  description = "Extra tags for every instance."
  type        = map(string)
  default     = {}
}
