# Amazon OpenSearch Service domain inside the VPC.
#
# Access control: fine-grained access control (FGAC) with the internal user
# database. Athens authenticates with HTTP basic auth
# (ATHENS_ENGINE_USERNAME / ATHENS_ENGINE_PASSWORD, injected from Secrets
# Manager); it does not sign requests with SigV4, so an IAM-principal-only
# domain policy would reject it. The domain policy therefore lets any caller
# *reach* the domain, while who may reach it at all is decided by the VPC
# placement and the security group (443 from the Athens tasks only), and what
# a caller may do is decided by FGAC. The ECS task role additionally gets
# es:ESHttp* on this domain only (see the ecs module) for SigV4 clients.

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
    random = {
      source = "hashicorp/random"
    }
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  domain_arn = "arn:${data.aws_partition.current.partition}:es:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:domain/${var.name}"
  log_types = {
    INDEX_SLOW_LOGS     = "index-slow"
    SEARCH_SLOW_LOGS    = "search-slow"
    ES_APPLICATION_LOGS = "application"
    AUDIT_LOGS          = "audit"
  }
}

# OpenSearch needs its service-linked role to place ENIs in the VPC. It
# exists once per account: set create_service_linked_role = false if the
# account already has AWSServiceRoleForAmazonOpenSearchService.
resource "aws_iam_service_linked_role" "opensearch" {
  count            = var.create_service_linked_role ? 1 : 0
  aws_service_name = "opensearchservice.amazonaws.com"
}

resource "random_password" "master" {
  length           = 32
  min_upper        = 2
  min_lower        = 2
  min_numeric      = 2
  min_special      = 2
  override_special = "!#%*-_=+" # FGAC wants at least one special character
}

resource "aws_cloudwatch_log_group" "this" {
  for_each = local.log_types

  name              = "/aws/opensearch/${var.name}/${each.value}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

data "aws_iam_policy_document" "logs" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for lg in aws_cloudwatch_log_group.this : "${lg.arn}:*"]

    principals {
      type        = "Service"
      identifiers = ["es.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [local.domain_arn]
    }
  }
}

resource "aws_cloudwatch_log_resource_policy" "this" {
  policy_name     = "${var.name}-opensearch-logs"
  policy_document = data.aws_iam_policy_document.logs.json
}

data "aws_iam_policy_document" "access" {
  #checkov:skip=CKV_AWS_283: Athens authenticates with HTTP basic auth against fine-grained access control, not SigV4; a domain policy naming IAM principals would reject its unsigned requests. Who can connect is limited by VPC placement and the security group (443 from the Athens tasks only); what they can do is decided by FGAC.
  statement {
    actions   = ["es:ESHttp*"]
    resources = ["${local.domain_arn}/*"]

    principals {
      type        = "AWS"
      identifiers = ["*"] # reachability only; authorization is FGAC (see above)
    }
  }
}

resource "aws_opensearch_domain" "this" {
  domain_name    = var.name
  engine_version = var.engine_version

  cluster_config {
    instance_type          = var.instance_type
    instance_count         = var.instance_count
    zone_awareness_enabled = true

    zone_awareness_config {
      availability_zone_count = 2
    }

    # Three dedicated masters keep a quorum when one AZ is lost; with only two
    # data nodes acting as masters, losing either one stops the cluster.
    dedicated_master_enabled = var.dedicated_master_enabled
    dedicated_master_type    = var.dedicated_master_enabled ? var.dedicated_master_type : null
    dedicated_master_count   = var.dedicated_master_enabled ? var.dedicated_master_count : null
  }

  ebs_options {
    ebs_enabled = true
    volume_type = "gp3"
    volume_size = var.volume_size_gb
  }

  vpc_options {
    subnet_ids         = var.subnet_ids
    security_group_ids = [var.security_group_id]
  }

  encrypt_at_rest {
    enabled    = true
    kms_key_id = var.kms_key_arn
  }

  node_to_node_encryption {
    enabled = true
  }

  domain_endpoint_options {
    enforce_https       = true
    tls_security_policy = "Policy-Min-TLS-1-2-PFS-2023-10"
  }

  advanced_security_options {
    enabled                        = true
    anonymous_auth_enabled         = false
    internal_user_database_enabled = true

    master_user_options {
      master_user_name     = var.master_user_name
      master_user_password = random_password.master.result
    }
  }

  software_update_options {
    auto_software_update_enabled = true
  }

  log_publishing_options {
    log_type                 = "INDEX_SLOW_LOGS"
    cloudwatch_log_group_arn = aws_cloudwatch_log_group.this["INDEX_SLOW_LOGS"].arn
    enabled                  = true
  }

  log_publishing_options {
    log_type                 = "SEARCH_SLOW_LOGS"
    cloudwatch_log_group_arn = aws_cloudwatch_log_group.this["SEARCH_SLOW_LOGS"].arn
    enabled                  = true
  }

  log_publishing_options {
    log_type                 = "ES_APPLICATION_LOGS"
    cloudwatch_log_group_arn = aws_cloudwatch_log_group.this["ES_APPLICATION_LOGS"].arn
    enabled                  = true
  }

  log_publishing_options {
    log_type                 = "AUDIT_LOGS"
    cloudwatch_log_group_arn = aws_cloudwatch_log_group.this["AUDIT_LOGS"].arn
    enabled                  = true
  }

  access_policies = data.aws_iam_policy_document.access.json

  depends_on = [
    aws_iam_service_linked_role.opensearch,
    aws_cloudwatch_log_resource_policy.this,
  ]
}

resource "aws_secretsmanager_secret" "engine" {
  #checkov:skip=CKV2_AWS_57: Not rotated automatically: the password belongs to the FGAC internal-database master user, which lives in the OpenSearch security index where no Secrets Manager rotation function can change it, and ECS injects it at task start. Rotate deliberately: taint random_password.master, apply, force a new deployment of both services (README.md "Rotating credentials").
  name                    = "${var.name}/engine"
  description             = "Athens OpenSearch basic-auth credentials (ATHENS_ENGINE_USERNAME / ATHENS_ENGINE_PASSWORD)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "engine" {
  secret_id = aws_secretsmanager_secret.engine.id
  secret_string = jsonencode({
    username = var.master_user_name
    password = random_password.master.result
    url      = "https://${aws_opensearch_domain.this.endpoint}"
  })
}
