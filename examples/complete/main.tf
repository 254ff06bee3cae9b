terraform {
  required_version = ">= 1.3.0"

  required_providers {
    wsdirect = {
      source = "wsdirect/wsdirect"
    }
  }
}

provider "wsdirect" {
  region = var.region
}

# Direct assignment: clients ask an auth host for a node, then open their
# WebSocket straight to that node's public IP. No balancer in the data path.
module "cluster" {
  source = "../../modules/cluster"

  cluster_name       = var.cluster_name
  subnet_ids         = var.subnet_ids
  security_group_ids = var.security_group_ids
  ami                = var.ami
  node_instance_type = "c6i.large"
  auth_instance_type = "t3.small"
  node_count         = var.node_count
  auth_count         = 2
  # Nodes take the public IP assigned at launch; only the two auth hosts hold
  # Elastic IPs (a stable address for clients). That fits AWS's default quota
  # of 5 Elastic IPs per region; "elastic" here would need node_count + 2.
  node_public_ip     = "auto"
  max_conns_per_node = 50000

  # The secrets stay in Parameter Store under this path (see README.md);
  # user data and state hold only their names.
  parameter_path = var.parameter_path
  admin_api      = true

  release_url     = var.release_url
  release_version = var.release_version
  release_sha256  = var.release_sha256

  # TLS from Let's Encrypt (or the CA of acme_directory): IP certificates for
  # the nodes, and for auth a name, or without auth_domain its Elastic IP.
  tls_mode       = "acme"
  auth_tls_names = var.auth_domain == null ? [] : [var.auth_domain]
  acme_email     = var.acme_email
  acme_directory = var.acme_directory
  acme_ca_root   = var.acme_ca_root

  key_name                  = var.key_name
  iam_instance_profile      = var.iam_instance_profile
  auth_iam_instance_profile = var.auth_iam_instance_profile

  tags = {
    project = "chat"
  }
}
