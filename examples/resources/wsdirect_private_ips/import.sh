# Import by network interface ID: the resource adopts every secondary
# private IP of the interface, a wsdirect_node's own ones included.
terraform import wsdirect_private_ips.haproxy eni-0123456789abcdef0

# Adopt only the listed addresses; the others stay their owners'.
terraform import wsdirect_private_ips.haproxy eni-0123456789abcdef0:10.0.1.30,10.0.1.31
