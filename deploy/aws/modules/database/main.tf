# RDS PostgreSQL for Athens' source tables and its change-capture outbox.
#
# Change capture needs nothing special from RDS: Athens installs ordinary
# row triggers that write to an outbox table and NOTIFY, and the sync holds a
# session-level advisory lock as its writer lease. No replication slot, no
# `rds.logical_replication`, no rds_superuser-only extension. The master user
# created here owns the database, which is enough for `athens migrate` and
# `athens setup` (CREATE FUNCTION / CREATE TRIGGER on tables it owns).
#
# Two roles log in:
#
# * the owner: the RDS master user, whose password RDS itself generates, keeps in a Secrets
#   Manager secret of its own (encrypted with the Athens key) and rotates. Only one-off admin
#   tasks (migrate, setup, grant-runtime, reindex, verify) use it: they read the secret when they
#   start, so a rotation never breaks them. Terraform never sees this password.
# * the runtime role (athens_runtime): what the long-running sync and API tasks log in as. It can
#   read the five tables and use the capture objects, nothing more (docs/operations.md "Least
#   privilege"); the admin task `athens grant-runtime` creates it with the password of the
#   runtime secret below. Secrets Manager generates that password once (at the first apply; later
#   plans read a new random value but ignore it).
#
# Both connect with TLS (rds.force_ssl) and, by default, verify-full against the RDS CA bundle
# the image carries.

locals {
  db_name          = "athens"
  owner_username   = "athens"
  runtime_username = "athens_runtime"
  # The image puts Amazon's RDS CA bundle here (deploy/docker/Dockerfile).
  ssl_query = var.sslmode == "require" ? "sslmode=require" : "sslmode=${var.sslmode}&sslrootcert=/etc/athens/rds-ca-bundle.pem"
  # The owner's URL carries no password: admin tasks get it from RDS's own secret as
  # ATHENS_DATABASE_PASSWORD.
  owner_url = format(
    "postgres://%s@%s:%d/%s?%s",
    local.owner_username,
    aws_db_instance.this.address,
    aws_db_instance.this.port,
    local.db_name,
    local.ssl_query,
  )
  family = "postgres${var.engine_version}"
  # log_statement = ddl logs CREATE/ALTER ROLE too: `athens grant-runtime` sends the password as
  # a SCRAM verifier, never in clear, so the log holds no password.
  parameters = merge(
    {
      "log_statement"              = "ddl"
      "log_min_duration_statement" = tostring(var.log_min_duration_statement_ms)
      "log_lock_waits"             = "1"
      "password_encryption"        = "scram-sha-256"
      # The sync's writer lease is a session advisory lock. If the task's host vanishes without
      # closing its socket, keepalives make the server drop the session (and so release the lease
      # for the standby) within ~2 minutes instead of the kernel default of hours.
      "tcp_keepalives_idle"     = "60"
      "tcp_keepalives_interval" = "10"
      "tcp_keepalives_count"    = "6"
    },
    var.parameters,
  )
  # Parameters RDS applies only at a reboot.
  static_parameters = ["max_connections", "rds.logical_replication", "shared_preload_libraries", "max_replication_slots", "max_wal_senders"]
}

resource "aws_db_subnet_group" "this" {
  name        = var.name
  description = "Private subnets for ${var.name}"
  subnet_ids  = var.subnet_ids
}

resource "aws_db_parameter_group" "this" {
  name_prefix = "${var.name}-${local.family}-"
  family      = local.family
  description = "Athens: TLS only, DDL and slow-query logging, TCP keepalives for the sync lease"

  # Only TLS connections.
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  dynamic "parameter" {
    for_each = merge(local.parameters, var.max_connections == null ? {} : { max_connections = tostring(var.max_connections) })
    content {
      name         = parameter.key
      value        = parameter.value
      apply_method = contains(local.static_parameters, parameter.key) ? "pending-reboot" : "immediate"
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

# RDS creates these on its own when log export is enabled, unencrypted and
# kept forever; creating them first sets retention and KMS.
resource "aws_cloudwatch_log_group" "exports" {
  for_each = toset(["postgresql", "upgrade"])

  name              = "/aws/rds/instance/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

data "aws_iam_policy_document" "monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  name               = "${var.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.monitoring_assume.json
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:${var.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "this" {
  identifier     = var.name
  engine         = "postgres"
  engine_version = var.engine_version
  instance_class = var.instance_class

  db_name                       = local.db_name
  username                      = local.owner_username
  manage_master_user_password   = true
  master_user_secret_kms_key_id = var.kms_key_arn
  port                          = 5432

  allocated_storage     = var.allocated_storage_gb
  max_allocated_storage = var.max_allocated_storage_gb
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = var.kms_key_arn

  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [var.security_group_id]
  publicly_accessible    = false
  multi_az               = var.multi_az
  parameter_group_name   = aws_db_parameter_group.this.name
  ca_cert_identifier     = "rds-ca-rsa2048-g1"

  # Athens uses passwords; IAM authentication costs nothing to enable and lets
  # operators connect with short-lived tokens instead.
  iam_database_authentication_enabled = true

  backup_retention_period   = var.backup_retention_days
  backup_window             = "03:00-04:00"
  maintenance_window        = "sun:04:30-sun:05:30"
  copy_tags_to_snapshot     = true
  delete_automated_backups  = false
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = false
  final_snapshot_identifier = "${var.name}-final"

  auto_minor_version_upgrade  = true
  allow_major_version_upgrade = false
  apply_immediately           = false

  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.monitoring.arn
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = var.kms_key_arn
  performance_insights_retention_period = 7
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]

  depends_on = [aws_cloudwatch_log_group.exports]
}

# The runtime role's credentials. Generated by Secrets Manager at the first apply; the value is
# then left alone (a new plan reads a new random password and ignores it). To rotate: put a new
# password into the secret, run `athens grant-runtime` as an admin task, restart the services.
data "aws_secretsmanager_random_password" "runtime" {
  password_length     = 40
  exclude_punctuation = true # URL-safe without escaping; 40 alphanumerics is ~238 bits
}

resource "aws_secretsmanager_secret" "runtime" {
  #checkov:skip=CKV2_AWS_57: Not rotated by a Lambda: ECS injects the URL into the long-running tasks at start, and the role's password must change in PostgreSQL (athens grant-runtime) in step with the secret. Rotate deliberately (README.md "Rotating credentials").
  name                    = "${var.name}/database-runtime"
  description             = "Athens runtime PostgreSQL role (athens_runtime); key `url` is the sync and API tasks' ATHENS_DATABASE_URL"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "runtime" {
  secret_id = aws_secretsmanager_secret.runtime.id
  secret_string = jsonencode({
    username = local.runtime_username
    password = data.aws_secretsmanager_random_password.runtime.random_password
    url = format(
      "postgres://%s:%s@%s:%d/%s?%s",
      local.runtime_username,
      data.aws_secretsmanager_random_password.runtime.random_password,
      aws_db_instance.this.address,
      aws_db_instance.this.port,
      local.db_name,
      local.ssl_query,
    )
  })

  lifecycle {
    ignore_changes = [secret_string]
  }
}
