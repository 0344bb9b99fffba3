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
  description = "Interface endpoints of the VPC. The consumer and query API Lambdas run in private subnets without NAT: they read Aurora's managed secret from Secrets Manager (cold start, password rotation) and the consumer re-enqueues spooled records on SQS, so both are needed unless you give the subnets another route. Each costs about $7.30/month per AZ (see interface_endpoint_az_count)."
  type        = list(string)
  default     = ["secretsmanager", "sqs"]
}

variable "interface_endpoint_az_count" {
  description = "AZs that get the interface endpoints' ENIs (the first N private subnets; private DNS serves every subnet from them). 1 by default: each endpoint bills about $0.01/h per AZ, and with Aurora's single writer instance in one AZ a second AZ of endpoints would cost $14.60/month more (both services: $29.20 instead of $14.60) without letting the stack survive an AZ outage. Between 1 and az_count."
  type        = number
  default     = 1

  validation {
    condition     = var.interface_endpoint_az_count >= 1 && floor(var.interface_endpoint_az_count) == var.interface_endpoint_az_count
    error_message = "interface_endpoint_az_count must be a whole number from 1 to az_count."
  }
}

variable "kms_key_arn" {
  description = "Optional customer managed KMS key (key ARN) for Aurora storage, its master secret and the bucket (SSE-KMS). Written to /<name>/kms-key-arn (\"none\" when null) so that the SAM template grants the functions kms:Decrypt and kms:GenerateDataKey on it."
  type        = string
  default     = null

  validation {
    # Not an alias: IAM grants (the SAM template's) and RDS need the key's own ARN.
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", var.kms_key_arn))
    error_message = "kms_key_arn must be null or the ARN of a KMS key (arn:aws:kms:<region>:<account>:key/<id>), not an alias."
  }
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

variable "alert_email_sender" {
  description = "E-mail address alert notifications are sent from: an Amazon SES identity is created for it (SES mails it a verification link) and written to /<name>/alert-email-sender for the delivery function. Empty: no identity, the parameter is none and e-mail alert channels are off (Slack still works)."
  type        = string
  default     = ""

  validation {
    condition     = var.alert_email_sender == "" || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alert_email_sender))
    error_message = "alert_email_sender must be an e-mail address (name@example.com) or empty."
  }
}

variable "tags" {
  description = "Default tags for every resource."
  type        = map(string)
  default = {
    Project = "heliport"
  }
}
