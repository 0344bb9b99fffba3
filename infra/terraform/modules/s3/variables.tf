variable "bucket_name" {
  description = "Name of the bodies bucket (globally unique)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be 3-63 characters of lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for SSE-KMS (with an S3 bucket key). null uses SSE-S3 (AES256)."
  type        = string
  default     = null
}

variable "versioning_enabled" {
  description = "Keep object versions. Old versions and delete markers are cleaned up by the lifecycle rules."
  type        = bool
  default     = true
}

variable "body_retention_days" {
  description = "Days to keep request/response bodies under organizations/."
  type        = number
  default     = 90

  validation {
    condition     = var.body_retention_days >= 1
    error_message = "body_retention_days must be at least 1."
  }
}

variable "body_transition_to_ia_days" {
  description = "Days after which bodies move to STANDARD_IA. null keeps them in STANDARD. Must be at least 30 and less than body_retention_days."
  type        = number
  default     = 30

  validation {
    condition     = var.body_transition_to_ia_days == null || try(var.body_transition_to_ia_days >= 30, false)
    error_message = "body_transition_to_ia_days must be null or at least 30 (the STANDARD_IA minimum)."
  }
}

variable "cache_retention_days" {
  description = "Days to keep cached response bodies under cache/."
  type        = number
  default     = 365

  validation {
    condition     = var.cache_retention_days >= 1
    error_message = "cache_retention_days must be at least 1."
  }
}

variable "claims_retention_days" {
  description = "Days to keep SQS claim-check payloads under claims/ (longer than the queue and DLQ retention)."
  type        = number
  default     = 14

  validation {
    condition     = var.claims_retention_days >= 1
    error_message = "claims_retention_days must be at least 1."
  }
}

variable "spool_dead_retention_days" {
  description = "Days to keep records under spool-dead/ (spool/ itself never expires: it is kept until re-enqueued)."
  type        = number
  default     = 90

  validation {
    condition     = var.spool_dead_retention_days >= 1
    error_message = "spool_dead_retention_days must be at least 1."
  }
}

variable "noncurrent_version_retention_days" {
  description = "Days to keep noncurrent object versions when versioning is on."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_retention_days >= 1
    error_message = "noncurrent_version_retention_days must be at least 1."
  }
}

variable "force_destroy" {
  description = "Allow destroying the bucket while it still holds objects."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
