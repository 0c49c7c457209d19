variable "name" {
  description = "Name prefix; the key alias becomes alias/<name>."
  type        = string
}

variable "region" {
  description = "AWS region of the key (CloudWatch Logs' regional service principal)."
  type        = string
}

variable "account_id" {
  description = "AWS account ID owning the key."
  type        = string
}

variable "partition" {
  description = "AWS partition (aws, aws-cn, aws-us-gov)."
  type        = string
}

variable "deletion_window_in_days" {
  description = "Waiting period before the key is really deleted after a destroy (7-30)."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30
    error_message = "deletion_window_in_days must be between 7 and 30."
  }
}
