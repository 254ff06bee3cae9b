variable "name" {
  description = "Name of the load balancer and target group (at most 32 characters)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9][a-zA-Z0-9-]{0,31}$", var.name)) && !endswith(var.name, "-")
    error_message = "name must be 1-32 letters, digits or hyphens, not starting or ending with a hyphen."
  }
}

variable "vpc_id" {
  description = "VPC of the nodes."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets the NLB has a node in (one per availability zone)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "subnet_ids must name at least one subnet."
  }
}

variable "node_instance_ids" {
  description = "Instance IDs of the wsdirect nodes to register as targets (e.g. module.cluster.nodes[*].id)."
  type        = list(string)
}

variable "listen_port" {
  description = "TCP port the NLB listens on."
  type        = number
  default     = 80
}

variable "node_port" {
  description = "TCP port of the nodes' WebSocket listener."
  type        = number
  default     = 8080
}

variable "internal" {
  description = "Whether the NLB is internal (private IPs only)."
  type        = bool
  default     = false
}

variable "cross_zone" {
  description = "Spread connections across targets in every zone, not only the client's zone. AWS charges for the cross-zone traffic."
  type        = bool
  default     = true
}

variable "health_check_path" {
  description = "When set, health-check targets with HTTP GET on this path; when null, with a TCP connect."
  type        = string
  default     = "/healthz"
}

variable "deregistration_delay" {
  description = "Seconds a draining target keeps its connections before the NLB cuts them."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
