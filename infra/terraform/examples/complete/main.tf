provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}

data "aws_caller_identity" "current" {}

module "network" {
  source = "../../modules/network"

  name                        = var.name
  cidr_block                  = var.vpc_cidr_block
  az_count                    = var.az_count
  interface_endpoint_services = var.interface_endpoint_services
  interface_endpoint_az_count = var.interface_endpoint_az_count
}

module "aurora" {
  source = "../../modules/aurora"

  name                       = var.name
  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.private_subnet_ids
  allowed_security_group_ids = [module.network.lambda_security_group_id]
  min_capacity               = var.aurora_min_capacity
  max_capacity               = var.aurora_max_capacity
  kms_key_arn                = var.kms_key_arn
  deletion_protection        = var.deletion_protection
}

module "bodies" {
  source = "../../modules/s3"

  bucket_name         = "${var.name}-bodies-${data.aws_caller_identity.current.account_id}-${var.region}"
  kms_key_arn         = var.kms_key_arn
  body_retention_days = var.body_retention_days
}

# Alert e-mails (issue 22): the SES identity the delivery function sends from. The template's
# DeliveryFunction may call ses:SendEmail as this address only. An address identity is verified by the
# link SES mails to it; to send from a whole domain, verify the domain in SES instead (DKIM records) and
# still name one address of it here. A new SES account is in the sandbox: it delivers only to verified
# recipients until production access is granted.
resource "aws_sesv2_email_identity" "alerts" {
  count = var.alert_email_sender == "" ? 0 : 1

  email_identity = var.alert_email_sender
}

# The contract with template.yaml: SAM reads these parameters at deploy time.
locals {
  ssm_parameters = {
    "bodies-bucket" = {
      type        = "String"
      value       = module.bodies.bucket_name
      description = "S3 bucket for request/response bodies."
    }
    "consumer-subnet-ids" = {
      type        = "StringList"
      value       = join(",", module.network.private_subnet_ids)
      description = "Private subnets of the VPC-attached Lambdas."
    }
    "consumer-security-group-ids" = {
      type        = "StringList"
      value       = module.network.lambda_security_group_id
      description = "Security groups of the VPC-attached Lambdas (allowed into Aurora)."
    }
    "database-secret-arn" = {
      type        = "String"
      value       = module.aurora.master_user_secret_arn
      description = "ARN of the RDS-managed master user secret (not the secret itself)."
    }
    "database-endpoint" = {
      type        = "String"
      value       = module.aurora.cluster_endpoint
      description = "Aurora writer endpoint."
    }
    "database-name" = {
      type        = "String"
      value       = module.aurora.database_name
      description = "Aurora database name."
    }
    "aurora-cluster-arn" = {
      type        = "String"
      value       = module.aurora.cluster_arn
      description = "Aurora cluster ARN (Data API, IAM policies)."
    }
    # SSM refuses an empty String parameter, so "no customer managed key" is the literal "none".
    "kms-key-arn" = {
      type        = "String"
      value       = coalesce(var.kms_key_arn, "none")
      description = "Customer managed KMS key of Aurora, its secret and the bucket (the functions decrypt with it), or none."
    }
    # The sender of alert e-mails (the SES identity above), or "none": e-mail channels off.
    "alert-email-sender" = {
      type        = "String"
      value       = var.alert_email_sender == "" ? "none" : aws_sesv2_email_identity.alerts[0].email_identity
      description = "SES identity (e-mail address) alert notifications are sent from, or none."
    }
  }
}

resource "aws_ssm_parameter" "sam" {
  #checkov:skip=CKV2_AWS_34:Non-secret identifiers (the secret's ARN, not its value); SAM's AWS::SSM::Parameter::Value<String> cannot read SecureString.
  for_each = local.ssm_parameters

  name        = "/${var.name}/${each.key}"
  type        = each.value.type
  value       = each.value.value
  description = each.value.description
}
