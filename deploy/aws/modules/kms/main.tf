# One customer-managed key for everything Athens stores at rest: CloudWatch
# log groups, the alarm topic, Secrets Manager secrets, the RDS instance (storage and
# Performance Insights), the OpenSearch domain and the ECR repository.
#
# The key policy is AWS's default one (the account administers and uses the
# key through IAM policies) plus a statement that lets the CloudWatch Logs
# service use the key, only for log groups of this account and region (Logs
# cannot use IAM grants). In a key policy, "Resource": "*" means "this key";
# it is written inline as a key policy, not as an IAM identity policy.

locals {
  account_root = "arn:${var.partition}:iam::${var.account_id}:root"
  log_groups   = "arn:${var.partition}:logs:${var.region}:${var.account_id}:log-group:*"
}

resource "aws_kms_key" "this" {
  description             = "${var.name}: logs, secrets, RDS, OpenSearch, ECR"
  enable_key_rotation     = true
  deletion_window_in_days = var.deletion_window_in_days

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministersKeyThroughIAM"
        Effect    = "Allow"
        Principal = { AWS = local.account_root }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsUsesKeyForThisAccountsLogGroups"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.amazonaws.com" }
        Action = [
          "kms:Encrypt*",
          "kms:Decrypt*",
          "kms:ReEncrypt*",
          "kms:GenerateDataKey*",
          "kms:Describe*",
        ]
        Resource = "*"
        Condition = {
          ArnLike = { "kms:EncryptionContext:aws:logs:arn" = local.log_groups }
        }
      },
      {
        # Alarms publish to the encrypted SNS topic.
        Sid       = "CloudWatchAlarmsPublishToTheEncryptedTopic"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = var.account_id }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}
