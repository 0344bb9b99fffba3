variable "name" {
  description = "Prefix of every resource name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,31}$", var.name))
    error_message = "name must start with a letter and contain at most 32 lowercase letters, digits and hyphens."
  }
}

variable "cidr_block" {
  description = "IPv4 CIDR of the VPC. Private subnets are carved from it as /20s (for a /16)."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.cidr_block))
    error_message = "cidr_block must be a valid IPv4 CIDR block."
  }
}

variable "az_count" {
  description = "Number of availability zones, one private subnet in each (Aurora needs at least two)."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 6
    error_message = "az_count must be between 2 and 6."
  }
}

variable "interface_endpoint_services" {
  description = "Short names of AWS services to reach through interface endpoints, e.g. [\"secretsmanager\", \"sqs\"]: the only route from these private subnets (no NAT) to AWS APIs without a gateway endpoint. Each costs about $0.01/h per AZ (~$7.30/month) plus $0.01/GB; empty by default."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.interface_endpoint_services) == length(distinct(var.interface_endpoint_services))
    error_message = "interface_endpoint_services must not name a service twice."
  }
}

variable "interface_endpoint_az_count" {
  description = "Number of AZs (the first N private subnets) that get an ENI of each interface endpoint; null means every AZ. Each AZ bills about $7.30/month per endpoint; with private DNS one AZ serves the Lambdas of every subnet, so fewer AZs trade AZ-failure tolerance of the endpoint for money (worth it when, as in the complete example, Aurora has a single writer in one AZ anyway). Between 1 and az_count."
  type        = number
  default     = null

  # The upper bound (az_count) is checked by a precondition on the endpoints: a variable's validation can
  # only refer to other variables from Terraform 1.9, and these modules support 1.5.7.
  validation {
    condition     = var.interface_endpoint_az_count == null || try(var.interface_endpoint_az_count >= 1 && floor(var.interface_endpoint_az_count) == var.interface_endpoint_az_count, false)
    error_message = "interface_endpoint_az_count must be null (every AZ) or a whole number from 1 to az_count."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
