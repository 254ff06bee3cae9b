# Add 3 secondary private IPs to the interface of an HAProxy host made
# elsewhere, as the article's HAProxy approach did by hand under "Manage Private
# IP Addresses" (https://www.codeceo.com/article/websocket-load-balanced.html).
resource "wsdirect_private_ips" "haproxy" {
  network_interface_id       = "eni-0123456789abcdef0"
  secondary_private_ip_count = 3
}

# Or pin the exact addresses, in order.
resource "wsdirect_private_ips" "pinned" {
  network_interface_id = "eni-0fedcba9876543210"
  private_ips          = ["10.0.1.20", "10.0.1.21"]
}
