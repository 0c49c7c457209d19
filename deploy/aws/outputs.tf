output "alb_dns_name" {
  description = "DNS name of the ALB: point the certificate's host name at it (CNAME or Route 53 alias)."
  value       = module.alb.dns_name
}

output "alb_zone_id" {
  description = "Hosted zone ID of the ALB, for a Route 53 alias record."
  value       = module.alb.zone_id
}

output "ecr_repository_url" {
  description = "Push the Athens image here: docker push <url>:<image_tag>."
  value       = module.registry.repository_url
}

output "ecs_cluster_name" {
  description = "ECS cluster running Athens."
  value       = module.ecs.cluster_name
}

output "ecs_api_service_name" {
  description = "ECS service running `athens serve` behind the ALB."
  value       = module.ecs.api_service_name
}

output "ecs_sync_service_name" {
  description = "ECS service running the single `athens sync` writer."
  value       = module.ecs.sync_service_name
}

output "ecs_admin_task_definition" {
  description = "Task definition family for one-off commands (migrate, setup, seed, reindex, status, verify)."
  value       = module.ecs.admin_task_definition
}

output "ecs_task_definitions" {
  description = "Task definitions of the api, sync and admin tasks: ARN (with revision) and a digest of their containers and roles."
  value       = module.ecs.task_definitions
}

output "ecs_log_group" {
  description = "CloudWatch log group of the Athens containers."
  value       = module.ecs.log_group_name
}

output "private_subnet_ids" {
  description = "Private subnets (for `aws ecs run-task --network-configuration`)."
  value       = module.network.private_subnet_ids
}

output "admin_task_security_group_id" {
  description = "Security group to give one-off admin tasks (same as the sync task)."
  value       = aws_security_group.sync.id
}

output "alarm_topic_arn" {
  description = "SNS topic the CloudWatch alarms notify (subscribe e-mail, chat or paging to it)."
  value       = aws_sns_topic.alarms.arn
}

output "run_admin_task_example" {
  description = "Command that runs a one-off Athens subcommand (replace migrate as needed)."
  value = format(
    "aws ecs run-task --region %s --cluster %s --launch-type FARGATE --task-definition %s --network-configuration 'awsvpcConfiguration={subnets=[%s],securityGroups=[%s],assignPublicIp=DISABLED}' --overrides '{\"containerOverrides\":[{\"name\":\"athens\",\"command\":[\"migrate\"]}]}'",
    var.region,
    module.ecs.cluster_name,
    module.ecs.admin_task_definition,
    join(",", module.network.private_subnet_ids),
    aws_security_group.sync.id,
  )
}

output "rds_address" {
  description = "Hostname of the PostgreSQL instance (private)."
  value       = module.database.address
}

output "database_owner_secret_arn" {
  description = "RDS-managed secret with the owner's (master user's) password; admin tasks use it."
  value       = module.database.owner_secret_arn
}

output "database_runtime_secret_arn" {
  description = "Secret of the runtime role athens_runtime; its key `url` is the sync and API tasks' ATHENS_DATABASE_URL."
  value       = module.database.runtime_secret_arn
}

output "opensearch_endpoint_url" {
  description = "ATHENS_ENGINE_URL: HTTPS endpoint of the OpenSearch domain (private)."
  value       = module.search.endpoint_url
}


output "kms_key_arn" {
  description = "Customer-managed KMS key encrypting logs, secrets, RDS, OpenSearch and ECR."
  value       = module.kms.key_arn
}
