locals {
  join_tag_key = "wsdirect:cluster"
  join_tag     = "${local.join_tag_key}=${var.cluster_name}"
  release_base = trimsuffix(var.release_url, "/")

  release_urls = {
    for bin in ["wsdirect-node", "wsdirect-auth"] :
    bin => "${local.release_base}/${bin}_${var.release_version}_linux_${var.release_arch}.tar.gz"
  }

  # The join tag goes last so var.tags cannot break membership.
  common_tags = merge(var.tags, { (local.join_tag_key) = var.cluster_name })

  serves_tls = var.tls_mode != "offload"
  # With TLS on the instances both services are on 443; offloaded, the
  # terminator in front listens on 443 and forwards to these.
  node_port = local.serves_tls ? 443 : 8080
  auth_port = local.serves_tls ? 443 : 8443
  acme      = var.tls_mode == "acme"

  # %l is systemd's short host name: one user data names every node.
  node_advertise = var.node_domain == null ? null : "%l.${var.node_domain}"
  auth_host      = length(var.auth_tls_names) > 0 ? var.auth_tls_names[0] : null

  # The cluster's parameters. Names only: the values never pass through
  # Terraform.
  parameters = {
    gossip_key       = "${var.parameter_path}/gossip-key"
    auth_public_keys = "${var.parameter_path}/auth-public-keys"
    signing_key      = "${var.parameter_path}/signing-key"
    users            = "${var.parameter_path}/users"
    admin_token      = "${var.parameter_path}/admin-token"
    tls_key          = "${var.parameter_path}/tls-key"
  }
  tls_key_parameter = var.tls_mode == "files" && var.tls_key_in_parameter
  # Region and account are left open: an identity policy grants only its
  # own account's parameters (and the instances read in their own region).
  parameter_arns = { for k, name in local.parameters : k => "arn:aws:ssm:*:*:parameter${name}" }

  node_reads = concat(["gossip_key", "auth_public_keys"], local.tls_key_parameter ? ["tls_key"] : [])
  auth_reads = concat(["gossip_key", "signing_key", "users"], var.admin_api ? ["admin_token"] : [], local.tls_key_parameter ? ["tls_key"] : [])

  auth_instance_profile = var.auth_iam_instance_profile != null ? var.auth_iam_instance_profile : var.iam_instance_profile

  # The readiness check each new instance must pass before Terraform goes
  # on (and, with create_before_destroy, destroys the instance it
  # replaces). With ACME, /readyz answers in plain HTTP on port 80 beside
  # the http-01 challenges, 200 only once the service holds its
  # certificate and (a node) accepts tokens.
  ready_url = var.ready_url != null ? var.ready_url : (local.acme ? "http://{public_ip}/readyz" : null)

  # IMDSv2 only, one hop: the instance role reads the secrets, so its
  # credentials stay out of reach of request forgery and of containers.
  metadata_options = {
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    http_endpoint               = "enabled"
  }
}

# What each role's instance profile needs: read its parameters, decrypt
# them (only through Parameter Store, only for these parameters), and find
# the other members.
locals {
  iam_policies = {
    for role, reads in { node = local.node_reads, auth = local.auth_reads } : role => jsonencode({
      Version = "2012-10-17"
      Statement = [
        {
          Sid      = "ReadClusterParameters"
          Effect   = "Allow"
          Action   = ["ssm:GetParameter"]
          Resource = [for k in reads : local.parameter_arns[k]]
        },
        {
          Sid      = "DecryptClusterParameters"
          Effect   = "Allow"
          Action   = ["kms:Decrypt"]
          Resource = var.kms_key_arn != null ? var.kms_key_arn : "*"
          Condition = {
            StringLike = {
              "kms:ViaService"                      = "ssm.*.amazonaws.com"
              "kms:EncryptionContext:PARAMETER_ARN" = [for k in reads : local.parameter_arns[k]]
            }
          }
        },
        {
          Sid      = "FindClusterMembers"
          Effect   = "Allow"
          Action   = ["ec2:DescribeInstances"]
          Resource = "*"
        },
      ]
    })
  }
}

