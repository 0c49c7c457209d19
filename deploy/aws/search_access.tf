# Who may do what on the OpenSearch domain: its access policy. Every request is SigV4-signed by
# an ECS task role (engine.auth = aws-sigv4), and each role gets the index paths it needs:
#
# * api (`athens serve`): read the alias only (search it, see which index it names);
# * sync (`athens sync`): create, write, refresh and drop its own indexes (<alias>-*), move the
#   alias; nothing outside its indexes, no cluster or security settings;
# * admin (one-off `athens reindex`, `verify`, `status`): everything on the domain.
#
# The roles' identity policies (modules/ecs/iam.tf) grant the same verbs on the domain.

locals {
  domain_path = "${module.search.domain_arn}/"
}

data "aws_iam_policy_document" "access" {
  statement {
    sid     = "AdminTasksEverything"
    actions = ["es:ESHttp*"]
    resources = [
      module.search.domain_arn,
      "${module.search.domain_arn}/*",
    ]
    principals {
      type        = "AWS"
      identifiers = [module.ecs.admin_task_role_arn]
    }
  }

  # GET / (the engine's banner, read on connect) and GET /_alias/<alias> (which index serves).
  statement {
    sid     = "RuntimeReadsBannerAndAlias"
    actions = ["es:ESHttpGet", "es:ESHttpHead"]
    resources = [
      local.domain_path,
      "${local.domain_path}_alias/${var.athens_index}",
    ]
    principals {
      type        = "AWS"
      identifiers = [module.ecs.api_task_role_arn, module.ecs.sync_task_role_arn]
    }
  }

  statement {
    sid     = "ApiSearchesTheAlias"
    actions = ["es:ESHttpGet", "es:ESHttpPost"]
    resources = [
      "${local.domain_path}${var.athens_index}/_search",
    ]
    principals {
      type        = "AWS"
      identifiers = [module.ecs.api_task_role_arn]
    }
  }

  # The sync's own indexes are <alias>-v<mapping>-<stamp>: it creates, writes (_bulk), reads
  # (_mget, _search, _count), refreshes, retunes (_settings) and drops them, lists them
  # (/<alias>-*/_alias) and moves the alias between them (POST /_aliases, which names only them).
  statement {
    sid     = "SyncOwnsItsIndexes"
    actions = ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut", "es:ESHttpDelete"]
    resources = [
      "${local.domain_path}${var.athens_index}-*",
    ]
    principals {
      type        = "AWS"
      identifiers = [module.ecs.sync_task_role_arn]
    }
  }

  statement {
    sid     = "SyncMovesTheAlias"
    actions = ["es:ESHttpPost"]
    resources = [
      "${local.domain_path}_aliases",
    ]
    principals {
      type        = "AWS"
      identifiers = [module.ecs.sync_task_role_arn]
    }
  }
}

resource "aws_opensearch_domain_policy" "this" {
  domain_name     = module.search.domain_name
  access_policies = data.aws_iam_policy_document.access.json
}
