locals {
  # The host's secondary IPs exist only once it does, so the config names
  # them through the environment (WSDIRECT_SRC1..K); the boot script fills
  # those in from the instance metadata before HAProxy starts.
  source_refs = [for i in range(var.source_ip_count) : "$${WSDIRECT_SRC${i + 1}}"]

  source_env_file = "/etc/haproxy/wsdirect-sources.env"

  user_data = join("\n", ["#cloud-config", yamlencode({
    package_update = true
    packages       = ["haproxy"]
    write_files = [
      {
        path        = "/etc/haproxy/haproxy.cfg"
        permissions = "0644"
        content     = data.wsdirect_haproxy_config.this.rendered
      },
      {
        # Every proxied connection takes an ephemeral port from one source
        # IP; use the whole range.
        path        = "/etc/sysctl.d/60-wsdirect-haproxy.conf"
        permissions = "0644"
        content     = "net.ipv4.ip_local_port_range = 1024 65535\nnet.ipv4.tcp_tw_reuse = 1\nfs.nr_open = 2097152\n"
      },
      {
        path        = "/etc/systemd/system/haproxy.service.d/wsdirect.conf"
        permissions = "0644"
        content     = "[Service]\nEnvironmentFile=${local.source_env_file}\nLimitNOFILE=1048576\n"
      },
      {
        path        = "/usr/local/lib/wsdirect/haproxy-source-ips.sh"
        permissions = "0755"
        content     = file("${path.module}/scripts/source-ips.sh")
      },
    ]
    runcmd = [
      ["sysctl", "--system"],
      ["/usr/local/lib/wsdirect/haproxy-source-ips.sh", tostring(var.source_ip_count), local.source_env_file],
      ["systemctl", "daemon-reload"],
      ["systemctl", "enable", "haproxy"],
      ["systemctl", "restart", "haproxy"],
    ]
  })])
}

data "wsdirect_haproxy_config" "this" {
  backends          = var.backends
  source_ips        = local.source_refs
  bind              = "*:${var.listen_port}"
  mode              = var.mode
  balance           = var.balance
  maxconn           = var.maxconn
  server_maxconn    = var.server_maxconn
  health_check_path = var.health_check_path
  timeout_tunnel    = var.timeout_tunnel
}

resource "wsdirect_node" "haproxy" {
  ami                        = var.ami
  instance_type              = var.instance_type
  subnet_id                  = var.subnet_id
  security_group_ids         = var.security_group_ids
  key_name                   = var.key_name
  secondary_private_ip_count = var.source_ip_count
  public_ip                  = "elastic"
  user_data                  = local.user_data

  tags = merge(var.tags, {
    Name            = var.name
    "wsdirect:role" = "haproxy"
  })
}
