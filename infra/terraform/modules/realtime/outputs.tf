output "url" {
  description = "Realtime endpoint to give clients (append ?model=<model>); point a DNS name covered by the certificate at alb_dns_name."
  value       = "wss://${aws_lb.this.dns_name}/v1/gateway/oai/realtime"
}

output "alb_dns_name" {
  description = "DNS name of the load balancer."
  value       = aws_lb.this.dns_name
}

output "alb_zone_id" {
  description = "Hosted zone of the load balancer, for a Route 53 alias record."
  value       = aws_lb.this.zone_id
}

output "service_name" {
  description = "Name of the ECS service."
  value       = aws_ecs_service.this.name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = aws_ecs_cluster.this.arn
}

output "task_role_arn" {
  description = "ARN of the task role (SQS send, DynamoDB read, bodies bucket claims/ and spool/ writes)."
  value       = aws_iam_role.task.arn
}

output "task_security_group_id" {
  description = "Security group of the tasks."
  value       = aws_security_group.task.id
}

output "log_group_name" {
  description = "CloudWatch log group of the tasks."
  value       = aws_cloudwatch_log_group.this.name
}
