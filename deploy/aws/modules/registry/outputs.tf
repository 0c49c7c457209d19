output "repository_url" {
  description = "Repository URL to tag and push images to."
  value       = aws_ecr_repository.this.repository_url
}

output "repository_arn" {
  description = "Repository ARN (scopes the execution role's pull permission)."
  value       = aws_ecr_repository.this.arn
}
