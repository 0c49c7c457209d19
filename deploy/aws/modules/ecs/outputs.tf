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

output "task_role_arn" {
  description = "IAM role of the Athens process."
  value       = aws_iam_role.task.arn
}
