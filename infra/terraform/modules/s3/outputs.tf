output "bucket_name" {
  description = "Name (id) of the bodies bucket."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the bodies bucket."
  value       = aws_s3_bucket.this.arn
}