# One user data for all nodes: each node names itself after its host name.
# The public keys come from a parameter too: a signing key then rotates by
# editing the parameter and sending SIGHUP, without new user data (which
# would replace every node).
data "wsdirect_cloudinit" "node" {
  role                       = "node"
  release_url                = local.release_urls["wsdirect-node"]
  sha256                     = lookup(var.release_sha256, "wsdirect-node", null)
  gossip_key_parameter       = local.parameters.gossip_key
  join_tag                   = local.join_tag
  max_conns                  = var.max_conns_per_node
  drain_rate                 = var.drain_rate
  drain_deadline             = var.drain_deadline
  auth_public_keys_parameter = local.parameters.auth_public_keys
  bind                       = "0.0.0.0:${local.node_port}"
  advertise                  = local.node_advertise
  # Offloaded: clients reach the terminator in front on 443.
  advertise_port = local.serves_tls ? null : 443

  tls               = var.tls_mode
  tls_cert_file     = var.tls_mode == "files" ? var.tls_cert_file : null
  tls_key_file      = var.tls_mode == "files" && !local.tls_key_parameter ? var.tls_key_file : null
  tls_key_parameter = local.tls_key_parameter ? local.parameters.tls_key : null
  acme_email        = local.acme ? var.acme_email : null
  acme_directory    = local.acme ? var.acme_directory : null
  acme_profile      = local.acme ? var.acme_profile : null
  acme_ca_root      = local.acme ? var.acme_ca_root : null

  lifecycle {
    precondition {
      condition     = !(local.acme && var.acme_identifier == "name" && var.node_domain == null)
      error_message = "acme_identifier = \"name\" needs node_domain: the nodes are named <host name>.<node_domain>."
    }
  }
}

data "wsdirect_cloudinit" "auth" {
  role                  = "auth"
  release_url           = local.release_urls["wsdirect-auth"]
  sha256                = lookup(var.release_sha256, "wsdirect-auth", null)
  bind                  = "0.0.0.0:${local.auth_port}"
  gossip_key_parameter  = local.parameters.gossip_key
  join_tag              = local.join_tag
  signing_key_parameter = local.parameters.signing_key
  users_parameter       = local.parameters.users
  admin_token_parameter = var.admin_api ? local.parameters.admin_token : null

  tls               = var.tls_mode
  tls_names         = length(var.auth_tls_names) > 0 ? var.auth_tls_names : null
  tls_cert_file     = var.tls_mode == "files" ? var.tls_cert_file : null
  tls_key_file      = var.tls_mode == "files" && !local.tls_key_parameter ? var.tls_key_file : null
  tls_key_parameter = local.tls_key_parameter ? local.parameters.tls_key : null
  acme_email        = local.acme ? var.acme_email : null
  acme_directory    = local.acme ? var.acme_directory : null
  acme_profile      = local.acme ? var.acme_profile : null
  acme_ca_root      = local.acme ? var.acme_ca_root : null
}

resource "wsdirect_node" "node" {
  count = var.node_count

  ami                  = var.ami
  instance_type        = var.node_instance_type
  subnet_id            = var.subnet_ids[count.index % length(var.subnet_ids)]
  security_group_ids   = var.security_group_ids
  key_name             = var.key_name
  iam_instance_profile = var.iam_instance_profile
  public_ip            = var.node_public_ip
  user_data            = data.wsdirect_cloudinit.node.rendered
  metadata_options     = local.metadata_options

  tags = merge(local.common_tags, {
    Name            = "${var.cluster_name}-node-${count.index}"
    "wsdirect:role" = "node"
  })

  dynamic "wait_for_ready" {
    for_each = local.ready_url == null ? [] : [local.ready_url]
    content {
      url     = wait_for_ready.value
      timeout = var.ready_timeout
    }
  }

  # A rolling replacement (release, keys, instance type, AMI): every new
  # node is created and serving before Terraform destroys the old ones,
  # which drain (close code 4000, reconnect through auth) on the SIGTERM of
  # their termination. Capacity never drops; it doubles for the roll.
  lifecycle {
    create_before_destroy = true
  }

  # Auth first: a replaced auth host has taken over the Elastic IP and
  # serves before any node is replaced, so the drained clients find it; and
  # the old nodes are destroyed (drained) before the old auth host.
  depends_on = [wsdirect_node.auth]
}

resource "wsdirect_node" "auth" {
  count = var.auth_count

  ami                  = var.ami
  instance_type        = var.auth_instance_type
  subnet_id            = var.subnet_ids[count.index % length(var.subnet_ids)]
  security_group_ids   = var.security_group_ids
  key_name             = var.key_name
  iam_instance_profile = local.auth_instance_profile
  # A stable address clients can be configured with.
  public_ip        = "elastic"
  user_data        = data.wsdirect_cloudinit.auth.rendered
  metadata_options = local.metadata_options

  # The address outlives the host: a replacement takes it over, so
  # auth_url and the clients configured with it stay valid.
  elastic_ip_key = "${var.cluster_name}-auth-${count.index}"

  tags = merge(local.common_tags, {
    Name            = "${var.cluster_name}-auth-${count.index}"
    "wsdirect:role" = "auth"
  })

  dynamic "wait_for_ready" {
    for_each = local.ready_url == null ? [] : [local.ready_url]
    content {
      url     = wait_for_ready.value
      timeout = var.ready_timeout
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}
