output "ssm_parameter_names" {
  description = "SSM parameter names written for the SAM template, by key."
  value       = { for key, parameter in aws_ssm_parameter.sam : key => parameter.name }
}

output "bodies_bucket" {
  description = "Name of the bodies bucket."
  value       = module.bodies.bucket_name
}

output "consumer_subnet_ids" {
  description = "Private subnet ids for the VPC-attached Lambdas."
  value       = module.network.private_subnet_ids
}

output "consumer_security_group_id" {
  description = "Security group for the VPC-attached Lambdas."
  value       = module.network.lambda_security_group_id
}

output "database_endpoint" {
  description = "Aurora writer endpoint."
  value       = module.aurora.cluster_endpoint
}

output "database_name" {
  description = "Aurora database name."
  value       = module.aurora.database_name
}

output "database_secret_arn" {
  description = "ARN of the RDS-managed master user secret."
  value       = module.aurora.master_user_secret_arn
}

output "aurora_cluster_arn" {
  description = "Aurora cluster ARN."
  value       = module.aurora.cluster_arn
}

output "alert_email_identity_arn" {
  description = "ARN of the SES identity alert e-mails are sent from, or null without alert_email_sender."
  value       = one(aws_sesv2_email_identity.alerts[*].arn)
}
