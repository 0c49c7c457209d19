# Roles, least privilege:
#
# * execution role (used by ECS/Fargate to start a task): pull this ECR repository, read exactly
#   the Athens secrets (and decrypt them with the Athens key, via Secrets Manager only), write to
#   the Athens log group.
# * one task role per kind of task (used by the Athens process to sign its OpenSearch requests):
#   api, sync and admin. What each may do on the domain is in the domain's access policy
#   (modules/search); the identity policies below grant the same HTTP verbs on the domain, so that
#   neither side alone opens anything.

locals {
  assume_condition_account = var.account_id
  task_kinds               = toset(["api", "sync", "admin"])
}

data "aws_iam_policy_document" "assume_ecs_tasks" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.assume_condition_account]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-ecs-execution"
  description        = "ECS pulls the Athens image, reads its secrets and writes its logs"
  assume_role_policy = data.aws_iam_policy_document.assume_ecs_tasks.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "EcrAuthToken"
    actions   = ["ecr:GetAuthorizationToken"] # cannot be scoped to a resource
    resources = ["*"]
  }

  statement {
    sid = "PullAthensImage"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [var.ecr_repository_arn]
  }

  statement {
    sid       = "WriteAthensLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  statement {
    sid       = "ReadAthensSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.database_owner_secret_arn, var.database_runtime_secret_arn]
  }

  statement {
    sid       = "DecryptAthensSecrets"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "athens-execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

resource "aws_iam_role" "task" {
  for_each = local.task_kinds

  name               = "${var.name}-ecs-${each.key}"
  description        = "Athens ${each.key} tasks: sign requests to the Athens OpenSearch domain (what they may do there is in its access policy)"
  assume_role_policy = data.aws_iam_policy_document.assume_ecs_tasks.json
}

data "aws_iam_policy_document" "task" {
  for_each = local.task_kinds

  statement {
    sid = "AthensOpenSearchDomainOnly"
    actions = {
      api   = ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost"]
      sync  = ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut", "es:ESHttpDelete"]
      admin = ["es:ESHttp*"]
    }[each.key]
    resources = [var.opensearch_domain_arn, "${var.opensearch_domain_arn}/*"]
  }
}

resource "aws_iam_role_policy" "task" {
  for_each = local.task_kinds

  name   = "athens-${each.key}"
  role   = aws_iam_role.task[each.key].id
  policy = data.aws_iam_policy_document.task[each.key].json
}
