# What pages an operator, seen from CloudWatch, all to one SNS topic (subscribe e-mail, chat or a
# pager to it; `alarm_email` adds an e-mail subscription).
#
# The sync's own figures (lag, backlog, dead letters, write failures) come from its
# embedded-metric-format log lines (ATHENS_METRICS_EMF, namespace "Athens", dimension Stack):
# CloudWatch Logs turns them into metrics, no agent and no scraper needed.

locals {
  alarm_actions = [aws_sns_topic.alarms.arn]
  sync_running  = var.run_services && var.run_sync
  athens_dims   = { Stack = var.name }
}

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = module.kms.key_arn
}

resource "aws_sns_topic_subscription" "email" {
  count = var.alarm_email == null ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# --- the sync --------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "sync_not_running" {
  count = local.sync_running ? 1 : 0

  alarm_name          = "${var.name}-sync-not-running"
  alarm_description   = "No athens sync task has run for 3 minutes: changes are not reaching the index. Check the sync service's events and the /ecs/${var.name} log streams sync/*."
  namespace           = "ECS/ContainerInsights"
  metric_name         = "RunningTaskCount"
  dimensions          = { ClusterName = module.ecs.cluster_name, ServiceName = module.ecs.sync_service_name }
  statistic           = "Minimum"
  period              = 60
  evaluation_periods  = 3
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "sync_lag" {
  count = local.sync_running ? 1 : 0

  alarm_name          = "${var.name}-sync-lag"
  alarm_description   = "The oldest change waiting for the index is older than ${var.alarm_sync_lag_seconds} s, or the sync has stopped reporting. docs/operations.md \"Lag growing\"."
  namespace           = "Athens"
  metric_name         = "SyncLagSeconds"
  dimensions          = local.athens_dims
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_sync_lag_seconds
  treat_missing_data  = "breaching" # no figures means no sync
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  alarm_name          = "${var.name}-dead-letters"
  alarm_description   = "The engine refused documents for good (dead letters). docs/operations.md \"Dead letters\"."
  namespace           = "Athens"
  metric_name         = "SyncDeadLetters"
  dimensions          = local.athens_dims
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "write_failures" {
  alarm_name          = "${var.name}-index-write-failures"
  alarm_description   = "Index writes keep failing (the engine is down, refusing or throttling); the sync retries and acknowledges nothing meanwhile."
  namespace           = "Athens"
  metric_name         = "SyncWriteFailures"
  dimensions          = local.athens_dims
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_write_failures_per_5min
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# --- the API ---------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "alb_5xx" {
  for_each = {
    target = "HTTPCode_Target_5XX_Count"
    elb    = "HTTPCode_ELB_5XX_Count"
  }

  alarm_name          = "${var.name}-alb-${each.key}-5xx"
  alarm_description   = "More than ${var.alarm_alb_5xx_per_5min} ${each.value} in 5 minutes on the API's load balancer."
  namespace           = "AWS/ApplicationELB"
  metric_name         = each.value
  dimensions          = { LoadBalancer = module.alb.arn_suffix }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_alb_5xx_per_5min
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# --- the data stores -------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "rds_storage" {
  alarm_name          = "${var.name}-rds-free-storage"
  alarm_description   = "Less than ${var.alarm_rds_free_storage_gb} GiB free on the PostgreSQL instance (storage autoscaling stops at db_max_allocated_storage_gb)."
  namespace           = "AWS/RDS"
  metric_name         = "FreeStorageSpace"
  dimensions          = { DBInstanceIdentifier = module.database.instance_id }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 2
  comparison_operator = "LessThanThreshold"
  threshold           = var.alarm_rds_free_storage_gb * 1073741824
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "opensearch_red" {
  alarm_name          = "${var.name}-opensearch-red"
  alarm_description   = "A primary shard of the OpenSearch domain is unassigned: some documents cannot be searched or written."
  namespace           = "AWS/ES"
  metric_name         = "ClusterStatus.red"
  dimensions          = { DomainName = module.search.domain_name, ClientId = local.account_id }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "opensearch_jvm" {
  alarm_name          = "${var.name}-opensearch-jvm-pressure"
  alarm_description   = "JVM memory pressure above ${var.alarm_jvm_pressure_percent} % on an OpenSearch data node for 15 minutes: the domain will soon block writes or fail nodes."
  namespace           = "AWS/ES"
  metric_name         = "JVMMemoryPressure"
  dimensions          = { DomainName = module.search.domain_name, ClientId = local.account_id }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_jvm_pressure_percent
  treat_missing_data  = "missing"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}
