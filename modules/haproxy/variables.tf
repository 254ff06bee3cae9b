variable "name" {
  description = "Name of the HAProxy host (its Name tag)."
  type        = string
  default     = "wsdirect-haproxy"
}

variable "subnet_id" {
  description = "Subnet of the HAProxy host. Its secondary private IPs come from this subnet."
  type        = string
}

variable "security_group_ids" {
  description = "Security groups of the HAProxy host. They must allow listen_port from clients."
  type        = list(string)
}

variable "ami" {
  description = "AMI of the host: a Linux with systemd, cloud-init, curl and a package manager that has haproxy (Debian, Ubuntu, Amazon Linux 2023)."
  type        = string
}

variable "instance_type" {
  description = "Instance type. Its IPv4-per-interface limit bounds source_ip_count (the provider checks it at plan)."
  type        = string
  default     = "c6i.large"
}

variable "source_ip_count" {
  description = "K: secondary private IPs on the host. HAProxy connects to every backend from each of them, so a backend can take about K x 64k connections (the article's HAProxy approach)."
  type        = number
  default     = 3

  validation {
    condition     = var.source_ip_count >= 1 && floor(var.source_ip_count) == var.source_ip_count
    error_message = "source_ip_count must be a whole number of at least 1."
  }
}

variable "backends" {
  description = "The wsdirect nodes HAProxy forwards to: address (usually the private IP), optional name (prefix of the server names) and port (default 8080)."
  type = list(object({
    name    = optional(string)
    address = string
    port    = optional(number, 8080)
  }))

  validation {
    condition     = length(var.backends) > 0
    error_message = "backends must list at least one node."
  }
}

variable "listen_port" {
  description = "Port HAProxy listens on for clients."
  type        = number
  default     = 80
}

variable "mode" {
  description = "\"http\" (WebSocket upgrades proxied as HTTP, HTTP health checks) or \"tcp\" (like an NLB)."
  type        = string
  default     = "http"

  validation {
    condition     = contains(["http", "tcp"], var.mode)
    error_message = "mode must be \"http\" or \"tcp\"."
  }
}

variable "balance" {
  description = "HAProxy balance algorithm: leastconn, roundrobin, source, random or random(N)."
  type        = string
  default     = "leastconn"
}

variable "maxconn" {
  description = "HAProxy's connection cap (global and frontend). Null keeps the renderer's default (100000)."
  type        = number
  default     = null
}

variable "server_maxconn" {
  description = "Cap per server line, i.e. per (backend, source IP) pair. Null for none."
  type        = number
  default     = null
}

variable "health_check_path" {
  description = "HTTP health check path in http mode."
  type        = string
  default     = "/healthz"
}

variable "timeout_tunnel" {
  description = "Inactivity limit of an upgraded WebSocket (Go duration). Must exceed the application's ping interval."
  type        = string
  default     = "1h"
}

variable "key_name" {
  description = "EC2 key pair for SSH access, or null."
  type        = string
  default     = null
}

variable "tags" {
  description = "Extra tags for the host."
  type        = map(string)
  default     = {}
}
