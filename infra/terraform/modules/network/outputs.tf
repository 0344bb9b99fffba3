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
