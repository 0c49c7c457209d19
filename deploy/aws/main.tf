# Athens on AWS: wiring of the modules under ./modules. See README.md.

locals {
  app_port = 8080
  # Zones "a" and "b" exist in every region; pin them unless told otherwise.
  availability_zones = length(var.availability_zones) == 2 ? var.availability_zones : ["${var.region}a", "${var.region}b"]
}

# Fails the plan early if a chosen zone is not available to this account.
data "aws_availability_zones" "selected" {
  state = "available"

  filter {
    name   = "zone-name"
    values = local.availability_zones
  }

  lifecycle {
    postcondition {
      condition     = length(self.names) == 2
      error_message = "Both availability zones ${join(", ", local.availability_zones)} must be available in ${var.region}; set availability_zones."
    }
  }
}

module "kms" {
  source = "./modules/kms"

  name                    = var.name
  deletion_window_in_days = var.kms_deletion_window_days
}

module "network" {
  source = "./modules/network"

  name               = var.name
  cidr_block         = var.vpc_cidr
  availability_zones = data.aws_availability_zones.selected.names
  kms_key_arn        = module.kms.key_arn
  log_retention_days = var.log_retention_days
}

module "registry" {
  source = "./modules/registry"

  name        = var.ecr_repository_name
  kms_key_arn = module.kms.key_arn
}

module "database" {
  source = "./modules/database"

  name                          = var.name
  subnet_ids                    = module.network.private_subnet_ids
  security_group_id             = aws_security_group.db.id
  kms_key_arn                   = module.kms.key_arn
  engine_version                = var.db_engine_version
  parameter_group_family        = var.db_parameter_group_family
  instance_class                = var.db_instance_class
  allocated_storage_gb          = var.db_allocated_storage_gb
  max_allocated_storage_gb      = var.db_max_allocated_storage_gb
  multi_az                      = var.db_multi_az
  backup_retention_days         = var.db_backup_retention_days
  deletion_protection           = var.db_deletion_protection
  log_min_duration_statement_ms = var.db_log_min_duration_statement_ms
  max_connections               = var.db_max_connections
  sslmode                       = var.db_sslmode
  log_retention_days            = var.log_retention_days
  secret_recovery_window_days   = var.secret_recovery_window_days
}

module "search" {
  source = "./modules/search"

  name                        = var.name
  engine_version              = var.search_engine_version
  instance_type               = var.search_instance_type
  instance_count              = var.search_instance_count
  dedicated_master_enabled    = var.search_dedicated_master_enabled
  dedicated_master_type       = var.search_dedicated_master_type
  dedicated_master_count      = var.search_dedicated_master_count
  volume_size_gb              = var.search_volume_size_gb
  subnet_ids                  = module.network.private_subnet_ids
  security_group_id           = aws_security_group.search.id
  kms_key_arn                 = module.kms.key_arn
  master_user_name            = var.search_master_user_name
  create_service_linked_role  = var.create_opensearch_service_linked_role
  log_retention_days          = var.log_retention_days
  secret_recovery_window_days = var.secret_recovery_window_days
}

module "alb" {
  source = "./modules/alb"

  name                      = var.name
  vpc_id                    = module.network.vpc_id
  public_subnet_ids         = module.network.public_subnet_ids
  security_group_id         = aws_security_group.alb.id
  certificate_arn           = var.acm_certificate_arn
  ssl_policy                = var.alb_ssl_policy
  app_port                  = local.app_port
  health_check_path         = "/readyz"
  deletion_protection       = var.alb_deletion_protection
  waf_rate_limit_per_5min   = var.waf_rate_limit_per_5min
  block_metrics             = var.alb_block_metrics
  kms_key_arn               = module.kms.key_arn
  log_retention_days        = var.log_retention_days
  access_log_retention_days = var.alb_access_log_retention_days
}

module "ecs" {
  source = "./modules/ecs"

  name                               = var.name
  ecr_repository_url                 = module.registry.repository_url
  ecr_repository_arn                 = module.registry.repository_arn
  image_tag                          = var.image_tag
  cpu_architecture                   = var.cpu_architecture
  private_subnet_ids                 = module.network.private_subnet_ids
  api_security_group_id              = aws_security_group.api.id
  sync_security_group_id             = aws_security_group.sync.id
  target_group_arn                   = module.alb.target_group_arn
  target_group_arn_suffix            = module.alb.target_group_arn_suffix
  alb_arn_suffix                     = module.alb.arn_suffix
  app_port                           = local.app_port
  engine_url                         = module.search.endpoint_url
  athens_index                       = var.athens_index
  extra_environment                  = var.extra_environment
  database_secret_arn                = module.database.secret_arn
  engine_secret_arn                  = module.search.secret_arn
  opensearch_domain_arn              = module.search.domain_arn
  kms_key_arn                        = module.kms.key_arn
  log_retention_days                 = var.log_retention_days
  api_cpu                            = var.api_cpu
  api_memory                         = var.api_memory
  sync_cpu                           = var.sync_cpu
  sync_memory                        = var.sync_memory
  api_min_count                      = var.api_min_count
  api_max_count                      = var.api_max_count
  api_cpu_target_percent             = var.api_cpu_target_percent
  api_requests_per_target_per_minute = var.api_requests_per_target_per_minute
  run_services                       = var.run_services

  # The API target group must be attached to a listener before a service can
  # register into it, and the first tasks need their egress to ECR, S3, logs
  # and Secrets Manager in place to start at all.
  depends_on = [
    module.alb,
    aws_vpc_security_group_egress_rule.task_to_endpoints,
    aws_vpc_security_group_egress_rule.task_to_s3,
    aws_vpc_security_group_ingress_rule.endpoints_from_tasks,
    aws_vpc_security_group_egress_rule.task_to_db,
    aws_vpc_security_group_ingress_rule.db_from_tasks,
    aws_vpc_security_group_egress_rule.task_to_search,
    aws_vpc_security_group_ingress_rule.search_from_tasks,
    aws_vpc_security_group_ingress_rule.api_from_alb,
    aws_vpc_security_group_egress_rule.alb_to_api,
  ]
}
