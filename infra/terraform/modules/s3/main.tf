locals {
  # Only transition when it happens before the bodies expire.
  body_transition_days = (
    var.body_transition_to_ia_days != null && try(var.body_transition_to_ia_days < var.body_retention_days, false)
    ? var.body_transition_to_ia_days
    : null
  )
}

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:Server access logging needs a second log bucket; use CloudTrail S3 data events where an audit trail is required.
  #checkov:skip=CKV_AWS_144:Bodies are derived log data with a retention window; cross-region replication would double storage for no recovery need.
  #checkov:skip=CKV2_AWS_62:Nothing consumes bucket events; heliport enqueues its own work on SQS.
  bucket        = var.bucket_name
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket = aws_s3_bucket.this.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# ACLs off: the bucket owner owns every object.
resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != null
  }
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id

  versioning_configuration {
    status = var.versioning_enabled ? "Enabled" : "Suspended"
  }
}

data "aws_iam_policy_document" "tls_only" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.this.arn,
      "${aws_s3_bucket.this.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = data.aws_iam_policy_document.tls_only.json

  # A policy put before the public access block exists can race with it.
  depends_on = [aws_s3_bucket_public_access_block.this]
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  # Whole bucket: failed multipart uploads, old versions and orphaned delete markers.
  rule {
    id     = "housekeeping"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_retention_days
    }

    expiration {
      expired_object_delete_marker = true
    }
  }

  rule {
    id     = "bodies"
    status = "Enabled"

    filter {
      prefix = "organizations/"
    }

    dynamic "transition" {
      for_each = local.body_transition_days == null ? [] : [local.body_transition_days]
      content {
        days          = transition.value
        storage_class = "STANDARD_IA"
      }
    }

    expiration {
      days = var.body_retention_days
    }
  }

  rule {
    id     = "cache"
    status = "Enabled"

    filter {
      prefix = "cache/"
    }

    expiration {
      days = var.cache_retention_days
    }
  }

  rule {
    id     = "claims"
    status = "Enabled"

    filter {
      prefix = "claims/"
    }

    expiration {
      days = var.claims_retention_days
    }
  }

  # spool/ has no expiration on purpose: records there wait to be re-enqueued.
  rule {
    id     = "spool-dead"
    status = "Enabled"

    filter {
      prefix = "spool-dead/"
    }

    expiration {
      days = var.spool_dead_retention_days
    }
  }

  # Rules are evaluated against the versioning state.
  depends_on = [aws_s3_bucket_versioning.this]
}
