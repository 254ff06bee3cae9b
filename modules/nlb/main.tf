# An NLB in TCP mode: today's form of the article's ELB approach (see
# README.md). An NLB keeps the client's connection end to end, so it has no
# source-port ceiling towards the nodes, but each WebSocket still passes
# through it (and its per-hour and per-LCU price), and a TCP connection idle
# for 350 s is dropped: nodes must ping more often than that.

resource "aws_lb" "this" {
  name                             = var.name
  load_balancer_type               = "network"
  internal                         = var.internal
  subnets                          = var.subnet_ids
  enable_cross_zone_load_balancing = var.cross_zone
  tags                             = var.tags
}

resource "aws_lb_target_group" "nodes" {
  name                 = var.name
  port                 = var.node_port
  protocol             = "TCP"
  target_type          = "instance"
  vpc_id               = var.vpc_id
  deregistration_delay = var.deregistration_delay
  # Let nodes see the client address, as with direct assignment.
  preserve_client_ip = true

  health_check {
    enabled             = true
    protocol            = var.health_check_path == null ? "TCP" : "HTTP"
    path                = var.health_check_path
    port                = "traffic-port"
    interval            = 10
    healthy_threshold   = 3
    unhealthy_threshold = 3
  }

  tags = var.tags
}

resource "aws_lb_listener" "ws" {
  load_balancer_arn = aws_lb.this.arn
  port              = var.listen_port
  protocol          = "TCP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.nodes.arn
  }

  tags = var.tags
}

resource "aws_lb_target_group_attachment" "nodes" {
  count = length(var.node_instance_ids)

  target_group_arn = aws_lb_target_group.nodes.arn
  target_id        = var.node_instance_ids[count.index]
  port             = var.node_port
}
