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
  description = "Security groups of every instance. They must allow, from clients, TCP 443 (wss:// to the nodes, https:// to auth; 8080 and 8443 with tls_mode = \"offload\"); with tls_mode = \"acme\", TCP 80 from anywhere (the CA validates http-01 from several places on the internet); and between members, gossip on 7946 TCP and UDP."
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

variable "parameter_path" {
  description = <<-EOT
    AWS Systems Manager Parameter Store path of the cluster's secrets, e.g. "/wsdirect/prod". The module never sees a secret:
    user data and Terraform state hold only the parameter names, and the instances read the values at boot (and on SIGHUP)
    with their instance role. Create these parameters before the instances boot (the services retry until they can read them):
    <path>/gossip-key (SecureString: base64 32-byte key from `openssl rand -base64 32`, or two keys, one per line, while rotating),
    <path>/auth-public-keys (String or SecureString: the PEM "PUBLIC KEY" blocks nodes accept tokens from),
    <path>/signing-key (SecureString: the auth service's Ed25519 PKCS#8 "PRIVATE KEY" PEM),
    <path>/users (SecureString: the bcrypt users file, lines from `wsdirect-auth hash-password`), and
    <path>/admin-token (SecureString) when admin_api is true.
  EOT
  type        = string

  validation {
    condition     = can(regex("^(/[a-zA-Z0-9_.-]+)+$", var.parameter_path)) && length(regexall("/", var.parameter_path)) <= 14 && !can(regex("^/(?i)(aws|ssm)", var.parameter_path))
    error_message = "parameter_path must be a Parameter Store path like \"/wsdirect/prod\": segments of letters, digits, '.', '-' or '_', each after a '/', no trailing '/', at most 14 levels, not starting with aws or ssm."
  }
}

variable "admin_api" {
  description = "Serve the auth hosts' admin API (GET /v1/nodes), protected by the bearer token in <parameter_path>/admin-token."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "ARN of the customer managed KMS key the SecureString parameters are encrypted with, for the policies' kms:Decrypt statement. Null: any key, limited to this cluster's parameters through Parameter Store (right for the AWS managed key aws/ssm too)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-zA-Z0-9-]+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)."
  }
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
  description = "Instance profile of the nodes (and of the auth hosts unless auth_iam_instance_profile is set). Required: its role needs the node_iam_policy_json output: ssm:GetParameter on the gossip key and the auth public keys, kms:Decrypt for them, and ec2:DescribeInstances, with which members find each other (-join-ec2-tag); without it no member finds another, and auth has no node to assign."
  type        = string
}

variable "auth_iam_instance_profile" {
  description = "Instance profile of the auth hosts; its role needs the auth_iam_policy_json output (the signing key, the users file, the gossip key). Null: iam_instance_profile, whose role then needs both policies. A profile of their own keeps the signing key from the nodes, which could otherwise mint tokens."
  type        = string
  default     = null
}

variable "tags" {
  description = "Extra tags for every instance."
  type        = map(string)
  default     = {}
}

variable "tls_mode" {
  description = "How nodes and auth hosts serve TLS. \"acme\": each obtains and renews its own certificate from an ACME CA (Let's Encrypt by default); nodes get IP certificates for their public address, or names (acme_identifier). \"files\": a certificate and key already on every instance (tls_cert_file, tls_key_file), e.g. a wildcard baked into the AMI. \"offload\": TLS terminated in front of the instances (nodes listen on 8080, auth on 8443, in plain text)."
  type        = string
  default     = "acme"

  validation {
    condition     = contains(["acme", "files", "offload"], var.tls_mode)
    error_message = "tls_mode must be \"acme\", \"files\" or \"offload\"."
  }
}

variable "acme_identifier" {
  description = "With tls_mode = \"acme\": what the nodes' certificates name. \"ip\": the node's public IP (a short-lived IP certificate; no DNS needed). \"name\": <host name>.<node_domain>; create an A record per node (output node_names) pointing at its public IP."
  type        = string
  default     = "ip"

  validation {
    condition     = contains(["ip", "name"], var.acme_identifier)
    error_message = "acme_identifier must be \"ip\" or \"name\"."
  }
}

