variable "name" {
  description = "Name prefix for every resource of this module."
  type        = string
}

variable "region" {
  description = "AWS region (VPC endpoint service names)."
  type        = string
}

variable "cidr_block" {
  description = "IPv4 CIDR of the VPC. Subnets are carved as /(prefix+8): public at index 0..1, private at 10..11."
  type        = string

  validation {
    condition     = can(cidrhost(var.cidr_block, 0)) && tonumber(split("/", var.cidr_block)[1]) <= 18
    error_message = "cidr_block must be a valid IPv4 CIDR no smaller than a /18."
  }
}

variable "availability_zones" {
  description = "Exactly two availability zones to spread subnets across."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) == 2
    error_message = "Exactly two availability zones are expected."
  }
}

variable "kms_key_arn" {
  description = "KMS key ARN used to encrypt the flow-log log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the VPC flow-log log group, in days."
  type        = number
}
