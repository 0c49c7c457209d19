# RDS PostgreSQL for Athens' source tables and its change-capture outbox.
#
# Change capture needs nothing special from RDS: Athens installs ordinary
# row triggers that write to an outbox table and NOTIFY, and the sync holds a
# session-level advisory lock as its writer lease. No replication slot, no
# `rds.logical_replication`, no rds_superuser-only extension. The master user
# created here owns the database, which is enough for `athens migrate` and
# `athens setup` (CREATE FUNCTION / CREATE TRIGGER on tables it owns).
#
# Password: a generated random password (not `manage_master_user_password`).
# Athens takes a single connection URL, and ECS can only inject whole secret
# values or JSON keys, not assemble a URL; RDS-managed secrets hold only
# username/password and rotate on their own, which would silently break a
# URL stored elsewhere. So Terraform generates the password and writes one
# secret holding both the parts and the ready-made URL (key `url`).
# The password is therefore in the Terraform state: keep the state in an
# encrypted, access-restricted S3 bucket (see README.md).

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
    random = {
      source = "hashicorp/random"
    }
  }
}

data "aws_partition" "current" {}

locals {
  db_name  = "athens"
  username = "athens"
  url = format(
    "postgres://%s:%s@%s:%d/%s?sslmode=%s",
    local.username,
    random_password.master.result,
    aws_db_instance.this.address,
    aws_db_instance.this.port,
    local.db_name,
    var.sslmode,
  )
}

resource "random_password" "master" {
  length  = 40
  special = false # URL-safe without escaping; 40 alphanumerics is ~238 bits
}

resource "aws_db_subnet_group" "this" {
  name        = var.name
  description = "Private subnets for ${var.name}"
  subnet_ids  = var.subnet_ids
}

resource "aws_db_parameter_group" "this" {
  name_prefix = "${var.name}-pg16-"
  family      = var.parameter_group_family
  description = "Athens: TLS only, query logging, TCP keepalives for the sync lease"

  # Only TLS connections (Athens connects with sslmode=require).
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  # Log DDL (migrations, `athens setup` installing triggers) ...
  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  # ... and statements slower than this many milliseconds.
  parameter {
    name  = "log_min_duration_statement"
    value = tostring(var.log_min_duration_statement_ms)
  }

  parameter {
    name  = "log_lock_waits"
    value = "1"
  }

  # The sync's writer lease is a session advisory lock. If the task's host
  # vanishes without closing its socket, keepalives make the server drop the
  # session (and so release the lease for the standby) within ~2 minutes
  # instead of the kernel default of hours.
  parameter {
    name  = "tcp_keepalives_idle"
    value = "60"
  }

  parameter {
    name  = "tcp_keepalives_interval"
    value = "10"
  }

  parameter {
    name  = "tcp_keepalives_count"
    value = "6"
  }

  dynamic "parameter" {
    for_each = var.max_connections == null ? [] : [var.max_connections]
    content {
      name         = "max_connections"
      value        = tostring(parameter.value)
      apply_method = "pending-reboot"
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
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "this" {
  identifier     = var.name
  engine         = "postgres"
  engine_version = var.engine_version
  instance_class = var.instance_class

  db_name  = local.db_name
  username = local.username
  password = random_password.master.result
  port     = 5432

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

  # Athens uses the password; IAM authentication costs nothing to enable and
  # lets operators connect with short-lived tokens instead.
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

resource "aws_secretsmanager_secret" "database" {
  #checkov:skip=CKV2_AWS_57: Not rotated automatically: ECS injects the URL into the tasks as an environment variable at start, so a scheduled rotation would break every new connection of running tasks until they restart. Rotate deliberately instead: taint random_password.master, apply, force a new deployment of both services (README.md "Rotating credentials").
  name                    = "${var.name}/database"
  description             = "Athens PostgreSQL credentials; key `url` is ATHENS_DATABASE_URL"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "database" {
  secret_id = aws_secretsmanager_secret.database.id
  secret_string = jsonencode({
    engine   = "postgres"
    username = local.username
    password = random_password.master.result
    host     = aws_db_instance.this.address
    port     = aws_db_instance.this.port
    dbname   = local.db_name
    url      = local.url
  })
}
