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

output "owner_url" {
  description = "The owner's (RDS master user's) ATHENS_DATABASE_URL, without its password."
  value       = local.owner_url
}

output "owner_secret_arn" {
  description = "RDS-managed secret with the owner's username and password (key `password`)."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "runtime_secret_arn" {
  description = "Secret of the runtime role: keys username, password, url (ATHENS_DATABASE_URL of sync and API)."
  value       = aws_secretsmanager_secret.runtime.arn
  # Tasks must not start before the secret has a value.
  depends_on = [aws_secretsmanager_secret_version.runtime]
}

output "runtime_username" {
  description = "Name of the runtime PostgreSQL role."
  value       = local.runtime_username
}

output "parameter_group_family" {
  description = "Family of the DB parameter group (postgres<major>)."
  value       = aws_db_parameter_group.this.family
}

output "connection_options" {
  description = "The TLS options of both database URLs (sslmode, sslrootcert)."
  value       = local.ssl_query
}
