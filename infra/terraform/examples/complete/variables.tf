variable "region" {
  description = "AWS region of the stack (deploy the SAM template to the same region)."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Stack name: prefix of the resources and of the SSM parameters (/<name>/...)."
  type        = string
  default     = "heliport"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,31}$", var.name))
    error_message = "name must start with a letter and contain at most 32 lowercase letters, digits and hyphens."
  }
}

variable "az_count" {
  description = "Availability zones (private subnets) in the VPC."
  type        = number
  default     = 2
}

variable "vpc_cidr_block" {
  description = "IPv4 CIDR of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "interface_endpoint_services" {
  description = "Interface endpoints to create (e.g. [\"secretsmanager\"] if the consumer reads its secret at runtime)."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "Optional customer managed KMS key for Aurora storage, its master secret and the bucket (SSE-KMS)."
  type        = string
  default     = null
}

variable "aurora_min_capacity" {
  description = "Aurora minimum ACUs; 0 auto-pauses when idle."
  type        = number
  default     = 0
}

variable "aurora_max_capacity" {
  description = "Aurora maximum ACUs."
  type        = number
  default     = 4
}

variable "deletion_protection" {
  description = "Protect the Aurora cluster from deletion (set false and apply before terraform destroy)."
  type        = bool
  default     = true
}

variable "body_retention_days" {
  description = "Days to keep request/response bodies in the bucket."
  type        = number
  default     = 90
}

variable "tags" {
  description = "Default tags for every resource."
  type        = map(string)
  default = {
    Project = "heliport"
  }
}
