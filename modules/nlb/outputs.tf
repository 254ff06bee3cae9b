output "dns_name" {
  description = "DNS name of the NLB; clients connect to ws://<dns_name>:<listen_port>."
  value       = aws_lb.this.dns_name
}

output "url" {
  description = "WebSocket base URL through the NLB."
  value       = "ws://${aws_lb.this.dns_name}:${var.listen_port}"
}

output "arn" {
  description = "ARN of the NLB."
  value       = aws_lb.this.arn
}

output "zone_id" {
  description = "Route 53 zone ID of the NLB, for alias records."
  value       = aws_lb.this.zone_id
}

output "target_group_arn" {
  description = "ARN of the TCP target group of the nodes."
  value       = aws_lb_target_group.nodes.arn
}
