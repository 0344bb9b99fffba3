# `terraform test` of the network module under a mocked AWS provider (Terraform >= 1.7). Unlike the
# example's test, these runs can address the module's own resources: the endpoints' subnets and the
# security group rules between the Lambdas and the endpoints.

mock_provider "aws" {
  # slice(names, 0, az_count) needs at least az_count zones.
  mock_data "aws_availability_zones" {
    defaults = {
      names = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    }
  }
}

variables {
  name                        = "heliport"
  interface_endpoint_services = ["secretsmanager", "sqs"]
}

run "endpoints_in_the_first_az" {
  command = apply

  variables {
    interface_endpoint_az_count = 1
  }

  assert {
    condition     = toset(keys(aws_vpc_endpoint.interface)) == toset(["secretsmanager", "sqs"])
    error_message = "One interface endpoint per service."
  }

  assert {
    condition = alltrue([
      for endpoint in aws_vpc_endpoint.interface :
      endpoint.subnet_ids == toset([aws_subnet.private[0].id]) && endpoint.private_dns_enabled && endpoint.vpc_endpoint_type == "Interface"
    ])
    error_message = "Each endpoint: an ENI in the first private subnet only, private DNS on."
  }

  assert {
    condition = alltrue([
      for endpoint in aws_vpc_endpoint.interface :
      endpoint.security_group_ids == toset([aws_security_group.endpoints[0].id])
    ])
    error_message = "The endpoints carry the endpoints security group only."
  }

  # The path: Lambda SG --443--> endpoints SG, which admits 443 from the Lambda SG and nothing else.
  assert {
    condition = (
      aws_vpc_security_group_egress_rule.lambda_endpoints[0].security_group_id == aws_security_group.lambda.id
      && aws_vpc_security_group_egress_rule.lambda_endpoints[0].referenced_security_group_id == aws_security_group.endpoints[0].id
      && aws_vpc_security_group_egress_rule.lambda_endpoints[0].ip_protocol == "tcp"
      && aws_vpc_security_group_egress_rule.lambda_endpoints[0].from_port == 443
      && aws_vpc_security_group_egress_rule.lambda_endpoints[0].to_port == 443
    )
    error_message = "The Lambda security group must reach the endpoints security group on 443."
  }

  assert {
    condition = (
      length(aws_vpc_security_group_ingress_rule.endpoints_https) == 1
      && aws_vpc_security_group_ingress_rule.endpoints_https[0].security_group_id == aws_security_group.endpoints[0].id
      && aws_vpc_security_group_ingress_rule.endpoints_https[0].referenced_security_group_id == aws_security_group.lambda.id
      && aws_vpc_security_group_ingress_rule.endpoints_https[0].cidr_ipv4 == null
      && aws_vpc_security_group_ingress_rule.endpoints_https[0].from_port == 443
      && aws_vpc_security_group_ingress_rule.endpoints_https[0].to_port == 443
    )
    error_message = "The endpoints security group must admit 443 from the Lambda security group only."
  }

  assert {
    condition     = jsonencode(output.interface_endpoint_subnet_ids) == jsonencode({ for service in ["secretsmanager", "sqs"] : service => [aws_subnet.private[0].id] })
    error_message = "interface_endpoint_subnet_ids: ${jsonencode(output.interface_endpoint_subnet_ids)}"
  }
}

run "every_az_when_not_narrowed" {
  command = apply

  variables {
    az_count = 3
  }

  assert {
    condition     = alltrue([for endpoint in aws_vpc_endpoint.interface : endpoint.subnet_ids == toset(aws_subnet.private[*].id)])
    error_message = "interface_endpoint_az_count = null must put the endpoints in every private subnet."
  }

  assert {
    condition     = length(aws_subnet.private) == 3
    error_message = "One private subnet per AZ."
  }
}

run "no_interface_endpoints" {
  command = apply

  variables {
    interface_endpoint_services = []
  }

  assert {
    condition = (
      length(aws_vpc_endpoint.interface) == 0 && length(aws_security_group.endpoints) == 0
      && length(aws_vpc_security_group_ingress_rule.endpoints_https) == 0
      && length(aws_vpc_security_group_egress_rule.lambda_endpoints) == 0
    )
    error_message = "No services: no interface endpoint, no endpoints security group, no rules towards it."
  }

  assert {
    condition     = output.endpoints_security_group_id == null && output.interface_endpoint_ids == {}
    error_message = "The outputs must say there are no interface endpoints."
  }
}

run "rejects_more_endpoint_azs_than_azs" {
  command = plan

  variables {
    az_count                    = 2
    interface_endpoint_az_count = 3
  }

  expect_failures = [aws_vpc_endpoint.interface]
}

run "rejects_a_fractional_endpoint_az_count" {
  command = plan

  variables {
    interface_endpoint_az_count = 1.5
  }

  expect_failures = [var.interface_endpoint_az_count]
}
