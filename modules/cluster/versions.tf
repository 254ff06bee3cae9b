terraform {
  # The module uses the wsdirect_cloudinit data source rather than the
  # cloudinit provider function, so it also works before Terraform 1.8.
  required_version = ">= 1.3.0"

  required_providers {
    wsdirect = {
      source = "wsdirect/wsdirect"
    }
  }
}
