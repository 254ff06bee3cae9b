# A wsdirect node with an Elastic IP.
resource "wsdirect_node" "node" {
  ami                = "ami-0123456789abcdef0"
  instance_type      = "c6i.large"
  subnet_id          = "subnet-0123456789abcdef0"
  security_group_ids = ["sg-0123456789abcdef0"]
  public_ip          = "elastic"
  user_data          = data.wsdirect_cloudinit.node.rendered

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
