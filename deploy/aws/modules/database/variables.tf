variable "name" {
  description = "Identifier of the RDS instance and name prefix of its companions."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (two AZs) for the DB subnet group."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group of the instance (5432 from the Athens tasks only)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for storage, Performance Insights, the secret and log groups."
  type        = string
}

variable "engine_version" {
  description = "PostgreSQL major version (\"16\"); RDS picks and auto-upgrades the minor, and the parameter group family is postgres<major>."
  type        = string
}

variable "parameters" {
  description = "Extra PostgreSQL parameters, name => value, merged over Athens' own."
  type        = map(string)
  default     = {}
}

variable "partition" {
  description = "AWS partition (aws, aws-cn, aws-us-gov)."
  type        = string
}

variable "instance_class" {
  description = "RDS instance class."
  type        = string
}

variable "allocated_storage_gb" {
  description = "Initial gp3 storage in GiB."
  type        = number
}

variable "max_allocated_storage_gb" {
  description = "Upper bound for storage autoscaling in GiB."
  type        = number
}

variable "multi_az" {
  description = "Run a synchronous standby in the second AZ."
  type        = bool
}

variable "backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery window)."
  type        = number
}

variable "deletion_protection" {
  description = "Refuse to delete the instance until this is turned off."
  type        = bool
}

variable "log_min_duration_statement_ms" {
  description = "Log statements slower than this many milliseconds (-1 disables)."
  type        = number
}

variable "max_connections" {
  description = "Override max_connections (needs a reboot); null keeps the RDS default derived from memory."
  type        = number
  default     = null
}

variable "sslmode" {
  description = "sslmode written into ATHENS_DATABASE_URL."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the exported PostgreSQL log groups."
  type        = number
}

variable "secret_recovery_window_days" {
  description = "Days a deleted secret can still be restored (0 deletes at once)."
  type        = number
}
