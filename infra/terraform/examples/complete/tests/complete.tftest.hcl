# `terraform test` of the complete example under a mocked AWS provider (Terraform >= 1.7): each run is a
# real plan + apply through the provider's schema and validation, with no account, credentials or network.
# tests/infra/test_terraform_cli.py runs it after `terraform init -plugin-dir=<local provider>`.

mock_provider "aws" {
  # The mock answers every computed attribute with a random string, an empty collection, 0 or false. These
  # defaults are the values the configuration indexes into or the provider validates.

  # slice(names, 0, az_count) needs at least az_count zones.
  mock_data "aws_availability_zones" {
    defaults = {
      names = ["us-east-1a", "us-east-1b", "us-east-1c"]
    }
  }

  # aws_s3_bucket_policy rejects a policy that is not JSON.
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }

  # The aurora module outputs master_user_secret[0].secret_arn, which RDS fills in on create.
  mock_resource "aws_rds_cluster" {
    defaults = {
      master_user_secret = [{
        secret_arn    = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-mock"
        secret_status = "active"
        kms_key_id    = "alias/aws/secretsmanager"
      }]
    }
  }
}

variables {
  # Not an input of the example: the SSM parameters every run must write. tests/infra/test_terraform_cli.py
  # checks this list against the AWS::SSM::Parameter::Value<...> defaults of template.yaml.
  expected_ssm_parameter_names = [
    "/heliport/bodies-bucket",
    "/heliport/consumer-subnet-ids",
    "/heliport/consumer-security-group-ids",
    "/heliport/database-secret-arn",
    "/heliport/database-endpoint",
    "/heliport/database-name",
    "/heliport/aurora-cluster-arn",
    "/heliport/kms-key-arn",
    "/heliport/alert-email-sender",
  ]
}

run "defaults" {
  command = apply

  assert {
    condition     = toset([for parameter in aws_ssm_parameter.sam : parameter.name]) == toset(var.expected_ssm_parameter_names)
    error_message = "SSM parameter names written: ${jsonencode(sort([for parameter in aws_ssm_parameter.sam : parameter.name]))}"
  }

  assert {
    condition     = aws_ssm_parameter.sam["kms-key-arn"].value == "none" && aws_ssm_parameter.sam["kms-key-arn"].type == "String"
    error_message = "Without kms_key_arn, /heliport/kms-key-arn must be the String \"none\" (SSM refuses an empty value)."
  }

  assert {
    condition     = length(aws_sesv2_email_identity.alerts) == 0 && aws_ssm_parameter.sam["alert-email-sender"].value == "none"
    error_message = "Without alert_email_sender: no SES identity, and /heliport/alert-email-sender is \"none\"."
  }

  # The consumer's route to Secrets Manager and SQS: both endpoints, each in one AZ (the first subnet).
  assert {
    condition     = toset(keys(module.network.interface_endpoint_ids)) == toset(["secretsmanager", "sqs"])
    error_message = "Interface endpoints: ${jsonencode(keys(module.network.interface_endpoint_ids))}, want secretsmanager and sqs."
  }

  assert {
    condition = alltrue([
      for subnets in values(module.network.interface_endpoint_subnet_ids) :
      length(subnets) == 1 && subnets[0] == module.network.private_subnet_ids[0]
    ])
    error_message = "Each interface endpoint must have one ENI, in the first private subnet: ${jsonencode(module.network.interface_endpoint_subnet_ids)}"
  }

  assert {
    condition     = module.network.endpoints_security_group_id != null
    error_message = "The interface endpoints need their security group."
  }

  # Aurora still spans two AZs: only the endpoints are narrowed.
  assert {
    condition     = length(module.network.private_subnet_ids) == 2 && aws_ssm_parameter.sam["consumer-subnet-ids"].value == join(",", module.network.private_subnet_ids)
    error_message = "Two private subnets, both given to the consumer."
  }
}

run "without_interface_endpoints" {
  command = apply

  variables {
    interface_endpoint_services = []
  }

  assert {
    condition     = length(module.network.interface_endpoint_ids) == 0 && length(module.network.interface_endpoint_subnet_ids) == 0
    error_message = "interface_endpoint_services = [] must create no interface endpoint."
  }

  assert {
    condition     = module.network.endpoints_security_group_id == null
    error_message = "Without interface endpoints there is no endpoints security group."
  }

  assert {
    condition     = toset([for parameter in aws_ssm_parameter.sam : parameter.name]) == toset(var.expected_ssm_parameter_names)
    error_message = "The SSM parameters must not depend on the endpoints: ${jsonencode(sort([for parameter in aws_ssm_parameter.sam : parameter.name]))}"
  }
}

run "with_a_kms_key" {
  command = apply

  variables {
    kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
  }

  assert {
    condition     = aws_ssm_parameter.sam["kms-key-arn"].value == var.kms_key_arn
    error_message = "/heliport/kms-key-arn must carry the key ARN given."
  }

  assert {
    condition     = toset([for parameter in aws_ssm_parameter.sam : parameter.name]) == toset(var.expected_ssm_parameter_names)
    error_message = "A KMS key must not change the SSM parameter names."
  }
}

run "with_an_alert_email_sender" {
  command = apply

  variables {
    alert_email_sender = "alerts@example.com"
  }

  assert {
    condition     = length(aws_sesv2_email_identity.alerts) == 1 && aws_sesv2_email_identity.alerts[0].email_identity == "alerts@example.com"
    error_message = "An alert_email_sender must get its SES identity."
  }

  assert {
    condition     = aws_ssm_parameter.sam["alert-email-sender"].value == "alerts@example.com"
    error_message = "/heliport/alert-email-sender must carry the sender given."
  }
}

run "rejects_an_alert_email_sender_that_is_not_an_address" {
  command = plan

  variables {
    alert_email_sender = "example.com"
  }

  expect_failures = [var.alert_email_sender]
}

run "rejects_a_kms_alias" {
  command = plan

  variables {
    kms_key_arn = "alias/heliport"
  }

  expect_failures = [var.kms_key_arn]
}

run "rejects_zero_endpoint_azs" {
  command = plan

  variables {
    interface_endpoint_az_count = 0
  }

  expect_failures = [var.interface_endpoint_az_count]
}
