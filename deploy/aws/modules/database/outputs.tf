output "address" {
  description = "Hostname of the instance."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Port of the instance."
  value       = aws_db_instance.this.port
}

output "instance_id" {
  description = "RDS instance identifier."
  value       = aws_db_instance.this.identifier
}

output "engine_version_actual" {
  description = "Running engine version."
  value       = aws_db_instance.this.engine_version_actual
}

output "secret_arn" {
  description = "Secrets Manager secret with keys username, password, host, port, dbname, url."
  value       = aws_secretsmanager_secret.database.arn
}
