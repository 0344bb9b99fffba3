output "vpc_id" {
  description = "Id of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "IPv4 CIDR of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "private_subnet_ids" {
  description = "Ids of the private subnets, one per AZ."
  value       = aws_subnet.private[*].id
}

output "private_route_table_ids" {
  description = "Ids of the private route tables (the gateway endpoints are attached to them)."
  value       = aws_route_table.private[*].id
}

output "lambda_security_group_id" {
  description = "Security group for the VPC-attached Lambdas; pass it to the aurora module as an allowed source."
  value       = aws_security_group.lambda.id
}

output "s3_endpoint_id" {
  description = "Id of the S3 gateway endpoint."
  value       = aws_vpc_endpoint.s3.id
}

output "dynamodb_endpoint_id" {
  description = "Id of the DynamoDB gateway endpoint."
  value       = aws_vpc_endpoint.dynamodb.id
}

output "interface_endpoint_ids" {
  description = "Ids of the interface endpoints, by service short name (empty when interface_endpoint_services is)."
  value       = { for service, endpoint in aws_vpc_endpoint.interface : service => endpoint.id }
}

output "interface_endpoint_subnet_ids" {
  description = "Subnets holding each interface endpoint's ENIs, by service short name (the first interface_endpoint_az_count private subnets)."
  value       = { for service, endpoint in aws_vpc_endpoint.interface : service => sort(endpoint.subnet_ids) }
}

output "endpoints_security_group_id" {
  description = "Security group of the interface endpoints (HTTPS from the Lambda security group); null without interface endpoints."
  value       = one(aws_security_group.endpoints[*].id)
}
