output "cluster_name" {
  description = "ECS cluster name."
  value       = aws_ecs_cluster.this.name
}

output "api_service_name" {
  description = "ECS service running `athens serve`."
  value       = aws_ecs_service.api.name
}

output "sync_service_name" {
  description = "ECS service running `athens sync`."
  value       = aws_ecs_service.sync.name
}

output "admin_task_definition" {
  description = "Task definition family for one-off commands (migrate, setup, reindex, ...)."
  value       = aws_ecs_task_definition.this["admin"].family
}

output "log_group_name" {
  description = "CloudWatch log group of all Athens containers."
  value       = aws_cloudwatch_log_group.this.name
}

output "execution_role_arn" {
  description = "ECS task execution role."
  value       = aws_iam_role.execution.arn
}

output "api_task_role_arn" {
  description = "IAM role of the API tasks (reads the alias)."
  value       = aws_iam_role.task["api"].arn
}

output "sync_task_role_arn" {
  description = "IAM role of the sync task (writes its indexes)."
  value       = aws_iam_role.task["sync"].arn
}

output "admin_task_role_arn" {
  description = "IAM role of the one-off admin tasks (full access to the domain)."
  value       = aws_iam_role.task["admin"].arn
}

output "sync_desired_count" {
  description = "Tasks the sync service runs (0 or 1)."
  value       = aws_ecs_service.sync.desired_count
}

output "api_desired_count" {
  description = "Minimum number of API tasks (autoscaling owns the count between the bounds)."
  value       = aws_appautoscaling_target.api.min_capacity
}

output "environment_names" {
  description = "Names of the plain environment variables of each kind of task (api, sync, admin)."
  value       = { for kind, role in local.roles : kind => sort(keys(role.environment)) }
}

output "secret_names" {
  description = "Names of the environment variables each kind of task gets from Secrets Manager."
  value       = { for kind, role in local.roles : kind => sort([for s in role.secrets : s.name]) }
}

output "task_definitions" {
  description = "Task definitions of api, sync and admin: ARN (with revision) and a digest of their containers and roles; a plan that would change a task definition leaves these unknown."
  value = {
    for kind, td in aws_ecs_task_definition.this : kind => {
      arn    = td.arn
      digest = sha256(jsonencode([td.container_definitions, td.task_role_arn, td.execution_role_arn, td.cpu, td.memory]))
    }
  }
}
