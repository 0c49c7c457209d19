output "dns_name" {
  description = "DNS name of the ALB (point your record at it)."
  value       = aws_lb.this.dns_name
}

output "zone_id" {
  description = "Route 53 hosted zone ID of the ALB, for an alias record."
  value       = aws_lb.this.zone_id
}

output "arn_suffix" {
  description = "ARN suffix of the ALB (CloudWatch metrics dimension)."
  value       = aws_lb.this.arn_suffix
}

output "target_group_arn" {
  description = "Target group of the API tasks."
  value       = aws_lb_target_group.api.arn
  # A service can register into a target group only once a listener forwards to it.
  depends_on = [aws_lb_listener.https]
}

output "target_group_arn_suffix" {
  description = "ARN suffix of the target group (request-count autoscaling)."
  value       = aws_lb_target_group.api.arn_suffix
}

output "https_listener_arn" {
  description = "ARN of the HTTPS listener."
  value       = aws_lb_listener.https.arn
}

output "access_logs_bucket" {
  description = "S3 bucket receiving the ALB access logs."
  value       = aws_s3_bucket.logs.id
}

output "access_log_writers" {
  description = "Who may deliver access logs into the bucket: the regional ELB accounts (regions opened before August 2022) and the log-delivery service principal."
  value = {
    accounts = [for account in data.aws_elb_service_account.legacy : account.arn]
    services = local.log_delivery_service
  }
}
