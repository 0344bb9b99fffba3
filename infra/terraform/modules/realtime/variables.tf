variable "name" {
  description = "Prefix of every resource name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,24}$", var.name))
    error_message = "name must start with a letter and contain at most 25 lowercase letters, digits and hyphens (ALB and target group names are limited to 32 characters)."
  }
}

variable "image" {
  description = "Container image of heliport (the repository's Dockerfile), e.g. <account>.dkr.ecr.<region>.amazonaws.com/heliport:<tag>."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the load balancer and the tasks."
  type        = string
}

variable "alb_subnet_ids" {
  description = "Subnets of the load balancer (public subnets when internal = false), in at least two AZs."
  type        = list(string)

  validation {
    condition     = length(var.alb_subnet_ids) >= 2
    error_message = "alb_subnet_ids needs subnets in at least two availability zones."
  }
}

variable "task_subnet_ids" {
  description = "Private subnets of the tasks. They need a route to the providers (api.openai.com, *.openai.azure.com), e.g. through a NAT gateway, and to SQS and DynamoDB."
  type        = list(string)
}

variable "internal" {
  description = "Make the load balancer internal (reachable only inside the VPC). Set false for clients on the internet, and put a WAF in front of it."
  type        = bool
  default     = true
}

variable "ingress_cidr_blocks" {
  description = "IPv4 CIDRs allowed to connect to the load balancer on 443."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate ARN of the HTTPS (wss://) listener."
  type        = string
}

variable "ssl_policy" {
  description = "TLS policy of the listener (TLS 1.2 or later)."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "table_arn" {
  description = "ARN of the heliport DynamoDB table (keys): the tasks may only read it."
  type        = string
}

variable "table_name" {
  description = "Name of the heliport DynamoDB table (HELIPORT_TABLE)."
  type        = string
}

variable "queue_arn" {
  description = "ARN of the log SQS queue: the tasks may only send to it."
  type        = string
}

variable "queue_url" {
  description = "URL of the log SQS queue (HELIPORT_QUEUE_URL)."
  type        = string
}

variable "queue_kms_key_arn" {
  description = "Customer managed KMS key of the queue, if it is encrypted with one (the tasks then get GenerateDataKey and Decrypt on it). null for SSE-SQS."
  type        = string
  default     = null
}

variable "bodies_bucket_arn" {
  description = "ARN of the bodies bucket: the tasks may only write claim checks (claims/) and spooled records (spool/), for log records too large for SQS."
  type        = string
}

variable "bodies_bucket_name" {
  description = "Name of the bodies bucket (HELIPORT_BUCKET)."
  type        = string
}

variable "container_port" {
  description = "Port heliport listens on in the container."
  type        = number
  default     = 8585
}

variable "cpu" {
  description = "Task CPU units (256 = 0.25 vCPU)."
  type        = number
  default     = 512
}

variable "memory" {
  description = "Task memory in MiB."
  type        = number
  default     = 1024
}

variable "min_capacity" {
  description = "Fewest running tasks."
  type        = number
  default     = 1
}

variable "max_capacity" {
  description = "Most running tasks."
  type        = number
  default     = 10
}

variable "cpu_target_percent" {
  description = "Average CPU the autoscaling keeps the service at."
  type        = number
  default     = 60
}

variable "idle_timeout_seconds" {
  description = "Seconds the load balancer keeps a silent connection; above the relay's own idle timeout (HELIPORT_REALTIME_IDLE_TIMEOUT, 300)."
  type        = number
  default     = 310
}

variable "log_interval_seconds" {
  description = "Seconds between the log writes of a live session (HELIPORT_REALTIME_LOG_INTERVAL)."
  type        = number
  default     = 30
}

variable "deregistration_delay_seconds" {
  description = "Seconds a draining task keeps its open sessions before it is stopped (deploys, scale-in)."
  type        = number
  default     = 300
}

variable "log_retention_days" {
  description = "Days to keep the tasks' CloudWatch logs."
  type        = number
  default     = 365
}

variable "access_logs_bucket" {
  description = "S3 bucket for the load balancer's access logs (it needs the ELB log delivery bucket policy)."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
