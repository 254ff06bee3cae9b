terraform {
  required_providers {
    wsdirect = {
      source = "wsdirect/wsdirect"
    }
  }
}

# Credentials and region come from the usual AWS sources (environment,
# shared config and credentials files, instance role) unless set here.
provider "wsdirect" {
  region = "eu-west-1"

  default_tags = {
    project = "chat"
  }

  # Any EC2-compatible endpoint, e.g. for testing.
  # endpoints {
  #   ec2 = "http://127.0.0.1:4566"
  # }
}
