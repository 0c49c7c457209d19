# Every security group of the stack and every rule between them, in one place
# (the root module) so that the whole firewall matrix reads at a glance and the
# references between groups cannot form cycles across modules.
#
#   clients --443/80--> ALB --8080--> API tasks --5432--> RDS
#                                          \----443----> OpenSearch
#   sync task ------------------------------5432/443---> (same)
#   API + sync tasks --443--> VPC interface endpoints, S3 gateway (ECR layers)
#
# Terraform removes the default allow-all egress rule of new groups, so every
# group below can only send what is listed here. RDS, OpenSearch and the
# endpoints get no egress rule at all.

locals {
  task_groups = {
    api  = aws_security_group.api.id
    sync = aws_security_group.sync.id
  }
}

resource "aws_security_group" "alb" {
  name        = "${var.name}-alb"
  description = "Athens ALB: HTTPS (and HTTP for the redirect) from allowed CIDRs"
  vpc_id      = module.network.vpc_id
  tags        = { Name = "${var.name}-alb" }
}

resource "aws_security_group" "api" {
  #checkov:skip=CKV2_AWS_5: Attached to the API service (modules/ecs) through terraform_data.task_network in main.tf, which orders the services after the firewall rules; checkov's graph does not follow terraform_data.
  name        = "${var.name}-api"
  description = "Athens API tasks: port ${local.app_port} from the ALB only"
  vpc_id      = module.network.vpc_id
  tags        = { Name = "${var.name}-api" }
}

resource "aws_security_group" "sync" {
  #checkov:skip=CKV2_AWS_5: Attached to the sync service and the admin tasks (modules/ecs, run-task) through terraform_data.task_network in main.tf; checkov's graph does not follow terraform_data.
  name        = "${var.name}-sync"
  description = "Athens sync task: no ingress"
  vpc_id      = module.network.vpc_id
  tags        = { Name = "${var.name}-sync" }
}

resource "aws_security_group" "db" {
  name        = "${var.name}-db"
  description = "Athens RDS PostgreSQL: 5432 from the Athens tasks only"
  vpc_id      = module.network.vpc_id
  tags        = { Name = "${var.name}-db" }
}

resource "aws_security_group" "search" {
  name        = "${var.name}-search"
  description = "Athens OpenSearch domain: 443 from the Athens tasks only"
  vpc_id      = module.network.vpc_id
  tags        = { Name = "${var.name}-search" }
}

# --- ALB -------------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each = toset(var.allowed_ingress_cidrs)

  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from ${each.key}"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.key
}

resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  for_each = toset(var.allowed_ingress_cidrs)

  security_group_id = aws_security_group.alb.id
  description       = "HTTP from ${each.key}, answered with a redirect to HTTPS"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = each.key
}

resource "aws_vpc_security_group_egress_rule" "alb_to_api" {
  security_group_id            = aws_security_group.alb.id
  description                  = "Forward to the API tasks"
  ip_protocol                  = "tcp"
  from_port                    = local.app_port
  to_port                      = local.app_port
  referenced_security_group_id = aws_security_group.api.id
}

# --- API tasks ---------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "api_from_alb" {
  security_group_id            = aws_security_group.api.id
  description                  = "HTTP API from the ALB (also its health checks)"
  ip_protocol                  = "tcp"
  from_port                    = local.app_port
  to_port                      = local.app_port
  referenced_security_group_id = aws_security_group.alb.id
}

# --- egress shared by API and sync tasks ----------------------------------------

resource "aws_vpc_security_group_egress_rule" "task_to_db" {
  for_each = local.task_groups

  security_group_id            = each.value
  description                  = "PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.db.id
}

resource "aws_vpc_security_group_egress_rule" "task_to_search" {
  for_each = local.task_groups

  security_group_id            = each.value
  description                  = "OpenSearch HTTPS"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.search.id
}

resource "aws_vpc_security_group_egress_rule" "task_to_endpoints" {
  for_each = local.task_groups

  security_group_id            = each.value
  description                  = "VPC interface endpoints (ECR, logs, Secrets Manager)"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = module.network.endpoints_security_group_id
}

resource "aws_vpc_security_group_egress_rule" "task_to_s3" {
  for_each = local.task_groups

  security_group_id = each.value
  description       = "S3 gateway endpoint (ECR image layers)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = module.network.s3_prefix_list_id
}

# --- RDS, OpenSearch, endpoints: ingress from the tasks ------------------------

resource "aws_vpc_security_group_ingress_rule" "db_from_tasks" {
  for_each = local.task_groups

  security_group_id            = aws_security_group.db.id
  description                  = "PostgreSQL from the Athens ${each.key} tasks"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = each.value
}

resource "aws_vpc_security_group_ingress_rule" "search_from_tasks" {
  for_each = local.task_groups

  security_group_id            = aws_security_group.search.id
  description                  = "HTTPS from the Athens ${each.key} tasks"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = each.value
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_tasks" {
  for_each = local.task_groups

  security_group_id            = module.network.endpoints_security_group_id
  description                  = "HTTPS from the Athens ${each.key} tasks"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = each.value
}
