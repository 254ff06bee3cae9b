# Makes this directory a configuration of its own (terraform init, validate,
# apply); the snippet beside it is what the provider docs show.
terraform {
  required_version = ">= 1.8.0" # provider-defined functions

  required_providers {
    wsdirect = {
      source = "wsdirect/wsdirect"
    }
  }
}