variable "node_domain" {
  description = "With acme_identifier = \"name\" (or tls_mode = \"files\" with a wildcard certificate): the nodes are advertised as <host name>.<node_domain>, e.g. ip-10-0-1-5.ws.example.com. Null: nodes are advertised by their public IP."
  type        = string
  default     = null
}

variable "auth_tls_names" {
  description = "DNS names clients reach the auth service by (point them at auth_public_ips); the first one is in auth_url. Empty with tls_mode = \"acme\": each auth host gets an IP certificate for its Elastic IP, and clients reach auth by address (auth_url, auth_urls)."
  type        = list(string)
  default     = []
}

variable "acme_email" {
  description = "With tls_mode = \"acme\": contact e-mail of the ACME accounts. Null: none."
  type        = string
  default     = null
}

variable "acme_directory" {
  description = "With tls_mode = \"acme\": https directory URL of the ACME CA. Null: Let's Encrypt production."
  type        = string
  default     = null
}

variable "acme_profile" {
  description = "With tls_mode = \"acme\": ACME profile. Null: \"shortlived\" for IP certificates (the only profile Let's Encrypt issues them under), the CA's default for names."
  type        = string
  default     = null
}

variable "acme_ca_root" {
  description = "With tls_mode = \"acme\": PEM of an extra root CA to trust for acme_directory (a private CA). Null: the system's roots only."
  type        = string
  default     = null
}

variable "tls_cert_file" {
  description = "With tls_mode = \"files\": path on every instance of the PEM certificate chain. Null: /etc/wsdirect/tls/cert.pem. The certificate and key never travel in user data: bake them into the AMI or fetch them at boot."
  type        = string
  default     = null
}

variable "tls_key_in_parameter" {
  description = "With tls_mode = \"files\": read the private key from the SecureString parameter <parameter_path>/tls-key (nodes and auth hosts, with their instance role; re-read on SIGHUP) instead of tls_key_file, so that only the public certificate sits on the instances' disks."
  type        = bool
  default     = false
}

variable "tls_key_file" {
  description = "With tls_mode = \"files\": path on every instance of the PEM private key. Null: /etc/wsdirect/tls/key.pem."
  type        = string
  default     = null
}

variable "ready_url" {
  description = "URL Terraform polls after creating each instance, until it answers 200, before going on (and, when replacing, before destroying the old instance): {public_ip} and {private_ip} are the instance's addresses. Null: \"http://{public_ip}/readyz\" with tls_mode = \"acme\" (port 80, open for ACME anyway), no wait otherwise; with \"files\" or \"offload\" and Terraform inside the VPC, e.g. \"http://{private_ip}:8080/readyz\" (offload). Without a wait, a replacement is destroyed-after-created but not after serving: capacity can dip during a roll."
  type        = string
  default     = null

  validation {
    condition     = var.ready_url == null || can(regex("^https?://", var.ready_url))
    error_message = "ready_url must be an http:// or https:// URL."
  }
}

variable "ready_timeout" {
  description = "How long Terraform waits for each new instance to be ready (a Go duration). A create that times out fails naming the instance, which is left tainted; the instance it was to replace keeps serving."
  type        = string
  default     = "5m"
}

variable "drain_rate" {
  description = "Clients each node closes per second when it drains (-drain-rate): on a scale-in and on every node at once when a rolling replacement destroys the old nodes. Null: the binary's 5,000. The old nodes' clients all come back through auth during a roll; a rate that keeps node_count × drain_rate within what the auth hosts take keeps them connected to their old node until their turn instead of waiting disconnected. A node needs its client count / drain_rate within drain_deadline."
  type        = number
  default     = null

  validation {
    condition     = var.drain_rate == null || (try(var.drain_rate >= 1, false) && try(floor(var.drain_rate) == var.drain_rate, false))
    error_message = "drain_rate must be a whole number of at least 1, or null."
  }
}

variable "drain_deadline" {
  description = "How long a node's drain may take before the rest of its clients are cut (-drain-deadline), whole seconds such as \"45s\", at most 90s. Null: the binary's 30s. The unit gives the stop this plus 30 s (TimeoutStopSec), which must fit in the instance's shutdown (docs/design.md section 15)."
  type        = string
  default     = null
}
