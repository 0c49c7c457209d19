# Amazon OpenSearch Service domain inside the VPC.
#
# Access control: IAM. Athens signs every request with SigV4 (engine.auth = aws-sigv4) using its
# ECS task roles, and the domain's access policy (search_access.tf in the root module, which
# knows the roles) says per role and per index path what each may do. No password exists for the
# domain. Fine-grained access control is off: with IAM as the authority, FGAC would add a second
# user database to administer (and map every role into).

locals {
  domain_arn = "arn:${var.partition}:es:${var.region}:${var.account_id}:domain/${var.name}"
  log_types = {
    INDEX_SLOW_LOGS     = "index-slow"
    SEARCH_SLOW_LOGS    = "search-slow"
    ES_APPLICATION_LOGS = "application"
  }
}

# OpenSearch needs its service-linked role to place ENIs in the VPC. It exists once per account:
# with create_service_linked_role = false (the account has it already), the domain is created
# directly; with true it is created first, and the domain waits for it (below).
resource "aws_iam_service_linked_role" "opensearch" {
  count            = var.create_service_linked_role ? 1 : 0
  aws_service_name = "opensearchservice.amazonaws.com"
}

# A new service-linked role takes a few seconds to be usable by the service; creating the domain
# at once fails now and then with "Before you can proceed, you must enable a service-linked
# role". Wait once, when the role is created (the time provider would do the same, but is one
# more provider to install).
resource "terraform_data" "service_linked_role_propagation" {
  count            = var.create_service_linked_role ? 1 : 0
  triggers_replace = aws_iam_service_linked_role.opensearch[0].id

  provisioner "local-exec" {
    command = "sleep 20"
  }
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
      values   = [var.account_id]
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

    # Dedicated masters keep cluster management off the data nodes. Over two AZs three masters
    # sit two and one: losing the AZ that holds two loses the quorum, so they protect against
    # losing a node, not an AZ (that needs three AZs).
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
    #checkov:skip=CKV2_AWS_52: Authorization is IAM: every request is SigV4-signed by an ECS task role and the domain's access policy grants each role its index paths only (see the top of this file); fine-grained access control would add a second user database to administer.
    enabled = false
  }

  software_update_options {
    auto_software_update_enabled = true
  }

  #checkov:skip=CKV_AWS_317: Audit logs are a feature of fine-grained access control, which is off (authorization is IAM, see above); who called the domain's configuration API is in CloudTrail, and the slow and application logs are published.
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

  depends_on = [
    terraform_data.service_linked_role_propagation,
    aws_cloudwatch_log_resource_policy.this,
  ]
}
