data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:Only the first az_count zones are used, so a newly added zone adds no subnet.
  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

# Looked up rather than built from the region name (aws_region's attribute changed in provider 6).
data "aws_vpc_endpoint_service" "s3" {
  service      = "s3"
  service_type = "Gateway"
}

data "aws_vpc_endpoint_service" "dynamodb" {
  service      = "dynamodb"
  service_type = "Gateway"
}

data "aws_vpc_endpoint_service" "interface" {
  for_each = toset(var.interface_endpoint_services)

  service      = each.value
  service_type = "Interface"
}

locals {
  azs = slice(data.aws_availability_zones.available.names, 0, var.az_count)
  # Interface endpoints bill per AZ: their ENIs go in the first N private subnets only (null: all of them).
  interface_endpoint_az_count = coalesce(var.interface_endpoint_az_count, var.az_count)
}

resource "aws_vpc" "this" {
  #checkov:skip=CKV2_AWS_11:A private VPC without internet path; flow logs (log group, role, cost) are left to the operator.
  cidr_block           = var.cidr_block
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = merge(var.tags, { Name = var.name })
}

# Take over the default security group and leave it without rules.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = "${var.name}-default-unused" })
}

# Private subnets only: no internet gateway, no NAT. AWS services are reached through endpoints.
resource "aws_subnet" "private" {
  count = var.az_count

  vpc_id                  = aws_vpc.this.id
  availability_zone       = local.azs[count.index]
  cidr_block              = cidrsubnet(var.cidr_block, 4, count.index)
  map_public_ip_on_launch = false
  tags                    = merge(var.tags, { Name = "${var.name}-private-${local.azs[count.index]}" })
}

resource "aws_route_table" "private" {
  count = var.az_count

  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = "${var.name}-private-${local.azs[count.index]}" })
}

resource "aws_route_table_association" "private" {
  count = var.az_count

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[count.index].id
}

# Gateway endpoints are free.
resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.this.id
  service_name      = data.aws_vpc_endpoint_service.s3.service_name
  vpc_endpoint_type = "Gateway"
  route_table_ids   = aws_route_table.private[*].id
  tags              = merge(var.tags, { Name = "${var.name}-s3" })
}

resource "aws_vpc_endpoint" "dynamodb" {
  vpc_id            = aws_vpc.this.id
  service_name      = data.aws_vpc_endpoint_service.dynamodb.service_name
  vpc_endpoint_type = "Gateway"
  route_table_ids   = aws_route_table.private[*].id
  tags              = merge(var.tags, { Name = "${var.name}-dynamodb" })
}

# Security group for the VPC-attached Lambdas (consumer, query API). SAM attaches it. Its description
# predates the interface endpoints (also reached on 443, rule below): a new description replaces the group.
resource "aws_security_group" "lambda" {
  #checkov:skip=CKV2_AWS_5:Attached by the SAM template (consumer and API functions), outside Terraform.
  name        = "${var.name}-lambda"
  description = "VPC Lambdas of ${var.name}: PostgreSQL inside the VPC and HTTPS to the S3/DynamoDB endpoints."
  vpc_id      = aws_vpc.this.id
  tags        = merge(var.tags, { Name = "${var.name}-lambda" })
}

resource "aws_vpc_security_group_egress_rule" "lambda_postgres" {
  security_group_id = aws_security_group.lambda.id
  description       = "PostgreSQL to Aurora inside the VPC"
  cidr_ipv4         = aws_vpc.this.cidr_block
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
  tags              = var.tags
}

resource "aws_vpc_security_group_egress_rule" "lambda_s3" {
  security_group_id = aws_security_group.lambda.id
  description       = "HTTPS to S3 through the gateway endpoint"
  prefix_list_id    = aws_vpc_endpoint.s3.prefix_list_id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  tags              = var.tags
}

resource "aws_vpc_security_group_egress_rule" "lambda_dynamodb" {
  security_group_id = aws_security_group.lambda.id
  description       = "HTTPS to DynamoDB through the gateway endpoint"
  prefix_list_id    = aws_vpc_endpoint.dynamodb.prefix_list_id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  tags              = var.tags
}

# Optional interface endpoints (e.g. Secrets Manager, SQS) and the HTTPS path to them: the Lambda security
# group may send 443 to the endpoints' group, which admits 443 from the Lambda group only.
resource "aws_security_group" "endpoints" {
  count = length(var.interface_endpoint_services) > 0 ? 1 : 0

  name        = "${var.name}-endpoints"
  description = "Interface endpoints of ${var.name}: HTTPS from the Lambda security group."
  vpc_id      = aws_vpc.this.id
  tags        = merge(var.tags, { Name = "${var.name}-endpoints" })
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_https" {
  count = length(var.interface_endpoint_services) > 0 ? 1 : 0

  security_group_id            = aws_security_group.endpoints[0].id
  description                  = "HTTPS from the Lambda security group"
  referenced_security_group_id = aws_security_group.lambda.id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  tags                         = var.tags
}

resource "aws_vpc_security_group_egress_rule" "lambda_endpoints" {
  count = length(var.interface_endpoint_services) > 0 ? 1 : 0

  security_group_id            = aws_security_group.lambda.id
  description                  = "HTTPS to the interface endpoints"
  referenced_security_group_id = aws_security_group.endpoints[0].id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  tags                         = var.tags
}

# An ENI in each of the first interface_endpoint_az_count subnets. Private DNS resolves the service's
# regular host name (e.g. secretsmanager.<region>.amazonaws.com) to these ENIs from every subnet of the
# VPC, so Lambdas in the other AZs reach them too (cross-AZ traffic, $0.01/GB).
resource "aws_vpc_endpoint" "interface" {
  for_each = toset(var.interface_endpoint_services)

  vpc_id              = aws_vpc.this.id
  service_name        = data.aws_vpc_endpoint_service.interface[each.key].service_name
  vpc_endpoint_type   = "Interface"
  subnet_ids          = slice(aws_subnet.private[*].id, 0, local.interface_endpoint_az_count)
  security_group_ids  = [aws_security_group.endpoints[0].id]
  private_dns_enabled = true
  tags                = merge(var.tags, { Name = "${var.name}-${each.value}" })

  lifecycle {
    precondition {
      condition     = local.interface_endpoint_az_count <= var.az_count
      error_message = "interface_endpoint_az_count (${local.interface_endpoint_az_count}) must not exceed az_count (${var.az_count}): there is one private subnet per AZ."
    }
  }
}
