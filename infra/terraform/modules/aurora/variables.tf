variable "name" {
  description = "Cluster identifier; also the prefix of the subnet group and security group names."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,62}$", var.name)) && !can(regex("--|-$", var.name))
    error_message = "name must start with a letter, contain only lowercase letters, digits and single hyphens, not end with a hyphen, and be at most 63 characters."
  }
}

variable "vpc_id" {
  description = "VPC in which the cluster and its security group live."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnet ids (at least two AZs) for the DB subnet group."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "An Aurora DB subnet group needs subnets in at least two availability zones."
  }
}

variable "allowed_security_group_ids" {
  description = "Security groups (e.g. the consumer/API Lambdas') allowed to connect on the PostgreSQL port. Nothing else is allowed in."
  type        = list(string)
  default     = []
}

variable "engine_version" {
  description = "Aurora PostgreSQL engine version. Must support min capacity 0 / auto-pause (13.15+, 14.12+, 15.7+, 16.3+, 17.x)."
  type        = string
  default     = "17.5"
}

variable "database_name" {
  description = "Name of the database created in the cluster."
  type        = string
  default     = "heliport"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.database_name))
    error_message = "database_name must start with a letter and contain only lowercase letters, digits and underscores."
  }
}

variable "master_username" {
  description = "Master user name. Its password is generated and kept by RDS in Secrets Manager (manage_master_user_password)."
  type        = string
  default     = "heliport_admin"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,15}$", var.master_username)) && var.master_username != "postgres"
    error_message = "master_username must start with a letter, use lowercase letters, digits and underscores, be at most 16 characters and not be a reserved name."
  }
}

variable "min_capacity" {
  description = "Minimum Aurora capacity units. 0 lets the instance auto-pause when idle (no compute charge while paused)."
  type        = number
  default     = 0

  validation {
    condition     = var.min_capacity >= 0 && var.min_capacity <= 256 && floor(var.min_capacity * 2) == var.min_capacity * 2
    error_message = "min_capacity must be between 0 and 256 in steps of 0.5."
  }
}

variable "max_capacity" {
  description = "Maximum Aurora capacity units (1 ACU is about 2 GiB of memory)."
  type        = number
  default     = 4

  validation {
    condition     = var.max_capacity >= 1 && var.max_capacity <= 256 && floor(var.max_capacity * 2) == var.max_capacity * 2
    error_message = "max_capacity must be between 1 and 256 in steps of 0.5."
  }
}

variable "seconds_until_auto_pause" {
  description = "Idle seconds before the instance pauses (only used when min_capacity is 0). Resuming takes up to about 15 seconds."
  type        = number
  default     = 3600

  validation {
    condition     = var.seconds_until_auto_pause >= 300 && var.seconds_until_auto_pause <= 86400
    error_message = "seconds_until_auto_pause must be between 300 and 86400."
  }
}

variable "log_min_duration_statement_ms" {
  description = "Log statements slower than this many milliseconds (-1 turns slow-statement logging off)."
  type        = number
  default     = 1000

  validation {
    condition     = var.log_min_duration_statement_ms >= -1
    error_message = "log_min_duration_statement_ms must be -1 or more."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for storage encryption and the master secret. null uses the AWS managed keys."
  type        = string
  default     = null
}

variable "backup_retention_period" {
  description = "Days of automated backups to keep."
  type        = number
  default     = 7

  validation {
    condition     = var.backup_retention_period >= 1 && var.backup_retention_period <= 35
    error_message = "backup_retention_period must be between 1 and 35 days."
  }
}

variable "deletion_protection" {
  description = "Protect the cluster from deletion. Turn off (and apply) before destroying the stack."
  type        = bool
  default     = true
}

variable "skip_final_snapshot" {
  description = "Skip the final snapshot on destroy. null means: skip it only when deletion_protection is off (throwaway stacks)."
  type        = bool
  default     = null
}

variable "enable_data_api" {
  description = "Enable the RDS Data API (HTTPS access with IAM + the master secret, no VPC needed by the caller)."
  type        = bool
  default     = false
}

variable "apply_immediately" {
  description = "Apply modifications immediately instead of in the next maintenance window."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
