# Import an existing instance by its ID; the node adopts every secondary
# private IP of the instance's primary interface.
terraform import wsdirect_node.node i-0123456789abcdef0

# Adopt only the listed secondary private IPs (or none, with nothing after
# the colon): other addresses on the interface stay someone else's.
terraform import wsdirect_node.haproxy i-0123456789abcdef0:10.0.1.20,10.0.1.21
