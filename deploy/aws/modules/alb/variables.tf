variable "name" {
  description = "Name of the ALB (at most 32 characters) and prefix of its companions."
  type        = string
}

variable "region" {
  description = "AWS region (access-log delivery principal, bucket name)."
  type        = string
}

variable "account_id" {
  description = "AWS account ID (access-log bucket name and prefix)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the target group."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets (two AZs) for the ALB."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group of the ALB."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate ARN served by the HTTPS listener."
  type        = string
}

variable "ssl_policy" {
  description = "ELB security policy of the HTTPS listener (TLS 1.2 minimum)."
  type        = string
}

variable "app_port" {
  description = "Port of the API inside the tasks."
  type        = number
}

variable "health_check_path" {
  description = "Target group health-check path."
  type        = string
}

variable "deletion_protection" {
  description = "Protect the ALB against deletion."
  type        = bool
}

variable "waf_rate_limit_per_5min" {
  description = "Requests per client IP per 5 minutes before WAF blocks it."
  type        = number
}

variable "kms_key_arn" {
  description = "KMS key for the WAF log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the WAF log group."
  type        = number
}

variable "access_log_retention_days" {
  description = "Days ALB access logs are kept in S3."
  type        = number
}

variable "block_metrics" {
  description = "Answer /metrics on the public listener with 404."
  type        = bool
}
