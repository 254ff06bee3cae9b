# Import by network interface ID.
terraform import wsdirect_private_ips.haproxy eni-0123456789abcdef0
