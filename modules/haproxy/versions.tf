terraform {
  # Uses the wsdirect_haproxy_config data source, so Terraform 1.8's provider
  # functions are not needed; optional() object attributes need 1.3.
  required_version = ">= 1.3.0"

  required_providers {
    wsdirect = {
      source = "wsdirect/wsdirect"
    }
  }
}
