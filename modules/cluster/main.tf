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
}

# One user data for all nodes: each node names itself after its host name.
data "wsdirect_cloudinit" "node" {
  role             = "node"
  release_url      = local.release_urls["wsdirect-node"]
  sha256           = lookup(var.release_sha256, "wsdirect-node", null)
  gossip_key       = var.gossip_key
  join_tag         = local.join_tag
  max_conns        = var.max_conns_per_node
  auth_public_keys = var.auth_public_keys
  bind             = "0.0.0.0:${local.node_port}"
  advertise        = local.node_advertise
  # Offloaded: clients reach the terminator in front on 443.
  advertise_port = local.serves_tls ? null : 443

  tls            = var.tls_mode
  tls_cert_file  = var.tls_mode == "files" ? var.tls_cert_file : null
  tls_key_file   = var.tls_mode == "files" ? var.tls_key_file : null
  acme_email     = local.acme ? var.acme_email : null
  acme_directory = local.acme ? var.acme_directory : null
  acme_profile   = local.acme ? var.acme_profile : null
  acme_ca_root   = local.acme ? var.acme_ca_root : null

  lifecycle {
    precondition {
      condition     = !(local.acme && var.acme_identifier == "name" && var.node_domain == null)
      error_message = "acme_identifier = \"name\" needs node_domain: the nodes are named <host name>.<node_domain>."
    }
  }
}

data "wsdirect_cloudinit" "auth" {
  role        = "auth"
  release_url = local.release_urls["wsdirect-auth"]
  sha256      = lookup(var.release_sha256, "wsdirect-auth", null)
  bind        = "0.0.0.0:${local.auth_port}"
  gossip_key  = var.gossip_key
  join_tag    = local.join_tag
  signing_key = var.auth_signing_key
  users       = var.auth_users
  admin_token = var.admin_token

  tls            = var.tls_mode
  tls_names      = length(var.auth_tls_names) > 0 ? var.auth_tls_names : null
  tls_cert_file  = var.tls_mode == "files" ? var.tls_cert_file : null
  tls_key_file   = var.tls_mode == "files" ? var.tls_key_file : null
  acme_email     = local.acme ? var.acme_email : null
  acme_directory = local.acme ? var.acme_directory : null
  acme_profile   = local.acme ? var.acme_profile : null
  acme_ca_root   = local.acme ? var.acme_ca_root : null
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

  tags = merge(local.common_tags, {
    Name            = "${var.cluster_name}-node-${count.index}"
    "wsdirect:role" = "node"
  })
}

resource "wsdirect_node" "auth" {
  count = var.auth_count

  ami                  = var.ami
  instance_type        = var.auth_instance_type
  subnet_id            = var.subnet_ids[count.index % length(var.subnet_ids)]
  security_group_ids   = var.security_group_ids
  key_name             = var.key_name
  iam_instance_profile = var.iam_instance_profile
  # A stable address clients can be configured with.
  public_ip = "elastic"
  user_data = data.wsdirect_cloudinit.auth.rendered

  tags = merge(local.common_tags, {
    Name            = "${var.cluster_name}-auth-${count.index}"
    "wsdirect:role" = "auth"
  })
}
