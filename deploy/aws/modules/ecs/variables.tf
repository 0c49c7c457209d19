variable "name" {
  description = "Name of the cluster and prefix of services, task families, roles and the log group."
  type        = string
}

variable "region" {
  description = "AWS region (log driver, KMS condition)."
  type        = string
}

variable "account_id" {
  description = "AWS account ID (condition of the roles' trust policy)."
  type        = string
}

variable "ecr_repository_url" {
  description = "ECR repository URL of the Athens image."
  type        = string
}

variable "ecr_repository_arn" {
  description = "ECR repository ARN (the execution role may pull from it only)."
  type        = string
}

variable "image_tag" {
  description = "Tag of the Athens image to run."
  type        = string
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64; must match the pushed image."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets for the tasks."
  type        = list(string)
}

variable "api_security_group_id" {
  description = "Security group of the API tasks."
  type        = string
}

variable "sync_security_group_id" {
  description = "Security group of the sync task and admin tasks."
  type        = string
}

variable "target_group_arn" {
  description = "ALB target group of the API tasks."
  type        = string
}

variable "target_group_arn_suffix" {
  description = "ARN suffix of the target group (request-count scaling)."
  type        = string
}

variable "alb_arn_suffix" {
  description = "ARN suffix of the ALB (request-count scaling)."
  type        = string
}

variable "app_port" {
  description = "Port the API listens on."
  type        = number
}

variable "engine_url" {
  description = "ATHENS_ENGINE_URL: https URL of the OpenSearch domain."
  type        = string
}

variable "athens_index" {
  description = "ATHENS_INDEX: alias Athens reads and writes."
  type        = string
}

variable "extra_environment" {
  description = "Additional plain (non-secret) environment variables for every Athens container."
  type        = map(string)
}

variable "database_owner_url" {
  description = "The database owner's ATHENS_DATABASE_URL, without password (admin tasks)."
  type        = string
}

variable "database_owner_secret_arn" {
  description = "RDS-managed secret with the owner's password (key `password`)."
  type        = string
}

variable "database_runtime_secret_arn" {
  description = "Secret of the runtime role: key `url` is the sync and API tasks' ATHENS_DATABASE_URL, `password` what `athens grant-runtime` sets."
  type        = string
}

variable "opensearch_domain_arn" {
  description = "OpenSearch domain the task roles may sign requests for."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key of the secrets and the log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the /ecs/<name> log group."
  type        = number
}

variable "api_cpu" {
  description = "CPU units of an API task (1024 = 1 vCPU)."
  type        = number
}

variable "api_memory" {
  description = "Memory (MiB) of an API task."
  type        = number
}

variable "sync_cpu" {
  description = "CPU units of the sync task and admin tasks."
  type        = number
}

variable "sync_memory" {
  description = "Memory (MiB) of the sync task and admin tasks."
  type        = number
}

variable "api_min_count" {
  description = "Minimum (and initial) number of API tasks."
  type        = number
}

variable "api_max_count" {
  description = "Maximum number of API tasks."
  type        = number
}

variable "api_cpu_target_percent" {
  description = "Average CPU utilisation the API service is scaled to hold."
  type        = number
}

variable "api_requests_per_target_per_minute" {
  description = "ALB requests per API task per minute the service is scaled to hold."
  type        = number
}

variable "run_services" {
  description = "false scales the sync and API services to zero (first deployment, before `athens migrate`/`setup`)."
  type        = bool
}

variable "run_sync" {
  description = "With run_services, false stops only the sync service (for an `athens reindex` admin task)."
  type        = bool
}

variable "create_service_linked_role" {
  description = "Create AWSServiceRoleForECS (only on an account that has never used ECS; it fails if the role exists)."
  type        = bool
}
