# Import an existing instance by its ID.
terraform import wsdirect_node.node i-0123456789abcdef0
