# Two roles, least privilege:
#
# * execution role (used by ECS/Fargate to start a task): pull this ECR
#   repository, read exactly the two Athens secrets (and decrypt them with the
#   Athens key, via Secrets Manager only), write to the Athens log group.
# * task role (used by the Athens process): es:ESHttp* on the Athens
#   OpenSearch domain only. Athens authenticates to OpenSearch with basic
#   auth today; the grant matters for SigV4-signing clients and keeps the
#   domain's IAM side scoped to this role.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

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
      values   = [data.aws_caller_identity.current.account_id]
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
    resources = [var.database_secret_arn, var.engine_secret_arn]
  }

  statement {
    sid       = "DecryptAthensSecrets"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${data.aws_region.current.name}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "athens-execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

resource "aws_iam_role" "task" {
  name               = "${var.name}-ecs-task"
  description        = "The Athens process: HTTP access to its OpenSearch domain only"
  assume_role_policy = data.aws_iam_policy_document.assume_ecs_tasks.json
}

data "aws_iam_policy_document" "task" {
  statement {
    sid       = "AthensOpenSearchDomainOnly"
    actions   = ["es:ESHttp*"]
    resources = [var.opensearch_domain_arn, "${var.opensearch_domain_arn}/*"]
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "athens-task"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}
