# Athens on AWS: wiring of the modules under ./modules. See README.md.

# The account and partition are read once here and passed to the modules, as is the region, so
# that no module reads its own data sources: a data source in a module can be deferred to the
# apply (and then everything built from it shows as "known after apply"), which made an ALB
# tweak replace every task definition.
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  app_port   = 8080
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
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
  region                  = var.region
  account_id              = local.account_id
  partition               = local.partition
  deletion_window_in_days = var.kms_deletion_window_days
}

module "network" {
  source = "./modules/network"

  name               = var.name
  region             = var.region
  cidr_block         = var.vpc_cidr
  availability_zones = data.aws_availability_zones.selected.names
  kms_key_arn        = module.kms.key_arn
  log_retention_days = var.log_retention_days
}

module "registry" {
  source = "./modules/registry"

  name                = var.ecr_repository_name
  kms_key_arn         = module.kms.key_arn
  expiring_tag_prefix = var.ecr_expiring_tag_prefixes
  keep_images         = var.ecr_keep_expiring_images
}

module "database" {
  source = "./modules/database"

  name                          = var.name
  partition                     = local.partition
  subnet_ids                    = module.network.private_subnet_ids
  security_group_id             = aws_security_group.db.id
  kms_key_arn                   = module.kms.key_arn
  engine_version                = var.db_engine_version
  parameters                    = merge(var.db_logical_replication ? { "rds.logical_replication" = "1", "max_slot_wal_keep_size" = tostring(var.db_max_slot_wal_keep_size_mb) } : {}, var.db_parameters)
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

  name                       = var.name
  region                     = var.region
  account_id                 = local.account_id
  partition                  = local.partition
  engine_version             = var.search_engine_version
  instance_type              = var.search_instance_type
  instance_count             = var.search_instance_count
  dedicated_master_enabled   = var.search_dedicated_master_enabled
  dedicated_master_type      = var.search_dedicated_master_type
  dedicated_master_count     = var.search_dedicated_master_count
  volume_size_gb             = var.search_volume_size_gb
  subnet_ids                 = module.network.private_subnet_ids
  security_group_id          = aws_security_group.search.id
  kms_key_arn                = module.kms.key_arn
  create_service_linked_role = var.create_opensearch_service_linked_role
  log_retention_days         = var.log_retention_days
}

module "alb" {
  source = "./modules/alb"

  name                      = var.name
  region                    = var.region
  account_id                = local.account_id
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

# The services must not start before the firewall lets their tasks pull the image, read their
# secrets, ship logs and reach RDS, OpenSearch and the ALB. This stands for all those rules: the
# services get their security groups through it, so they are created after the rules, and since
# it only changes when a group is replaced, a rule change does not touch the services (a
# module-level depends_on would defer every data source of the module and so replace the task
# definitions on any change to the rules or the ALB).
resource "terraform_data" "task_network" {
  input = {
    api  = aws_security_group.api.id
    sync = aws_security_group.sync.id
  }

  depends_on = [
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

module "ecs" {
  source = "./modules/ecs"

  name                               = var.name
  region                             = var.region
  account_id                         = local.account_id
  ecr_repository_url                 = module.registry.repository_url
  ecr_repository_arn                 = module.registry.repository_arn
  image_tag                          = var.image_tag
  cpu_architecture                   = var.cpu_architecture
  private_subnet_ids                 = module.network.private_subnet_ids
  api_security_group_id              = terraform_data.task_network.output.api
  sync_security_group_id             = terraform_data.task_network.output.sync
  target_group_arn                   = module.alb.target_group_arn
  target_group_arn_suffix            = module.alb.target_group_arn_suffix
  alb_arn_suffix                     = module.alb.arn_suffix
  app_port                           = local.app_port
  engine_url                         = module.search.endpoint_url
  opensearch_domain_arn              = module.search.domain_arn
  athens_index                       = var.athens_index
  extra_environment                  = var.extra_environment
  database_owner_url                 = module.database.owner_url
  database_owner_secret_arn          = module.database.owner_secret_arn
  database_runtime_secret_arn        = module.database.runtime_secret_arn
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
  run_sync                           = var.run_sync
  create_service_linked_role         = var.create_ecs_service_linked_role
}
